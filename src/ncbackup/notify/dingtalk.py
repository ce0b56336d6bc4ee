"""METHOD dingtalk: a DingTalk custom robot, signed.

Signing, as DingTalk documents it for custom robots ("加签", open.dingtalk.com, robot security
settings; the same text is quoted at apifox.com/apidoc/docs-site/467052/doc-3550006): the string
``timestamp + "\\n" + secret`` (timestamp in milliseconds, within one hour of DingTalk's clock) is
signed with HMAC-SHA256 keyed by the secret, base64-encoded, URL-encoded, and sent as the ``timestamp``
and ``sign`` query parameters beside ``access_token``. The answer is ``{"errcode": 0, "errmsg": "ok"}``
or a non-zero errcode with HTTP 200. ACCESS_TOKEN and SECRET come from the credentials; without SECRET
(a robot secured by keywords or IP only) no signature is sent.
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

DEFAULT_URL = "https://oapi.dingtalk.com/robot/send"
# DingTalk refuses large messages; 20000 bytes is the documented text limit, markdown kept the same.
CONTENT_MAX_BYTES = 20_000


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The base64 signature (before URL-encoding: the HTTP layer encodes query values once)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def dingtalk_body(message: Message, *, msgtype: str) -> dict[str, Any]:
    if msgtype == "markdown":
        # Markdown needs a blank line to keep line breaks; the text is preformatted, so each line stays one.
        text = f"### {message.subject}\n\n" + "\n\n".join(message.text.splitlines())
        return {"msgtype": "markdown",
                "markdown": {"title": message.subject[:64], "text": http.cut_utf8(text, CONTENT_MAX_BYTES)}}
    content = http.cut_utf8(f"{message.subject}\n{message.text}", CONTENT_MAX_BYTES)
    return {"msgtype": "text", "text": {"content": content}}


@dataclass
class DingTalkNotifier:
    name: str
    outcomes: frozenset[Status]
    url: str
    access_token: str | None     # None: the URL from the credentials carries it
    secret: str | None
    msgtype: str = "markdown"
    timeout_seconds: float = http.TIMEOUT_SECONDS

    @classmethod
    def from_section(cls, args: Mapping[str, Any], credentials: Mapping[str, str], *, name: str,
                     outcomes: frozenset[Status], section: SectionSettings | None) -> DingTalkNotifier:
        url, from_credentials = http.resolve_url(args, credentials, section=section, name=name, default=DEFAULT_URL)
        token = None if from_credentials else http.required_credential(credentials, "ACCESS_TOKEN",
                                                                        section=section, name=name)
        secret = str(credentials.get("SECRET") or "").strip() or None
        msgtype = http.one_of(args, "MSGTYPE", ("markdown", "text"), section=section, name=name)
        return cls(name=name, outcomes=outcomes, url=url, access_token=token, secret=secret, msgtype=msgtype)

    def send(self, message: Message) -> None:
        """POST once, signed; BackupError on a non-2xx answer or a non-zero errcode."""
        what = f"the DingTalk robot of section {self.name}"
        params: dict[str, str] = {}
        if self.access_token:
            params["access_token"] = self.access_token
        if self.secret:
            timestamp_ms = int(time.time() * 1000)
            params.update(timestamp=str(timestamp_ms), sign=dingtalk_sign(self.secret, timestamp_ms))
        answer = http.post(self.url, what=what, json_body=http.masked(dingtalk_body(message, msgtype=self.msgtype)),
                           params=params, timeout_seconds=self.timeout_seconds)
        http.check_error_code(answer, what=what, code_keys=("errcode",), message_keys=("errmsg",))
