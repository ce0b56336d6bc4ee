"""A real btrfs file system on a loop-mounted image, made and removed by each test that asks for it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import need, need_binary, unmount


@pytest.fixture
def btrfs_mount(tmp_path: Path) -> Iterator[Path]:
    """A fresh btrfs file system mounted at tmp_path/btrfs (needs root, mkfs.btrfs and loop devices)."""
    from ncbackup import platform

    need(platform.is_root(), "mounting a btrfs image needs root")
    need_binary("mkfs.btrfs")
    need_binary("btrfs")
    image, mount_point = tmp_path / "btrfs.img", tmp_path / "btrfs"
    with image.open("wb") as file:
        file.truncate(256 << 20)
    subprocess.run(["mkfs.btrfs", "-q", str(image)], check=True, capture_output=True, timeout=60)
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mount_point)], capture_output=True, text=True,
                             timeout=60, check=False)
    need(mounted.returncode == 0, f"cannot loop-mount a btrfs image here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        unmount(mount_point)
        image.unlink(missing_ok=True)

