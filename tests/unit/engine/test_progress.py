"""Progress: plain log lines when not on a terminal, a rich display otherwise; neither may break a step."""

from __future__ import annotations

import logging

from ncbackup.engine.progress import progress_display


def test_plain_progress_logs_a_line_per_stream(caplog):
    caplog.set_level(logging.INFO)
    with progress_display("FILESET", is_terminal=False) as on_progress:
        on_progress("files", 2048)
        on_progress("files", 4096)   # within the interval: not logged again
        on_progress("mysql-3306-shop", 10)
    lines = [r.getMessage() for r in caplog.records if "read so far" in r.getMessage()]
    assert lines == ["FILESET: 2.0 KiB read so far from files", "FILESET: 10 B read so far from mysql-3306-shop"]


def test_rich_progress_accepts_updates():
    with progress_display("FILESET", is_terminal=True) as on_progress:
        for total in range(0, 10 * 1024 * 1024, 1024 * 1024):
            on_progress("files", total)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start_seconds: float) -> None:
        self.now = start_seconds

    def __call__(self) -> float:
        return self.now


def progress_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "read so far" in r.getMessage()]


def test_plain_progress_logs_in_the_first_minute_after_boot(caplog):
    # The monotonic clock counts from boot on Linux: a run started by @reboot cron sees values below 60 s.
    caplog.set_level(logging.INFO)
    clock = FakeClock(5.0)
    with progress_display("FILESET", is_terminal=False, clock=clock) as on_progress:
        on_progress("files", 1024)             # 5 s after boot: the first line of a stream is always logged
        on_progress("mysql-3306-shop", 10)
        clock.now = 64.9
        on_progress("files", 2048)             # 59.9 s later: not yet
        clock.now = 65.0
        on_progress("files", 4096)             # exactly a minute later: logged
        on_progress("mysql-3306-shop", 20)     # its own minute is up too
        clock.now = 100.0
        on_progress("files", 8192)
    assert progress_lines(caplog) == [
        "FILESET: 1.0 KiB read so far from files",
        "FILESET: 10 B read so far from mysql-3306-shop",
        "FILESET: 4.0 KiB read so far from files",
        "FILESET: 20 B read so far from mysql-3306-shop",
    ]


def test_plain_progress_at_clock_zero(caplog):
    caplog.set_level(logging.INFO)
    with progress_display("FILESET", is_terminal=False, clock=FakeClock(0.0)) as on_progress:
        on_progress("files", 1)
    assert progress_lines(caplog) == ["FILESET: 1 B read so far from files"]
