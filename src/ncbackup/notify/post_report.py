"""The original's report (COMPAT.md section 4): a form POST to MESSAGE_CONFIG_COMMAND.

Fields, exactly as existing report servers parse them: srvname, result ("0" success, "1" failure),
bckmethod ("ncscript-py"), size, log (bounded: the tail is kept), error, destination; plus one extra
field old servers ignore: status (ok, warning, failed, skipped). An answer other than 200 is a failed
attempt; the framework (notify/registry.py) retries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ncbackup.config.secret_values import url_secrets
from ncbackup.engine.logs import add_secret, mask_secrets
from ncbackup.engine.result import RunResult, Status, human_size
from ncbackup.errors import BackupError, ConfigError
from ncbackup.notify.base import Message
from ncbackup.notify.message import LOG_TAIL_MAX_CHARS, bounded_tail

if TYPE_CHECKING:
    from ncbackup.config.settings import SectionSettings

BACKUP_METHOD = "ncscript-py"
LOG_FIELD_MAX_CHARS = LOG_TAIL_MAX_CHARS
ERROR_FIELD_MAX_CHARS = 4_000


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
    """METHOD post: the legacy form POST, one attempt per send (the framework retries)."""

    url: str
    timeout_seconds: float = 30.0
    name: str = "post"
    # The legacy report went out after every run, skipped ones included.
    outcomes: frozenset[Status] = frozenset(Status)

    def __post_init__(self) -> None:
        # A token in the URL (?token=..., user:pass@host) is masked wherever the URL is quoted.
        for secret in url_secrets(self.url):
            add_secret(secret, where="the credential in MESSAGE_CONFIG_COMMAND")

    @classmethod
    def from_section(cls, args: Mapping[str, Any], credentials: Mapping[str, str], *, name: str,
                     outcomes: frozenset[Status], section: SectionSettings | None) -> PostReport:
        url = str(args.get("URL") or "").strip()
        if not url:
            raise ConfigError(f"section {name}: METHOD post needs URL in ARGS_DICT (where the report is posted)",
                              key=f"{name}.ARGS_DICT.URL")
        return cls(url=url, name=name, outcomes=outcomes)

    def send(self, message: Message) -> None:
        """POST the report once; BackupError when the answer is not 200."""
        # Imported here: requests costs ~0.1 s at start-up and only runs that send a report need it.
        import requests

        fields = report_fields(message.result, log_text=message.log_tail)
        try:
            answer = requests.post(self.url, data=fields, timeout=self.timeout_seconds)
        except requests.RequestException as error:
            problem = type(error).__name__
        else:
            if answer.status_code == 200:
                return
            problem = f"the server answered {answer.status_code}"
        raise BackupError(f"the report to {self.url} was not accepted ({problem}); "
                          "check MESSAGE_CONFIG_COMMAND (or URL) and that the report server is up")
