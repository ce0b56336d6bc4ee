"""What a notifier is: something that tells people (or a monitoring system) how a run went.

A failing notifier never fails the run: delivery retries within a bounded time, then the failure is
a warning in the run result. Each method lives in its own module under ``notify/`` and is built by
``notify/registry.py`` from a NOTIFY section (or the legacy GENERAL MESSAGE_CONFIG_* keys) as
``Method.from_section(args, credentials, name=..., section=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ncbackup.engine.result import RunResult, Status

if TYPE_CHECKING:
    from ncbackup.config.settings import SectionSettings


@dataclass(frozen=True)
class Message:
    """One run's outcome as every notifier tells it: built once, every text masked of secrets and bounded."""

    result: RunResult            # the figures, for methods that send values (prometheus, zabbix, the legacy post)
    status: Status
    subject: str                 # one line: "ncbackup web1: failed (2 of 5 sections)"
    text: str                    # plain-text body: host, result, set id, duration, sizes, failures, log tail
    html: str                    # the same as a small self-contained HTML fragment
    log_tail: str                # the last lines of the run's log, masked
    is_test: bool = False        # sent by `ncbackup notify-test`


class Notifier(Protocol):
    name: str                    # the NOTIFY section's name (or "post" for the legacy GENERAL keys)
    outcomes: frozenset[Status]  # ON: the run statuses it is sent for

    def send(self, message: Message) -> None:
        """Deliver once (the caller retries); raise BackupError, one sentence, when it could not."""
        ...


class NotifierFactory(Protocol):
    @classmethod
    def from_section(cls, args: Mapping[str, Any], credentials: Mapping[str, str], *, name: str,
                     outcomes: frozenset[Status], section: SectionSettings | None) -> Notifier:
        """Build from ARGS_DICT and the CREDENTIALS_FILE values; ConfigError naming the key when invalid."""
        ...


@runtime_checkable
class StartAware(Protocol):
    """Optional: a notifier that is told when a run starts (healthchecks' /start ping)."""

    def started(self) -> None: ...
