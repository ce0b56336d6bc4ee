"""What a hook is: something that does work before later steps and may undo it at the end of the run."""

from __future__ import annotations

from typing import Any, Protocol


class Hook(Protocol):
    name: str

    def enter(self, run: Any) -> None:
        """Do the hook's work (mount, snapshot, run commands); raise BackupError on failure."""
        ...

    def exit(self, run: Any) -> None:
        """Undo what enter did; called at the end of the run even when later steps failed."""
        ...
