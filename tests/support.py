"""Helpers every test module imports (`from tests.support import need`). On CI (CI=true) a missing tool or server is a failure, never a skip."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ON_CI = os.environ.get("CI", "").lower() == "true"


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


def trust_of(config_path: Path):
    """The trust `ncbackup list/verify/restore -c config_path` would use (the config's own signing key)."""
    from ncbackup.commands.setselect import trust_for
    from ncbackup.config import load_config

    return trust_for(load_config(config_path), [], allow_unsigned=False)


def need(condition: bool, why: str) -> None:
    """Skip locally when a prerequisite is missing; fail on CI."""
    if condition:
        return
    if ON_CI:
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
