"""Throwaway test servers (mariadbd) run in the background: started in a process group of their own, so
``stop`` ends them with everything they started.

A test helper, not product code: ncbackup itself never leaves a program running after it returns.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from ncbackup import platform


class Background:
    """A long-running child started by ``start_background``; ``stop`` ends it."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self._proc = proc

    @property
    def pid(self) -> int:
        return self._proc.pid

    def is_running(self) -> bool:
        return self._proc.poll() is None

    def stop(self, *, timeout_seconds: float = 30) -> int:
        """Terminate the child and everything it started, kill them after timeout_seconds; return its exit status."""
        if self._proc.poll() is None:
            platform.terminate_process_group(self._proc.pid)
            try:
                self._proc.wait(timeout=timeout_seconds)
            except subprocess.TimeoutExpired:
                pass
        # Whatever it started and left behind goes with it (a no-op when the group is already empty).
        platform.kill_process_group(self._proc.pid)
        return self._proc.wait()


def start_background(argv: Sequence[str | Path], *, output_path: Path) -> Background:
    """Start argv without waiting for it, its stdout and stderr appended to output_path."""
    with open(output_path, "ab") as output:
        proc = subprocess.Popen(
            [str(arg) for arg in argv], stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            **platform.new_process_group_options(),
        )
    return Background(proc)
