"""METHOD healthchecks: dead-man's-switch pings, healthchecks.io style or Uptime Kuma push style.

STYLE healthchecks (healthchecks.io/docs/http_api, "Pinging API"): ``<url>/start`` when the run starts,
``<url>`` on success (and warning: the backup is there), ``<url>/fail`` on failure, ``<url>/log`` for a
skipped run and for ``notify-test`` (logged without changing the check's state); every ping carries
``rid`` (one per run, so start and end pair up) and POSTs the message text, cut to 100 kB (the
server keeps a prefix of it). STYLE kuma (Uptime Kuma push monitors): a GET of the push URL with
``status=up|down``, ``msg`` (the subject) and ``ping`` (the run's duration in ms), the
``?status=up&msg=OK&ping=`` Kuma shows in its push URL replaced; Kuma has no start and no neutral
ping, so a skipped run sends nothing. The URL comes from the credentials (URL=) or ARGS_DICT URL.
Put ``success`` in ON: a dead-man's switch must hear of good runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ncbackup.engine.result import Status
from ncbackup.errors import BackupError
from ncbackup.notify import http
from ncbackup.notify.base import Message

if TYPE_CHECKING:
    from ncbackup.config.settings import SectionSettings

BODY_MAX_BYTES = 100_000
KUMA_MESSAGE_MAX_CHARS = 200
KUMA_QUERY_KEYS = frozenset({"status", "msg", "ping"})
STYLES = ("healthchecks", "kuma")


def healthchecks_suffix(message: Message) -> str:
    """Which ping a message is: "" (success), "/fail" or "/log"."""
    if message.is_test or message.status == Status.SKIPPED:
        return "/log"
    return "/fail" if message.status == Status.FAILED else ""


def kuma_url(url: str, message: Message) -> str:
    """The push URL with this run's status, msg and ping in place of any Kuma put there."""
    parts = urlsplit(url)
    kept = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key not in KUMA_QUERY_KEYS]
    subject = message.subject if len(message.subject) <= KUMA_MESSAGE_MAX_CHARS else \
        message.subject[:KUMA_MESSAGE_MAX_CHARS - 1] + "…"
    kept += [("status", "down" if message.status == Status.FAILED else "up"),
             ("msg", subject),
             ("ping", str(int(message.result.duration_seconds * 1000)))]
    return urlunsplit(parts._replace(query=urlencode(kept)))


@dataclass
class HealthchecksNotifier:
    name: str
    outcomes: frozenset[Status]
    url: str
    style: str = "healthchecks"
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_seconds: float = http.TIMEOUT_SECONDS

    @classmethod
    def from_section(cls, args: Mapping[str, Any], credentials: Mapping[str, str], *, name: str,
                     outcomes: frozenset[Status], section: SectionSettings | None) -> HealthchecksNotifier:
        style = http.one_of(args, "STYLE", STYLES, section=section, name=name)
        allowed = KUMA_QUERY_KEYS if style == "kuma" else frozenset()
        url, _from_credentials = http.resolve_url(args, credentials, section=section, name=name,
                                                  allowed_query_keys=allowed)
        return cls(name=name, outcomes=outcomes, url=url, style=style)

    @property
    def _what(self) -> str:
        return f"the {self.style} ping of section {self.name}"

    def started(self) -> None:
        """Ping /start (healthchecks style; Kuma has no start); BackupError when it could not."""
        if self.style == "healthchecks":
            http.post(with_rid(http.with_path_suffix(self.url, "/start"), self.run_id), what=self._what, data=b"",
                      timeout_seconds=self.timeout_seconds)

    def send(self, message: Message) -> None:
        """One ping for the run's outcome; BackupError on no answer, a non-2xx one, or Kuma's ok=false."""
        if self.style == "healthchecks":
            url = with_rid(http.with_path_suffix(self.url, healthchecks_suffix(message)), self.run_id)
            text = http.cut_utf8(http.masked(message.text), BODY_MAX_BYTES)
            http.post(url, what=self._what, data=text.encode("utf-8"), headers={"Content-Type": "text/plain; charset=utf-8"},
                      timeout_seconds=self.timeout_seconds)
            return
        if message.status == Status.SKIPPED:
            return   # the run holding the lock pings for itself; Kuma has no neutral ping
        answer = http.post(kuma_url(self.url, message), what=self._what, method="GET",
                           timeout_seconds=self.timeout_seconds)
        verdict = http.json_answer(answer, what=self._what)
        if verdict.get("ok") is not True:
            detail = http.provider_text(str(verdict.get("msg") or ""))
            raise BackupError(f"{self._what}: Uptime Kuma refused the push" + (f" ({detail})" if detail else "")
                              + "; check the push URL and that the monitor is active")


def with_rid(url: str, run_id: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [("rid", run_id)]
    return urlunsplit(parts._replace(query=urlencode(query)))
