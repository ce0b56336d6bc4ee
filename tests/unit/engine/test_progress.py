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
