"""METHOD wechat: a WeChat Work (WeCom) group robot.

Documented at developer.work.weixin.qq.com/document/path/91770: POST JSON to
``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY``; ``markdown.content`` holds at most
4096 bytes of UTF-8, ``text.content`` 2048; the answer is ``{"errcode": 0, "errmsg": "ok"}`` or a
non-zero errcode with HTTP 200. KEY comes from the credentials (or the whole webhook URL as URL=).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ncbackup.engine.result import Status
from ncbackup.notify import http
from ncbackup.notify.base import Message

if TYPE_CHECKING:
    from ncbackup.config.settings import SectionSettings

DEFAULT_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
CONTENT_MAX_BYTES = {"markdown": 4096, "text": 2048}
STATUS_COLOR = {Status.OK: "info", Status.WARNING: "warning", Status.FAILED: "warning", Status.SKIPPED: "comment"}


def wechat_body(message: Message, *, msgtype: str) -> dict[str, Any]:
    """The robot's JSON for message, its content cut to the provider's byte limit."""
    if msgtype == "markdown":
        content = (f'**<font color="{STATUS_COLOR[message.status]}">{message.subject}</font>**\n'
                   f"{message.text}")
    else:
        content = f"{message.subject}\n{message.text}"
    return {"msgtype": msgtype, msgtype: {"content": http.cut_utf8(content, CONTENT_MAX_BYTES[msgtype])}}


@dataclass
class WeChatNotifier:
    name: str
    outcomes: frozenset[Status]
    url: str
    key: str | None              # None: the URL from the credentials carries it
    msgtype: str = "markdown"
    timeout_seconds: float = http.TIMEOUT_SECONDS

    @classmethod
    def from_section(cls, args: Mapping[str, Any], credentials: Mapping[str, str], *, name: str,
                     outcomes: frozenset[Status], section: SectionSettings | None) -> WeChatNotifier:
        url, from_credentials = http.resolve_url(args, credentials, section=section, name=name, default=DEFAULT_URL)
        key = None if from_credentials else http.required_credential(credentials, "KEY", section=section, name=name)
        msgtype = http.one_of(args, "MSGTYPE", ("markdown", "text"), section=section, name=name)
        return cls(name=name, outcomes=outcomes, url=url, key=key, msgtype=msgtype)

    def send(self, message: Message) -> None:
        """POST once; BackupError on a non-2xx answer or a non-zero errcode."""
        what = f"the WeChat robot of section {self.name}"
        answer = http.post(self.url, what=what, json_body=http.masked(wechat_body(message, msgtype=self.msgtype)),
                           params={"key": self.key} if self.key else None, timeout_seconds=self.timeout_seconds)
        http.check_error_code(answer, what=what, code_keys=("errcode",), message_keys=("errmsg",))
