"""The original's report (COMPAT.md section 4): a form POST to MESSAGE_CONFIG_COMMAND.

Fields, exactly as existing report servers parse them: srvname, result ("0" success, "1" failure),
bckmethod ("ncscript-py"), size, log (bounded: the tail is kept), error, destination; plus one extra
field old servers ignore: status (ok, warning, failed, skipped). Retried up to 5 times with growing
waits when the answer is not 200.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ncbackup.config.secret_values import url_secrets
from ncbackup.config.settings import GeneralSettings
from ncbackup.engine.logs import add_secret, mask_secrets
from ncbackup.engine.result import RunResult, Status, human_size
from ncbackup.errors import BackupError

log = logging.getLogger(__name__)

BACKUP_METHOD = "ncscript-py"
LOG_FIELD_MAX_CHARS = 60_000
ERROR_FIELD_MAX_CHARS = 4_000


def bounded_tail(text: str, limit_chars: int) -> str:
    """Keep the end of text (the most recent lines matter most), marked when cut."""
    if len(text) <= limit_chars:
        return text
    marker = "[... earlier log lines cut ...]\n"
    return marker + text[-(limit_chars - len(marker)):]


def report_fields(result: RunResult, *, log_text: str) -> dict[str, str]:
    """The form fields of the legacy report for a run."""
    # "result" is binary for old servers: warnings still mean the backup is there, and a run skipped
    # because another one holds the lock is no failure (that one reports its own outcome).
    is_success = result.status in (Status.OK, Status.WARNING, Status.SKIPPED)
    fields = {
        "srvname": result.hostname,
        "result": "0" if is_success else "1",
        "bckmethod": BACKUP_METHOD,
        # Without a SIZE section, what this run stored is the best answer old dashboards can get.
        "size": result.size_human or (human_size(result.bytes_out) if result.bytes_out else "N/A"),
        "log": bounded_tail(mask_secrets(log_text), LOG_FIELD_MAX_CHARS),
        "error": bounded_tail("; ".join(result.errors()), ERROR_FIELD_MAX_CHARS),
        "destination": " ".join(result.destinations) or "N/A",
        "status": result.status.value,
    }
    # Every field, not only log and error: nothing a report server stores may hold a secret.
    return {name: mask_secrets(value) for name, value in fields.items()}


@dataclass
class PostReport:
    url: str
    attempts: int = 5
    first_wait_seconds: float = 2.0
    timeout_seconds: float = 30.0
    name: str = "post"

    def __post_init__(self) -> None:
        # A token in the URL (?token=..., user:pass@host) is masked wherever the URL is quoted.
        for secret in url_secrets(self.url):
            add_secret(secret, where="the credential in MESSAGE_CONFIG_COMMAND")

    @classmethod
    def from_general(cls, general: GeneralSettings) -> PostReport:
        return cls(url=str(general.report_url))

    def send(self, result: RunResult, *, log_text: str) -> None:
        """POST the report; retry with growing waits; BackupError when every attempt failed."""
        # Imported here: requests costs ~0.1 s at start-up and only runs that send a report need it.
        import requests

        fields = report_fields(result, log_text=log_text)
        wait = self.first_wait_seconds
        problem = ""
        for attempt in range(1, self.attempts + 1):
            try:
                answer = requests.post(self.url, data=fields, timeout=self.timeout_seconds)
                if answer.status_code == 200:
                    return
                problem = f"the server answered {answer.status_code}"
            except requests.RequestException as error:
                problem = f"{type(error).__name__}"
            if attempt < self.attempts:
                log.warning("report to %s: attempt %d of %d failed (%s); retrying in %.0f s",
                            self.url, attempt, self.attempts, problem, wait)
                time.sleep(wait)
                wait *= 2
        raise BackupError(f"the report to {self.url} failed {self.attempts} times ({problem}); "
                          "check MESSAGE_CONFIG_COMMAND and that the report server is up")
