"""The built-in SIZE plugin (original: tools/size_calculation.py, class SizeCalculation).

Reports the human-readable size of the backup into the run report: the size of its OBJECTIVES when
this run wrote them (or they exist), else of the last backup set written in this run.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ncbackup.engine.result import human_size


def folder_size_bytes(path: Path) -> int:
    """Total size of the regular files under path (path itself if it is a file); symlinks not followed."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(root, name))
            except OSError:
                continue  # vanished while we walked: not worth a warning in a size report
            if not os.path.islink(os.path.join(root, name)):
                total += info.st_size
    return total


def objective_paths(parameters: dict[str, Any] | None) -> list[Path]:
    """OBJECTIVES (or TARGETS) as paths: a space-separated string or a list."""
    if not parameters:
        return []
    value = parameters.get("OBJECTIVES", parameters.get("TARGETS"))
    if value is None:
        return []
    items = value.split() if isinstance(value, str) else [str(v) for v in value]
    return [Path(item) for item in items if item.strip()]


class SizeCalculation:
    """The original's plugin contract: SizeCalculation(parameters, logger), then the three calls."""

    def __init__(self, parameters: dict[str, Any] | None, logger: logging.Logger, context: Any = None) -> None:
        self.parameters = parameters
        self.logger = logger
        self.context = context
        self.size_bytes: int | None = None
        self.source = ""

    def config_plugin(self) -> None:
        self.paths = objective_paths(self.parameters)

    def works_execution(self) -> None:
        context = self.context
        made_here = [p for p in self.paths if context is not None and p.exists() and context.produced_this_run(p)]
        if made_here:
            self.size_bytes, self.source = sum(folder_size_bytes(p) for p in made_here), "OBJECTIVES written by this run"
        elif context is not None and context.last_set_bytes_out is not None:
            self.size_bytes, self.source = context.last_set_bytes_out, "the backup set written by this run"
        else:
            existing = [p for p in self.paths if p.exists()]
            if existing:
                self.size_bytes, self.source = sum(folder_size_bytes(p) for p in existing), "OBJECTIVES"

    def output(self) -> str:
        if self.size_bytes is None:
            self.logger.warning("size: nothing to measure (no OBJECTIVES found and no backup set written in this run)")
            return "N/A"
        text = human_size(self.size_bytes)
        self.logger.info("backup size: %s (%s)", text, self.source)
        return text
