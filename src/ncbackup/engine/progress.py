"""Progress of long steps: a rich live display on a terminal, plain log lines otherwise (cron)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ncbackup.engine.result import human_size

log = logging.getLogger(__name__)

PLAIN_LINE_INTERVAL_SECONDS = 60.0   # cron logs get one line per stream per minute at most


@contextmanager
def progress_display(
    step_name: str, *, is_terminal: bool | None = None, clock: Callable[[], float] = time.monotonic,
) -> Iterator[Callable[[str, int], None]]:
    """Yield an ``on_progress(stream_name, bytes_in_total)`` callback for one step."""
    if is_terminal is None:
        is_terminal = sys.stderr.isatty()
    if is_terminal:
        with _rich_progress(step_name) as callback:
            yield callback
        return
    last_logged: dict[str, float] = {}

    def plain(stream_name: str, bytes_in_total: int) -> None:
        now = clock()
        # A stream's first line is always logged: the monotonic clock may start near 0 (just after boot).
        if stream_name not in last_logged or now - last_logged[stream_name] >= PLAIN_LINE_INTERVAL_SECONDS:
            last_logged[stream_name] = now
            log.info("%s: %s read so far from %s", step_name, human_size(bytes_in_total), stream_name)

    yield plain


@contextmanager
def _rich_progress(step_name: str) -> Iterator[Callable[[str, int], None]]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeElapsedColumn(), console=Console(stderr=True), transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def update(stream_name: str, bytes_in_total: int) -> None:
        if stream_name not in tasks:
            tasks[stream_name] = progress.add_task(f"{step_name}: {stream_name}", total=None)
        progress.update(tasks[stream_name], completed=bytes_in_total)

    with progress:
        yield update
