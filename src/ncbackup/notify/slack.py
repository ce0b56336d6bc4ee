"""METHOD slack: a Slack incoming webhook.

The URL (``https://hooks.slack.com/services/T.../B.../...``) is the credential: it comes only from the
credentials file as URL=. The message is a plain ``text`` fallback plus two blocks (a header and the
run's text as a preformatted section), cut to Slack's limits (header 150 characters, section text 3000);
``&``, ``<`` and ``>`` are escaped as Slack's message formatting requires. Slack answers ``ok`` with
HTTP 200, or an error word (``invalid_payload``, ``no_service``) with a 4xx.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ncbackup.engine.result import Status
from ncbackup.errors import BackupError
from ncbackup.notify import http
from ncbackup.notify.base import Message

if TYPE_CHECKING:
    from ncbackup.config.settings import SectionSettings

HEADER_MAX_CHARS = 150
SECTION_MAX_CHARS = 3_000
FALLBACK_MAX_CHARS = 3_000
STATUS_EMOJI = {Status.OK: ":white_check_mark:", Status.WARNING: ":warning:", Status.FAILED: ":x:",
                Status.SKIPPED: ":fast_forward:"}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit_chars: int) -> str:
    return text if len(text) <= limit_chars else text[:limit_chars - 1] + "…"


def slack_body(message: Message) -> dict[str, Any]:
    fence = "```"
    section = _cut(_escape(message.text), SECTION_MAX_CHARS - 2 * len(fence) - 2)
    return {
        "text": _cut(_escape(f"{message.subject}\n{message.text}"), FALLBACK_MAX_CHARS),
        "blocks": [
            {"type": "header",
             "text": {"type": "plain_text", "text": _cut(f"{STATUS_EMOJI[message.status]} {message.subject}",
                                                         HEADER_MAX_CHARS), "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{fence}\n{section}\n{fence}"}},
        ],
    }


@dataclass
class SlackNotifier:
    name: str
    outcomes: frozenset[Status]
    url: str
    timeout_seconds: float = http.TIMEOUT_SECONDS

    @classmethod
    def from_section(cls, args: Mapping[str, Any], credentials: Mapping[str, str], *, name: str,
                     outcomes: frozenset[Status], section: SectionSettings | None) -> SlackNotifier:
        if str(args.get("URL") or "").strip():
            raise http.config_problem(
                f"the Slack webhook URL of section {http.section_name(section, name)} is a credential; move it "
                "from ARGS_DICT to the section's CREDENTIALS_FILE as URL=...", key="URL", section=section)
        url, _from_credentials = http.resolve_url({}, credentials, section=section, name=name)
        return cls(name=name, outcomes=outcomes, url=url)

    def send(self, message: Message) -> None:
        """POST once; BackupError on a non-2xx answer or a body other than "ok"."""
        what = f"the Slack webhook of section {self.name}"
        answer = http.post(self.url, what=what, json_body=http.masked(slack_body(message)),
                           timeout_seconds=self.timeout_seconds)
        if answer.text.strip() != "ok":
            raise BackupError(f"{what}: Slack did not accept the message ({http.provider_text(answer.text) or 'empty'}); "
                              "check the webhook URL")
