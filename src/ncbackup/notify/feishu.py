"""METHOD feishu: a Feishu (Lark) custom bot webhook, signed.

Signing, as Feishu documents it for custom bots (open.feishu.cn, "自定义机器人使用指南", security
settings; its Python sample is quoted at m.down10s.com/jiaocheng/5605312225.html and in gitea's fix
go-gitea/gitea#34788): the string ``timestamp + "\\n" + secret`` (timestamp in seconds, within one hour)
is the HMAC-SHA256 *key*, the message signed is empty, the digest is base64-encoded; ``timestamp`` and
``sign`` go in the JSON body. The answer is ``{"code": 0, "msg": "success"}`` (older deployments:
``StatusCode``) or a non-zero code with HTTP 200; the request body may not exceed 20 KB.
The hook URL ends in the bot's token: the whole URL comes from the credentials (URL=), or TOKEN does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ncbackup.engine.result import Status
from ncbackup.notify import http
from ncbackup.notify.base import Message

if TYPE_CHECKING:
    from ncbackup.config.settings import SectionSettings

DEFAULT_URL = "https://open.feishu.cn/open-apis/bot/v2/hook"
# The body's limit is 20 KB; the rest is room for timestamp and sign.
BODY_MAX_BYTES = 19_500


def feishu_sign(secret: str, timestamp_seconds: int) -> str:
    key = f"{timestamp_seconds}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def feishu_body(message: Message, *, msgtype: str) -> dict[str, Any]:
    """The bot's JSON for message (unsigned), within the body limit however many lines the text has."""
    return http.fit_body(lambda budget: _body(message, msgtype=msgtype, text_max_bytes=budget),
                         max_body_bytes=BODY_MAX_BYTES)


def _body(message: Message, *, msgtype: str, text_max_bytes: int) -> dict[str, Any]:
    text = http.cut_utf8(message.text, text_max_bytes)
    if msgtype == "post":
        lines = [[{"tag": "text", "text": line}] for line in text.splitlines()]
        return http.masked({"msg_type": "post",
                            "content": {"post": {"zh_cn": {"title": message.subject[:200], "content": lines}}}})
    return http.masked({"msg_type": "text", "content": {"text": f"{message.subject}\n{text}"}})


@dataclass
class FeishuNotifier:
    name: str
    outcomes: frozenset[Status]
    url: str
    secret: str | None
    msgtype: str = "post"
    timeout_seconds: float = http.TIMEOUT_SECONDS

    @classmethod
    def from_section(cls, args: Mapping[str, Any], credentials: Mapping[str, str], *, name: str,
                     outcomes: frozenset[Status], section: SectionSettings | None) -> FeishuNotifier:
        url, from_credentials = http.resolve_url(args, credentials, section=section, name=name, default=DEFAULT_URL)
        if not from_credentials:
            token = http.required_credential(credentials, "TOKEN", section=section, name=name)
            url = http.with_path_suffix(url, "/" + token)
        secret = str(credentials.get("SECRET") or "").strip() or None
        msgtype = http.one_of(args, "MSGTYPE", ("post", "text"), section=section, name=name)
        return cls(name=name, outcomes=outcomes, url=url, secret=secret, msgtype=msgtype)

    def send(self, message: Message) -> None:
        """POST once, signed; BackupError on a non-2xx answer or a non-zero code."""
        what = f"the Feishu bot of section {self.name}"
        body = feishu_body(message, msgtype=self.msgtype)
        if self.secret:
            timestamp = int(time.time())
            body.update(timestamp=str(timestamp), sign=feishu_sign(self.secret, timestamp))
        answer = http.post(self.url, what=what, json_body=body, timeout_seconds=self.timeout_seconds)
        http.check_error_code(answer, what=what, code_keys=("code", "StatusCode"), message_keys=("msg", "StatusMessage"))
