"""A local user swaps a folder in the target for a symlink while a restore runs: nothing lands outside."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable

import pytest

from ncbackup import platform
from ncbackup.archive.extract import extract_tar
from tests.unit.archive.conftest import entries, snapshot, tar_members


class _PausingReader:
    """Hands out the archive up to pause_at only; the first read past it runs hook first (between two members)."""

    def __init__(self, data: bytes, *, pause_at: int, hook: Callable[[], None]) -> None:
        self._data = data
        self._position = 0
        self._pause_at = pause_at
        self._hook: Callable[[], None] | None = hook

    def read(self, size: int = -1) -> bytes:
        if self._position >= self._pause_at and self._hook is not None:
            hook, self._hook = self._hook, None
            hook()
        end = len(self._data) if size < 0 else self._position + size
        if self._position < self._pause_at:
            end = min(end, self._pause_at)
        chunk = self._data[self._position:end]
        self._position = end
        return chunk


def _archive(*, folders_between: int) -> tuple[bytes, int, int]:
    """The archive, the offset of d/b's header (the swap between members) and of the end marker (the swap at the end)."""
    members = [
        ("d/", "dir", None), ("d/a", "file", b"a"), ("d/link", "symlink", "a"),
        ("d/b", "file", b"b"), ("d/sub/", "dir", None), ("d/sub/c", "file", b"c"),
    ]
    # Enough other folders to push d out of the extractor's open folders, so d/late needs a fresh walk.
    members += [(f"z/{number:03d}/", "dir", None) for number in range(folders_between)]
    members += [("d/late", "file", b"late")]
    data = tar_members(*members)
    with tarfile.open(fileobj=io.BytesIO(data)) as reader:
        offsets = {info.name: info.offset for info in reader.getmembers()}
        end = reader.offset
    return data, offsets["d/b"], end


@pytest.mark.parametrize("when", ["between members", "after the last member"])
@pytest.mark.parametrize("folders_between", [0, 300])
def test_folder_swapped_for_a_symlink_during_restore_changes_nothing_outside(tmp_path, outside, when, folders_between):
    data, between, end = _archive(folders_between=folders_between)
    target = tmp_path / "target"

    def swap() -> None:
        os.rename(target / "d", target / "d-moved")
        os.symlink(outside, target / "d")

    before = snapshot(outside)
    reader = _PausingReader(data, pause_at=between if when == "between members" else end, hook=swap)
    warnings = extract_tar(reader, target, restore_owners=platform.is_root())

    assert snapshot(outside) == before  # no file, mode, owner or mtime applied through the link
    assert sorted(os.listdir(tmp_path)) == ["outside", "target"]
    assert os.readlink(target / "d") == str(outside)
    assert "folder d: owner, mode and mtime not applied; it was replaced during the restore" in warnings
    assert "symlink d/link not restored: its place in the target changed during the restore" in warnings
    moved = target / "d-moved"
    if when == "after the last member":
        assert sorted(path.name for path in moved.iterdir()) == ["a", "b", "late", "link", "sub"]
        assert (moved / "link").is_file() and not (moved / "link").is_symlink()  # the placeholder, left as it was
    else:
        # The members after the swap went into the folder held open (now d-moved), or, once it was no
        # longer open, were refused at the symlink: never through it.
        assert (moved / "a").read_bytes() == b"a" and (moved / "sub" / "c").read_bytes() == b"c"
        if folders_between:
            assert "d/late not restored: d in the target is a symlink or a file, not a folder" in warnings
            assert not (moved / "late").exists()
    for path in entries(target):
        assert not path.is_symlink() or path == target / "d"


def test_folder_metadata_goes_to_the_folder_not_to_what_its_name_now_holds(tmp_path, outside):
    # The swap puts a real folder (say, the user's own) where d was: it gets neither d's owner nor mode.
    data, _, end = _archive(folders_between=0)
    target = tmp_path / "target"

    def swap() -> None:
        os.rename(target / "d", target / "d-moved")
        (target / "d").mkdir(mode=0o700)

    warnings = extract_tar(_PausingReader(data, pause_at=end, hook=swap), target, restore_owners=platform.is_root())
    assert "folder d: owner, mode and mtime not applied; it was replaced during the restore" in warnings
    assert (target / "d").stat().st_mode & 0o777 == 0o700
    assert (target / "d").stat().st_uid == os.geteuid()
