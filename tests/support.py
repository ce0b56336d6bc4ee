"""Helpers every test module imports (`from tests.support import need`).

On CI (CI=1, yes or true, any case) a missing tool or server is a failure, never a skip: need() fails,
and tests/conftest.py turns every other skip into a failure unless ALLOWED_CI_SKIPS lists its reason.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def is_ci(value: str | None) -> bool:
    """Whether a CI environment variable's value means "this is CI" (1, yes, true; any case, blanks ignored)."""
    return (value or "").strip().lower() in {"1", "yes", "true"}


ON_CI = is_ci(os.environ.get("CI"))

# The only skips CI may show: the start of the skip reason -> why CI may lack it. Keep it short: every
# entry is a check CI never makes. CI has every tool, every server, and runs as root; what it lacks is the
# other operating system.
# Example entry: "peak RSS is read from /proc (Linux)": "a CI runner without /proc (not ours today)".
ALLOWED_CI_SKIPS: dict[str, str] = {
    "runs on a Windows host only": "the Linux CI has no msvcrt, taskkill or icacls; .github/workflows/windows.yml "
                                   "runs these tests on a Windows runner",
    "needs a POSIX host": "on the Windows runner: stand-in programs are #! scripts there; the Linux CI runs them",
}

NOT_POSIX = "needs a POSIX host (stand-in programs are #! scripts, paths are read the POSIX way)"
NOT_WINDOWS = "runs on a Windows host only (its own locks, taskkill, icacls)"


def is_skip_allowed_on_ci(reason: str) -> bool:
    """Whether a skip with this reason is in ALLOWED_CI_SKIPS."""
    return any(reason.startswith(allowed) for allowed in ALLOWED_CI_SKIPS)


def skip_reason(report: pytest.TestReport) -> str:
    """The reason of a skipped test report, as pytest.skip() or a skipif mark gave it."""
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def fail_unlisted_skip(report: pytest.TestReport) -> None:
    """On CI, turn a skip whose reason ALLOWED_CI_SKIPS does not list into a failure (xfail stays as it is)."""
    if not ON_CI or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = skip_reason(report)
    if is_skip_allowed_on_ci(reason):
        return
    report.outcome = "failed"
    report.longrepr = (f"skipped on CI ({reason}); CI must run every test: install what is missing, or, if CI "
                       "can never run it, add its reason to ALLOWED_CI_SKIPS in tests/support.py")


def _test_signer():
    from ncbackup.signing import Trust, generate_key

    key = generate_key()
    return key, Trust(keys=(key.public,))


# One signing key for tests that write sets through the engine directly, and the trust that reads them.
SIGNER, TRUST = _test_signer()


def read_manifest(storage, set_id: str):
    """A set's manifest, read the one way the product reads it (signature checked against TRUST)."""
    from ncbackup.setformat import open_set

    return open_set(storage, set_id, TRUST).manifest


def ensure_signing_key(folder: Path) -> Path:
    """Make folder/signing.key (the default SIGNING_KEY beside a KEY_FILE or a config in folder) unless it exists,
    so a test's first run does not warn that it created one."""
    from ncbackup.signing import write_signing_key

    path = Path(folder) / "signing.key"
    if not path.exists():
        write_signing_key(path)
    return path


def trust_of(config_path: Path):
    """The trust `ncbackup list/verify/restore -c config_path` would use (the config's own signing key)."""
    from ncbackup.commands.setselect import trust_for
    from ncbackup.config import load_config

    return trust_for(load_config(config_path), [], allow_unsigned=False)


def need(condition: bool, why: str) -> None:
    """Skip locally when a prerequisite is missing; fail on CI unless ALLOWED_CI_SKIPS lists why."""
    if condition:
        return
    if ON_CI and not is_skip_allowed_on_ci(why):
        pytest.fail(f"prerequisite missing on CI: {why}")
    pytest.skip(why)


def need_binary(*names: str) -> str:
    """Return the path of the first program found among names; skip (fail on CI) if none is."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    need(False, f"none of {', '.join(names)} is installed")
    return ""  # unreachable


def unmount(folder: Path) -> None:
    """Unmount a test tmpfs, waiting (bounded) for a process that still has a file open there, then lazily."""
    import time

    for _ in range(100):
        if subprocess.run(["umount", str(folder)], capture_output=True, check=False).returncode == 0:
            return
        time.sleep(0.1)
    # Still busy (a server child holding a file): detach it now; the kernel frees it when the file closes.
    subprocess.run(["umount", "--lazy", str(folder)], capture_output=True, check=False)


@contextmanager
def small_tmpfs(folder: Path, *, size_bytes: int) -> Iterator[Path]:
    """Mount a tmpfs of size_bytes at folder (created if missing) and always unmount it afterwards.

    Needs root and mount(8): skips locally, fails on CI, when the mount is impossible.
    """
    from ncbackup import platform

    need(platform.is_root(), "mounting a small tmpfs needs root")
    need_binary("mount")
    need_binary("umount")
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(folder)],
                            capture_output=True, text=True, check=False)
    need(result.returncode == 0, f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield folder
    finally:
        unmount(folder)


# --- running as an unprivileged user ------------------------------------------------------------------

UNPRIVILEGED_USER = "nobody"


def _python_path() -> str:
    """PYTHONPATH that finds ncbackup and its dependencies from outside this virtualenv."""
    import site

    return os.pathsep.join([str(REPO / "src"), *site.getsitepackages()])


@functools.lru_cache(maxsize=1)
def _unprivileged_python() -> str | None:
    """An interpreter UNPRIVILEGED_USER can start that imports ncbackup (ours may sit under root's home)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable, getattr(sys, "_base_executable", sys.executable), shutil.which(version),
                  f"/usr/bin/{version}", f"/usr/local/bin/{version}"]
    for candidate in dict.fromkeys(filter(None, candidates)):
        try:
            probe = subprocess.run([candidate, "-c", "import ncbackup.cli"], user=UNPRIVILEGED_USER, cwd="/",
                                   env={"PYTHONPATH": _python_path(), "PATH": os.defpath},
                                   capture_output=True, timeout=60, check=False)
        except OSError:
            continue
        if probe.returncode == 0:
            return candidate
    return None


def run_python_unprivileged(arguments: Sequence[str], *, timeout_seconds: float = 120) -> subprocess.CompletedProcess:
    """Run `python arguments...` with ncbackup importable, as a user who cannot read what root made unreadable.

    As root (who reads every file) that is UNPRIVILEGED_USER; as anyone else, ourselves.
    """
    from ncbackup import platform

    options: dict = {}
    python = sys.executable
    if platform.is_root():
        need(platform.uid_for_user_name(UNPRIVILEGED_USER) is not None, f"there is no user {UNPRIVILEGED_USER}")
        found = _unprivileged_python()
        need(found is not None, f"no Python {sys.version_info.major}.{sys.version_info.minor} that "
                                f"{UNPRIVILEGED_USER} may run and that imports ncbackup")
        python, options = str(found), {"user": UNPRIVILEGED_USER, "cwd": "/"}
    return subprocess.run([python, *arguments], capture_output=True, text=True, timeout=timeout_seconds,
                          env={"PYTHONPATH": _python_path(), "PATH": os.defpath, "LANG": "C.UTF-8"},
                          check=False, **options)


@contextmanager
def unreadable_file(name: str, content: str) -> Iterator[Path]:
    """A file nobody but root can read, in a folder every user can reach (but not list); removed afterwards.

    The folder is not under pytest's tmp_path: that one sits in a folder only its owner may enter.
    """
    folder = Path(tempfile.mkdtemp(prefix="ncbackup-test-"))
    try:
        folder.chmod(0o711)
        path = folder / name
        path.write_text(content)
        path.chmod(0)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
