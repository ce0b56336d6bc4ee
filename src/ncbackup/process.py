"""The only module that starts subprocesses: argument lists, timeouts, drained stderr, masked secrets.

It knows no tool by name. Nothing else in ncbackup imports ``subprocess``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ncbackup import platform
from ncbackup.errors import BackupError, CommandFailed

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 20
PIPE_BUFFER_BYTES = 1 << 20
# Once a program has ended, how long its pipes may stay open (a leftover grandchild holding them)
# before ncbackup stops waiting for them.
PIPE_GRACE_SECONDS = 5.0

# Every started program not yet reaped, so Ctrl-C can kill the groups of those other threads started.
_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


def which(program: str | Path) -> Path | None:
    """Return the full path of a program (an explicit path is checked as is), or None."""
    found = shutil.which(str(program))
    return Path(found) if found else None


def _mask(text: str, secrets: Sequence[str]) -> str:
    """Return text with every secret the caller named replaced by ***, for logs and errors."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    """A pipe Popen was asked to open (stdin/stdout/stderr=PIPE): never None then."""
    if stream is None:
        raise RuntimeError("a pipe that Popen should have opened is missing")
    return stream


def _popen(argv: Sequence[str | Path], secrets: Sequence[str], **kwargs) -> tuple[subprocess.Popen, list[str]]:
    """Start argv in its own process group; return it and its argv as logs and errors show it (secrets masked)."""
    shown = [_mask(str(arg), secrets) for arg in argv]
    log.debug("running %s", " ".join(shown))
    try:
        # Its own process group: a timeout, an abort or Ctrl-C can then kill it with everything it started.
        proc = subprocess.Popen(  # noqa: S603 - argument list, never a shell
            [str(a) for a in argv], **kwargs, **platform.new_process_group_options(),
        )
    except FileNotFoundError:
        raise BackupError(
            f"program {shown[0]!r} was not found; install it or give its full path in the config"
        ) from None
    except PermissionError:
        raise BackupError(f"program {shown[0]!r} is not executable; check its permissions") from None
    with _running_lock:
        _running.add(proc)
    return proc, shown


def _wait(proc: subprocess.Popen, timeout_seconds: float | None = None) -> int:
    """Wait for the program itself (not its pipes); TimeoutExpired after timeout_seconds."""
    code = proc.wait(timeout=timeout_seconds)
    with _running_lock:
        _running.discard(proc)
    return code


# How long taskkill (Windows) may take to end a program's tree before ncbackup stops waiting for it.
TREE_KILL_TIMEOUT_SECONDS = 30.0


def _kill_tree(argv: list[str]) -> None:
    """Run the platform's tree-killing command (taskkill on Windows); a failure changes nothing: the kill below follows."""
    try:
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,  # noqa: S603 - argument list
                       stderr=subprocess.DEVNULL, timeout=TREE_KILL_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("could not end the programs %s started (%s: %s)", argv[-1], argv[0], error)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the program's whole process group, grandchildren included."""
    tree_kill = platform.tree_kill_argv(proc.pid)
    if tree_kill is not None:
        # Windows: no group signal kills; taskkill /T walks the tree while the program still holds it together.
        _kill_tree(tree_kill)
    else:
        platform.kill_process_group(proc.pid)
    # The program itself too, should it have moved to a group of its own (Popen never signals a reaped pid).
    try:
        proc.kill()
    except OSError:
        pass


def _stop(proc: subprocess.Popen) -> int:
    """Kill the program's whole process group and reap it."""
    _kill_group(proc)
    return _wait(proc)


def kill_all_running() -> None:
    """Kill the process group of every program still running (Ctrl-C: its own group never gets the terminal's)."""
    with _running_lock:
        running = list(_running)
    for proc in running:
        if proc.poll() is None:
            _kill_group(proc)


def _join_all(threads: Sequence[threading.Thread], timeout_seconds: float) -> bool:
    """Join every thread within one shared bound; True when all of them ended."""
    deadline = time.monotonic() + timeout_seconds
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


def _note_leftover(shown: list[str]) -> None:
    log.warning("%s ended but left a process running that keeps its output open; ncbackup does not wait for it",
                Path(shown[0]).name)


def _log_stderr(shown: list[str], lines: Sequence[str], *, total_lines: int, level: int | None) -> None:
    """Log what a program that succeeded wrote on stderr (warnings a dump tool prints would vanish otherwise)."""
    lines = [line for line in lines if line.strip()]
    if level is None or not lines:
        return
    program = Path(shown[0]).name
    if total_lines > len(lines):
        log.log(level, "%s wrote %d lines on stderr; the last %d follow", program, total_lines, len(lines))
    for line in lines:
        log.log(level, "%s: %s", program, line)


class _ReadAll(threading.Thread):
    """Reads a pipe to its end in the background, keeping every byte."""

    def __init__(self, pipe: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.pipe = pipe
        self.chunks: list[bytes] = []

    def run(self) -> None:
        try:
            read1 = getattr(self.pipe, "read1", self.pipe.read)   # Popen's pipes are buffered readers
            for chunk in iter(lambda: read1(PIPE_BUFFER_BYTES), b""):
                self.chunks.append(chunk)
        except (OSError, ValueError):
            pass  # closed under us: what was read is kept
        finally:
            self.pipe.close()

    def data(self) -> bytes:
        return b"".join(self.chunks)


class _Feeder(threading.Thread):
    """Writes input bytes to a child's stdin in the background, then closes it."""

    def __init__(self, pipe: IO[bytes], data: bytes) -> None:
        super().__init__(daemon=True)
        self.pipe = pipe
        self.data = data

    def run(self) -> None:
        try:
            self.pipe.write(self.data)
            self.pipe.close()
        except (OSError, ValueError):
            pass  # the child stopped reading: its exit status says why


def run(
    argv: Sequence[str | Path],
    *,
    timeout_seconds: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input_bytes: bytes | None = None,
    secrets: Sequence[str] = (),
    check: bool = True,
    stderr_log_level: int | None = logging.WARNING,
) -> Completed:
    """Run argv to completion, capturing output; raise CommandFailed on a non-zero exit if check.

    A timeout or an interruption kills the program's whole process group. What a successful program
    wrote on stderr is logged at stderr_log_level (None: not logged, the caller reads it).
    """
    proc, shown = _popen(
        argv,
        secrets,
        stdin=subprocess.PIPE if input_bytes is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        cwd=cwd,
    )
    stdout_reader, stderr_reader = _ReadAll(_pipe(proc.stdout)), _ReadAll(_pipe(proc.stderr))
    threads: list[threading.Thread] = [stdout_reader, stderr_reader]
    if input_bytes is not None:
        threads.append(_Feeder(_pipe(proc.stdin), input_bytes))
    for thread in threads:
        thread.start()
    timed_out = False
    try:
        code = _wait(proc, timeout_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        code = _stop(proc)
    except BaseException:
        _stop(proc)
        raise
    # The pipes close when the last process holding them ends: bounded, a leftover grandchild may keep them.
    if not _join_all(threads, PIPE_GRACE_SECONDS) and not timed_out:
        _note_leftover(shown)
    stdout, stderr = stdout_reader.data(), stderr_reader.data()
    stderr_text = _mask(stderr.decode("utf-8", "replace"), secrets)
    if timed_out:
        raise CommandFailed(shown, None, _tail(stderr_text), timed_out=True)
    result = Completed(shown, code, stdout, stderr)
    if check and code != 0:
        raise CommandFailed(result.argv, code, _tail(stderr_text))
    if code == 0:
        lines = stderr_text.splitlines()
        _log_stderr(shown, lines[-STDERR_TAIL_LINES:], total_lines=len(lines), level=stderr_log_level)
    return result


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-STDERR_TAIL_LINES:])


class _StderrDrain(threading.Thread):
    """Reads a child's stderr in the background so it never blocks; keeps the last lines."""

    def __init__(self, pipe: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.pipe = pipe
        self.lines: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self.line_count = 0

    def run(self) -> None:
        try:
            for raw in iter(self.pipe.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                self.line_count += 1
        except (OSError, ValueError):
            pass
        finally:
            self.pipe.close()

    def tail(self) -> str:
        return "\n".join(self.lines)


class _Watchdog:
    """Kills a program's process group after timeout_seconds unless cancelled."""

    def __init__(self, proc: subprocess.Popen, timeout_seconds: float | None) -> None:
        self.fired = False
        self._timer = None
        if timeout_seconds is not None:
            self._timer = threading.Timer(timeout_seconds, self._fire, args=(proc,))
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, proc: subprocess.Popen) -> None:
        self.fired = True
        _kill_group(proc)

    def cancel(self) -> None:
        if self._timer:
            self._timer.cancel()


def _abort(proc: subprocess.Popen, drain: _StderrDrain, watchdog: _Watchdog) -> None:
    """The caller gave up (an exception, Ctrl-C): kill the whole group at once, reap it, stop waiting for its pipes."""
    watchdog.cancel()
    _stop(proc)
    drain.join(timeout=PIPE_GRACE_SECONDS)


def _finish(proc: subprocess.Popen, drain: _StderrDrain, watchdog: _Watchdog, shown: list[str]) -> None:
    try:
        code = _wait(proc)
    except BaseException:
        _abort(proc, drain, watchdog)
        raise
    watchdog.cancel()
    drain.join(timeout=PIPE_GRACE_SECONDS)
    if drain.is_alive() and not watchdog.fired:
        _note_leftover(shown)
    if watchdog.fired:
        raise CommandFailed(shown, code, drain.tail(), timed_out=True)
    if code != 0:
        raise CommandFailed(shown, code, drain.tail())
    _log_stderr(shown, list(drain.lines), total_lines=drain.line_count, level=logging.WARNING)


@contextmanager
def stream_stdout(
    argv: Sequence[str | Path],
    *,
    timeout_seconds: float | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[IO[bytes]]:
    """Start argv and yield its stdout as a readable byte stream.

    On leaving the block the process is waited for; a non-zero exit raises CommandFailed, so a dump
    that dies halfway can never look complete. Leaving the block early (an exception, Ctrl-C) kills
    it and everything it started at once. A successful program's stderr is logged as warnings.
    """
    proc, shown = _popen(
        argv, (), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None, bufsize=PIPE_BUFFER_BYTES,
    )
    drain = _StderrDrain(_pipe(proc.stderr))
    drain.start()
    watchdog = _Watchdog(proc, timeout_seconds)
    stdout = _pipe(proc.stdout)
    try:
        yield stdout
    except BaseException:
        _abort(proc, drain, watchdog)
        raise
    finally:
        stdout.close()
    _finish(proc, drain, watchdog, shown)


@contextmanager
def stream_stdin(
    argv: Sequence[str | Path],
    *,
    timeout_seconds: float | None = None,
    env: Mapping[str, str] | None = None,
    stdout: IO[bytes] | None = None,
) -> Iterator[IO[bytes]]:
    """Start argv and yield its stdin as a writable byte stream; closing waits and checks the exit.

    Leaving the block early (an exception, Ctrl-C) kills the program and everything it started.
    """
    proc, shown = _popen(
        argv, (), stdin=subprocess.PIPE,
        stdout=stdout if stdout is not None else subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None, bufsize=PIPE_BUFFER_BYTES,
    )
    drain = _StderrDrain(_pipe(proc.stderr))
    drain.start()
    watchdog = _Watchdog(proc, timeout_seconds)
    stdin = _pipe(proc.stdin)
    try:
        yield stdin
        stdin.close()
    except BrokenPipeError:
        # The child stopped reading: its exit status and stderr say why.
        pass
    except BaseException:
        _abort(proc, drain, watchdog)
        raise
    finally:
        try:
            stdin.close()
        except BrokenPipeError:
            pass
    _finish(proc, drain, watchdog, shown)


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment plus extra entries, for children that need a variable set."""
    env = dict(os.environ)
    if extra:
        env.update(extra)
    return env


def run_streaming_lines(
    argv: Sequence[str | Path],
    *,
    on_line,
    timeout_seconds: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    secrets: Sequence[str] = (),
) -> None:
    """Run argv with stdout and stderr merged, handing each line to on_line as it comes.

    A timeout or an interruption kills the program and everything it started (a hanging script's
    ``sleep`` included), so the pipe closes; raises CommandFailed on a non-zero exit or a timeout.
    """
    proc, shown = _popen(
        argv, secrets, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=dict(env) if env is not None else None, cwd=cwd,
    )
    lines: deque[str] = deque(maxlen=STDERR_TAIL_LINES)

    stdout = _pipe(proc.stdout)

    def read() -> None:
        try:
            for raw in iter(stdout.readline, b""):
                line = _mask(raw.decode("utf-8", "replace").rstrip("\n"), secrets)
                lines.append(line)
                on_line(line)
        except (OSError, ValueError):
            pass
        finally:
            stdout.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    timed_out = False
    try:
        code = _wait(proc, timeout_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        code = _stop(proc)
    except BaseException:
        _stop(proc)
        raise
    # Grandchildren that outlive a successful parent may keep the pipe open: do not wait for them forever.
    reader.join(timeout=PIPE_GRACE_SECONDS)
    if reader.is_alive() and not timed_out:
        _note_leftover(shown)
    if timed_out:
        raise CommandFailed(shown, code, "\n".join(lines), timed_out=True)
    if code != 0:
        raise CommandFailed(shown, code, "\n".join(lines))
