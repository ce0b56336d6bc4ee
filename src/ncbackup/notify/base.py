"""What a notifier is: something that tells people how a run went. A failing notifier never fails the run."""

from __future__ import annotations

from typing import Protocol

from ncbackup.engine.result import RunResult


class Notifier(Protocol):
    name: str

    def send(self, result: RunResult, *, log_text: str) -> None:
        """Deliver the report; raise BackupError if it could not (the engine logs it and goes on)."""
        ...
