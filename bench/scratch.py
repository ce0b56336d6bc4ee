"""A fresh ext4 filesystem per measurement, so every tool writes into the same kind of empty disk.

The root filesystem here has no journal and gets slower at creating files after many deletions, so a
tool measured late in a run would be penalised by the ones before it; a new loop-mounted image per
measurement removes that. The image is sparse, unmounted and deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.measure import run_checked

UMOUNT_ATTEMPTS = 10


class ScratchError(RuntimeError):
    """The scratch filesystem could not be made (not root, no loop devices, mkfs missing)."""


@contextmanager
def scratch_filesystem(images_folder: Path, label: str, *, size_bytes: int, use_loop: bool = True) -> Iterator[Path]:
    """Yield the mount point of a new, empty ext4 filesystem of size_bytes; it is gone after the block.

    With use_loop=False a plain folder under images_folder stands in (for machines without root);
    the report says so, because timings then depend on what earlier runs left on the disk.
    """
    images_folder.mkdir(parents=True, exist_ok=True)
    mount_point = images_folder / f"{label}.mnt"
    if not use_loop:
        if mount_point.exists():
            shutil.rmtree(mount_point)
        mount_point.mkdir()
        try:
            yield mount_point
        finally:
            shutil.rmtree(mount_point, ignore_errors=True)
        return
    image = images_folder / f"{label}.img"
    _clean_leftovers(image, mount_point)
    with open(image, "wb") as handle:
        handle.truncate(size_bytes)
    mount_point.mkdir()
    mounted = False
    try:
        try:
            run_checked(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)])
            # noinit_itable: no background inode-table zeroing competing with the timed run.
            run_checked(["mount", "-o", "loop,noinit_itable", str(image), str(mount_point)])
        except (RuntimeError, FileNotFoundError) as error:
            raise ScratchError(
                f"cannot make a loop-mounted ext4 scratch filesystem at {image} ({error}); "
                "run the benchmark as root, or pass --no-loop to write into a plain folder"
            ) from None
        mounted = True
        yield mount_point
    finally:
        if mounted:
            _unmount(mount_point)
        if mount_point.exists():
            mount_point.rmdir()
        image.unlink(missing_ok=True)


def sync_filesystem(mount_point: Path) -> None:
    """Write this filesystem's dirty pages to its image (syncfs), leaving other filesystems alone."""
    run_checked(["sync", "-f", str(mount_point)])


def _unmount(mount_point: Path) -> None:
    for attempt in range(UMOUNT_ATTEMPTS):
        try:
            run_checked(["umount", str(mount_point)])
            return
        except RuntimeError:
            if attempt == UMOUNT_ATTEMPTS - 1:
                raise
            time.sleep(0.5)  # a process that just exited may still hold a file open for a moment


def _clean_leftovers(image: Path, mount_point: Path) -> None:
    """Remove what an interrupted earlier run left behind under the same label."""
    if mount_point.exists():
        if os.path.ismount(mount_point):
            _unmount(mount_point)
        # Unmounted for sure now (umount raised otherwise): what is left is a plain folder of ours.
        shutil.rmtree(mount_point)
    image.unlink(missing_ok=True)
