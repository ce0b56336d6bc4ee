"""The only module that starts subprocesses: argument lists, timeouts, drained stderr, masked secrets.

It knows no tool by name. Nothing else in ncbackup imports ``subprocess``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ncbackup.errors import BackupError, CommandFailed

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 20
PIPE_BUFFER_BYTES = 1 << 20


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


def masked(argv: Sequence[str | Path], secrets: Sequence[str] = ()) -> list[str]:
    """Return argv with every secret replaced by ***, for logs and errors."""
    out = []
    for arg in argv:
        text = str(arg)
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        out.append(text)
    return out


def _mask_text(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _popen(argv: Sequence[str | Path], secrets: Sequence[str], **kwargs) -> subprocess.Popen:
    shown = masked(argv, secrets)
    log.debug("running %s", " ".join(shown))
    try:
        return subprocess.Popen([str(a) for a in argv], **kwargs)  # noqa: S603 - argument list, never a shell
    except FileNotFoundError:
        raise BackupError(
            f"program {shown[0]!r} was not found; install it or give its full path in the config"
        ) from None
    except PermissionError:
        raise BackupError(f"program {shown[0]!r} is not executable; check its permissions") from None


def run(
    argv: Sequence[str | Path],
    *,
    timeout_seconds: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input_bytes: bytes | None = None,
    secrets: Sequence[str] = (),
    check: bool = True,
) -> Completed:
    """Run argv to completion, capturing output; raise CommandFailed on a non-zero exit if check."""
    proc = _popen(
        argv,
        secrets,
        stdin=subprocess.PIPE if input_bytes is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        cwd=cwd,
    )
    try:
        stdout, stderr = proc.communicate(input=input_bytes, timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        _kill(proc)
        stdout, stderr = proc.communicate()
        raise CommandFailed(masked(argv, secrets), None, _mask_text(stderr.decode("utf-8", "replace"), secrets), timed_out=True) from None
    result = Completed(masked(argv, secrets), proc.returncode, stdout, stderr)
    if check and proc.returncode != 0:
        raise CommandFailed(result.argv, proc.returncode, _mask_text(_tail(stderr.decode("utf-8", "replace")), secrets))
    return result


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-STDERR_TAIL_LINES:])


def _kill(proc: subprocess.Popen) -> None:
    try:
        proc.kill()
    except ProcessLookupError:
        pass


class _StderrDrain(threading.Thread):
    """Reads a child's stderr in the background so it never blocks; keeps the last lines."""

    def __init__(self, pipe: IO[bytes], on_line=None) -> None:
        super().__init__(daemon=True)
        self.pipe = pipe
        self.lines: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self.on_line = on_line

    def run(self) -> None:
        for raw in iter(self.pipe.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if self.on_line:
                self.on_line(line)
        self.pipe.close()

    def tail(self) -> str:
        return "\n".join(self.lines)


class _Watchdog:
    """Kills a process after timeout_seconds unless cancelled."""

    def __init__(self, proc: subprocess.Popen, timeout_seconds: float | None) -> None:
        self.fired = False
        self._timer = None
        if timeout_seconds is not None:
            self._timer = threading.Timer(timeout_seconds, self._fire, args=(proc,))
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, proc: subprocess.Popen) -> None:
        self.fired = True
        _kill(proc)

    def cancel(self) -> None:
        if self._timer:
            self._timer.cancel()


def _finish(proc: subprocess.Popen, drain: _StderrDrain, watchdog: _Watchdog, shown: list[str], secrets, ok_codes) -> None:
    code = proc.wait()
    watchdog.cancel()
    drain.join()
    if watchdog.fired:
        raise CommandFailed(shown, code, _mask_text(drain.tail(), secrets), timed_out=True)
    if code not in ok_codes:
        raise CommandFailed(shown, code, _mask_text(drain.tail(), secrets))


@contextmanager
def stream_stdout(
    argv: Sequence[str | Path],
    *,
    timeout_seconds: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    secrets: Sequence[str] = (),
    ok_codes: Sequence[int] = (0,),
    on_stderr_line=None,
) -> Iterator[IO[bytes]]:
    """Start argv and yield its stdout as a readable byte stream.

    On leaving the block the process is waited for; a non-zero exit raises CommandFailed, so a dump
    that dies halfway can never look complete. Leaving the block early (an exception) kills it.
    """
    proc = _popen(
        argv, secrets, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None, cwd=cwd, bufsize=PIPE_BUFFER_BYTES,
    )
    drain = _StderrDrain(proc.stderr, on_stderr_line)
    drain.start()
    watchdog = _Watchdog(proc, timeout_seconds)
    shown = masked(argv, secrets)
    try:
        yield proc.stdout
    except BaseException:
        _kill(proc)
        proc.wait()
        watchdog.cancel()
        raise
    finally:
        proc.stdout.close()
    _finish(proc, drain, watchdog, shown, secrets, ok_codes)


@contextmanager
def stream_stdin(
    argv: Sequence[str | Path],
    *,
    timeout_seconds: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    secrets: Sequence[str] = (),
    ok_codes: Sequence[int] = (0,),
    stdout: IO[bytes] | None = None,
) -> Iterator[IO[bytes]]:
    """Start argv and yield its stdin as a writable byte stream; closing waits and checks the exit."""
    proc = _popen(
        argv, secrets, stdin=subprocess.PIPE,
        stdout=stdout if stdout is not None else subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None, cwd=cwd, bufsize=PIPE_BUFFER_BYTES,
    )
    drain = _StderrDrain(proc.stderr)
    drain.start()
    watchdog = _Watchdog(proc, timeout_seconds)
    shown = masked(argv, secrets)
    try:
        yield proc.stdin
        proc.stdin.close()
    except BrokenPipeError:
        # The child stopped reading: its exit status and stderr say why.
        pass
    except BaseException:
        _kill(proc)
        proc.wait()
        watchdog.cancel()
        raise
    finally:
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
    _finish(proc, drain, watchdog, shown, secrets, ok_codes)


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

    The child gets its own process group, so a timeout kills it and everything it started (a
    hanging script's ``sleep`` included) and the pipe closes; raises CommandFailed on a non-zero
    exit or a timeout.
    """
    from ncbackup import platform  # late import: platform is optional for every other caller

    proc = _popen(
        argv, secrets, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=dict(env) if env is not None else None, cwd=cwd, **platform.new_process_group_options(),
    )
    lines: deque[str] = deque(maxlen=STDERR_TAIL_LINES)

    def read() -> None:
        for raw in iter(proc.stdout.readline, b""):
            line = _mask_text(raw.decode("utf-8", "replace").rstrip("\n"), secrets)
            lines.append(line)
            on_line(line)
        proc.stdout.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    timed_out = False
    try:
        code = proc.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        platform.kill_process_group(proc.pid)
        code = proc.wait()
    except BaseException:
        platform.kill_process_group(proc.pid)
        proc.wait()
        raise
    # Grandchildren that outlive a successful parent may keep the pipe open: do not wait for them forever.
    reader.join(timeout=5)
    shown = masked(argv, secrets)
    if timed_out:
        raise CommandFailed(shown, code, "\n".join(lines), timed_out=True)
    if code != 0:
        raise CommandFailed(shown, code, "\n".join(lines))


class Background:
    """A long-running child started by ``start_background`` (a throwaway test server); ``stop`` ends it."""

    def __init__(self, proc: subprocess.Popen, shown: list[str]) -> None:
        self._proc = proc
        self.argv = shown

    @property
    def pid(self) -> int:
        return self._proc.pid

    def is_running(self) -> bool:
        return self._proc.poll() is None

    def stop(self, *, timeout_seconds: float = 30) -> int | None:
        """Terminate the child, kill it if it has not exited after timeout_seconds; return its exit status."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=timeout_seconds)
            except subprocess.TimeoutExpired:
                _kill(self._proc)
                self._proc.wait()
        return self._proc.returncode


def start_background(
    argv: Sequence[str | Path],
    *,
    output_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    secrets: Sequence[str] = (),
) -> Background:
    """Start argv without waiting for it, its stdout and stderr appended to output_path."""
    with open(output_path, "ab") as output:
        proc = _popen(
            argv, secrets, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None, cwd=cwd,
        )
    return Background(proc, masked(argv, secrets))
