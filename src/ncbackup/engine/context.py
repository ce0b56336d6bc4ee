"""What the steps of one run share: settings, what this run wrote, the progress display, undo hooks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from ncbackup.config.settings import Config, GeneralSettings
from ncbackup.engine.progress import progress_display
from ncbackup.engine.result import RunResult


@dataclass
class RunContext:
    config: Config
    result: RunResult
    logger: logging.Logger
    undo: ExitStack = field(default_factory=ExitStack)       # hooks' exits, unwound at the end of the run
    produced_paths: list[Path] = field(default_factory=list)  # files/folders this run wrote in WORK_FOLDER
    last_set_bytes_out: int | None = None
    is_dry_run: bool = False
    stop: threading.Event = field(default_factory=threading.Event)  # set when the run passed MAX_RUNTIME
    snapshots: list[str] = field(default_factory=list)   # "method:id" of every snapshot taken so far: in each set's manifest
    # engine.progress.progress_display (a live display or log lines), replaceable (dry runs, tests)
    progress_factory: Callable[[str], AbstractContextManager[Callable[[str, int], None]]] = progress_display

    @property
    def general(self) -> GeneralSettings:
        return self.config.general

    def produced_this_run(self, path: Path) -> bool:
        """True when path is (inside) something this run wrote."""
        resolved = Path(path).resolve()
        return any(resolved == made or made in resolved.parents for made in (p.resolve() for p in self.produced_paths))
