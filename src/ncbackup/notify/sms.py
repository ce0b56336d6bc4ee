"""The `sms` method: a text message through UCloud USMS (the original's provider), action SendUSMSMessage.

The request is a form POST to the UCloud API (ARGS_DICT BASE_URL, default https://api.ucloud.cn) signed
as UCloud documents it (``ncbackup.ucloud.signature``, shared with the UCloud snapshot methods). The answer's ``RetCode`` is 0
on success; otherwise its ``Message`` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ncbackup.engine.result import Status
from ncbackup.errors import BackupError
from ncbackup.notify.args import args_error, credential, int_arg, text_arg
from ncbackup.notify.base import Message
from ncbackup.ucloud import signature

if TYPE_CHECKING:
    from ncbackup.config.settings import SectionSettings

DEFAULT_BASE_URL = "https://api.ucloud.cn"
ACTION = "SendUSMSMessage"
# USMS takes at most 600 characters per message, signature and template text included.
PROVIDER_MAX_CHARS = 600
DEFAULT_MAX_CHARS = 500           # leaves room for the signature and the template's own text
TIMEOUT_SECONDS = 20.0
CUT_MARK = "..."


def sms_text(message: Message, *, max_chars: int) -> str:
    """The subject and each failure, one line each, cut to max_chars (already masked by the Message builder)."""
    lines = [message.subject, *message.result.errors()]
    text = "\n".join(line for line in lines if line)
    if len(text) > max_chars:
        text = text[: max_chars - len(CUT_MARK)] + CUT_MARK
    return text


@dataclass
class UCloudSms:
    """Sends the run's outcome as an SMS to every phone number of PHONES through UCloud USMS."""

    phones: list[str]
    template_id: str
    public_key: str = field(repr=False)
    private_key: str = field(repr=False)
    project_id: str
    sig_content: str | None = None
    region: str | None = None
    base_url: str = DEFAULT_BASE_URL
    max_chars: int = DEFAULT_MAX_CHARS
    timeout_seconds: float = TIMEOUT_SECONDS
    name: str = "sms"
    outcomes: frozenset[Status] = frozenset({Status.FAILED, Status.WARNING})

    @classmethod
    def from_section(cls, args: Mapping[str, Any], credentials: Mapping[str, str], *, name: str,
                     outcomes: frozenset[Status], section: SectionSettings | None) -> UCloudSms:
        phones = [phone.strip() for phone in text_arg(args, "PHONES", name=name, section=section).split("|")]
        if not all(phones):
            raise args_error('PHONES has an empty number; write them as "phone1|phone2"', name=name,
                             key="ARGS_DICT.PHONES", section=section)
        base_url = text_arg(args, "BASE_URL", name=name, section=section, default=DEFAULT_BASE_URL)
        if not base_url.startswith(("https://", "http://")):
            raise args_error(f"BASE_URL {base_url} is not an http(s) URL", name=name, key="ARGS_DICT.BASE_URL",
                             section=section)
        return cls(
            phones=phones,
            template_id=text_arg(args, "TEMPLATE_ID", name=name, section=section),
            sig_content=text_arg(args, "SIG_CONTENT", name=name, section=section, default="") or None,
            region=text_arg(args, "REGION", name=name, section=section, default="") or None,
            base_url=base_url,
            max_chars=int_arg(args, "MAX_CHARS", name=name, section=section, default=DEFAULT_MAX_CHARS, low=1,
                              high=PROVIDER_MAX_CHARS),
            public_key=credential(credentials, "PUBLIC_KEY", name=name, section=section),
            private_key=credential(credentials, "PRIVATE_KEY", name=name, section=section),
            project_id=credential(credentials, "PROJECT_ID", name=name, section=section),
            name=name,
            outcomes=outcomes,
        )

    def request_params(self, text: str) -> dict[str, str]:
        """The signed form fields of one SendUSMSMessage request carrying text."""
        params = {"Action": ACTION, "PublicKey": self.public_key, "ProjectId": self.project_id,
                  "TemplateId": self.template_id, "TemplateParams.0": text}
        params.update({f"PhoneNumbers.{index}": phone for index, phone in enumerate(self.phones)})
        if self.sig_content:
            params["SigContent"] = self.sig_content
        if self.region:
            params["Region"] = self.region
        params["Signature"] = signature(params, self.private_key)
        return params

    def send(self, message: Message) -> None:
        """One SendUSMSMessage request; BackupError with UCloud's Message when RetCode is not 0."""
        # Imported here: requests costs ~0.1 s at start-up and only runs that notify need it.
        import requests

        params = self.request_params(sms_text(message, max_chars=self.max_chars))
        try:
            answer = requests.post(self.base_url, data=params, timeout=self.timeout_seconds)
        except requests.RequestException as error:
            raise BackupError(f"could not reach the UCloud API at {self.base_url} ({type(error).__name__}); "
                              "check BASE_URL and the network") from None
        try:
            body = answer.json()
            code = int(body.get("RetCode", -1))
            reason = str(body.get("Message") or "no message")
        except (ValueError, AttributeError, TypeError):
            raise BackupError(f"the UCloud API at {self.base_url} answered HTTP {answer.status_code} without "
                              "a JSON RetCode; check BASE_URL") from None
        if code != 0:
            raise BackupError(f"UCloud USMS did not send the SMS (RetCode {code}: {reason}); check PUBLIC_KEY, "
                              "PRIVATE_KEY and PROJECT_ID in CREDENTIALS_FILE, TEMPLATE_ID and SIG_CONTENT")
