"""Run a pipeline of argument lists without a shell and measure it: wall time, CPU, peak RSS, disk.

The benchmark measures ncbackup from outside, as a user runs it, so it does not go through
``ncbackup.process`` (the code under test); it still follows the project's rules: argument lists
only, never ``shell=True``, secrets only in the environment or in files.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

POLL_INTERVAL_SECONDS = 0.05
STDERR_TAIL_CHARS = 2000


@dataclass(frozen=True)
class Pipeline:
    """Commands joined stdout -> stdin like a shell pipeline; the last one's stdout goes to stdout_path."""

    commands: list[list[str]]
    stdout_path: Path | None = None
    stdin_path: Path | None = None
    env: Mapping[str, str] | None = None  # added to os.environ; where passwords go (never argv)
    cwd: Path | None = None
    ok_exit_codes: tuple[int, ...] = (0,)

    def describe(self) -> str:
        """The pipeline written the way a shell user would read it (for the report, not for running)."""
        text = " | ".join(" ".join(command) for command in self.commands)
        if self.stdin_path:
            text = f"{text} < {self.stdin_path}"
        if self.stdout_path:
            text = f"{text} > {self.stdout_path}"
        return text


@dataclass
class Watch:
    """What to poll while a pipeline runs: folders whose size we track, a filesystem whose use we track."""

    folders: list[Path] = field(default_factory=list)
    filesystem: Path | None = None


@dataclass
class Measurement:
    wall_seconds: float
    cpu_seconds: float                 # user + system of every process in the pipeline (and their children)
    max_rss_bytes: int                 # largest single process (wait4 ru_maxrss, like /usr/bin/time -v)
    tree_rss_peak_bytes: int           # largest polled sum of VmRSS over the first command's process tree
    exit_codes: list[int]
    stderr_tail: str
    folder_peak_bytes: int = 0         # largest polled total size of the watched folders
    filesystem_peak_used_bytes: int = 0
    filesystem_start_used_bytes: int = 0
    polls: int = 0
    failure: str | None = None         # which command exited with which code; None when all succeeded

    @property
    def ok(self) -> bool:
        return not self.failure


def run_measured(pipeline: Pipeline, *, watch: Watch | None = None) -> Measurement:
    """Run the pipeline to the end and measure it; a failing command is reported, not raised."""
    watch = watch or Watch()
    env = dict(os.environ)
    env.update(pipeline.env or {})
    stderr_files = [tempfile.TemporaryFile() for _ in pipeline.commands]
    stdout_file = open(pipeline.stdout_path, "wb") if pipeline.stdout_path else None  # noqa: SIM115
    stdin_file = open(pipeline.stdin_path, "rb") if pipeline.stdin_path else None  # noqa: SIM115
    processes: list[subprocess.Popen] = []
    filesystem_start = _filesystem_used_bytes(watch.filesystem)
    poller = _Poller(watch)
    started = time.perf_counter()
    try:
        previous_stdout = stdin_file if stdin_file else subprocess.DEVNULL
        for index, argv in enumerate(pipeline.commands):
            is_last = index == len(pipeline.commands) - 1
            stdout = (stdout_file or subprocess.DEVNULL) if is_last else subprocess.PIPE
            process = subprocess.Popen(  # noqa: S603 - argument list, never a shell
                argv, stdin=previous_stdout, stdout=stdout, stderr=stderr_files[index],
                env=env, cwd=pipeline.cwd,
            )
            if previous_stdout not in (subprocess.DEVNULL, stdin_file):
                previous_stdout.close()  # only the child holds the pipe now, so SIGPIPE/EOF propagate
            previous_stdout = process.stdout
            processes.append(process)
            if index == 0:
                poller.start(process.pid)
        exit_codes, cpu_seconds, max_rss_bytes = [], 0.0, 0
        for process in processes:
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            exit_codes.append(process.returncode)
            cpu_seconds += usage.ru_utime + usage.ru_stime
            max_rss_bytes = max(max_rss_bytes, usage.ru_maxrss * 1024)  # Linux reports KiB
        wall_seconds = time.perf_counter() - started
    finally:
        poller.stop()
        for process in processes:
            if process.returncode is None:
                process.kill()
                process.wait()
        for handle in (stdout_file, stdin_file):
            if handle:
                handle.close()
    tails = []
    for argv, handle in zip(pipeline.commands, stderr_files):
        handle.seek(0)
        text = handle.read().decode("utf-8", "replace").strip()
        handle.close()
        if text:
            tails.append(f"[{Path(argv[0]).name}] {text[-STDERR_TAIL_CHARS:]}")
    failed = [
        f"{Path(argv[0]).name} exited {code}"
        for argv, code in zip(pipeline.commands, exit_codes)
        if code not in pipeline.ok_exit_codes
    ]
    return Measurement(
        wall_seconds=wall_seconds,
        cpu_seconds=cpu_seconds,
        max_rss_bytes=max_rss_bytes,
        tree_rss_peak_bytes=poller.tree_rss_peak_bytes,
        exit_codes=exit_codes,
        stderr_tail="\n".join(tails)[-STDERR_TAIL_CHARS:],
        folder_peak_bytes=poller.folder_peak_bytes,
        filesystem_peak_used_bytes=poller.filesystem_peak_used_bytes,
        filesystem_start_used_bytes=filesystem_start,
        polls=poller.polls,
        failure="; ".join(failed) or None,
    )


def run_checked(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                timeout_seconds: float = 600) -> str:
    """Run an untimed helper command (mkfs, mount, repo init); raise with its stderr if it fails."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    completed = subprocess.run(  # noqa: S603 - argument list, never a shell
        list(argv), stdin=subprocess.DEVNULL, capture_output=True, env=full_env, cwd=cwd,
        timeout=timeout_seconds, check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {completed.returncode}: "
            f"{completed.stderr.decode('utf-8', 'replace').strip()[-STDERR_TAIL_CHARS:]}"
        )
    return completed.stdout.decode("utf-8", "replace")


def folder_bytes(folder: Path) -> int:
    """Disk blocks used by everything under folder (0 if it does not exist); files vanishing mid-walk are skipped."""
    total = 0
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    total += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
    return total


def _filesystem_used_bytes(path: Path | None) -> int:
    if path is None:
        return 0
    stats = os.statvfs(path)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


def _process_tree(root_pid: int) -> list[int]:
    pids, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    stack.extend(int(child) for child in handle.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return pids


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class _Poller:
    """Samples the process tree's RSS, the watched folders and filesystem every POLL_INTERVAL_SECONDS."""

    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self.tree_rss_peak_bytes = 0
        self.folder_peak_bytes = 0
        self.filesystem_peak_used_bytes = 0
        self.polls = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._root_pid = 0

    def start(self, root_pid: int) -> None:
        self._root_pid = root_pid
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _loop(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(POLL_INTERVAL_SECONDS):
                return

    def _sample(self) -> None:
        self.polls += 1
        tree_rss = sum(_rss_bytes(pid) for pid in _process_tree(self._root_pid))
        self.tree_rss_peak_bytes = max(self.tree_rss_peak_bytes, tree_rss)
        if self.watch.folders:
            size = sum(folder_bytes(folder) for folder in self.watch.folders)
            self.folder_peak_bytes = max(self.folder_peak_bytes, size)
        if self.watch.filesystem is not None:
            used = _filesystem_used_bytes(self.watch.filesystem)
            self.filesystem_peak_used_bytes = max(self.filesystem_peak_used_bytes, used)
