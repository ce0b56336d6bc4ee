"""The small-file path of the tar walk: the same archive and index bytes as the general path, fewer calls per file."""

from __future__ import annotations

import io
import os
import tempfile
import tracemalloc
from pathlib import Path

import pytest

from ncbackup import platform
from ncbackup.archive import writer as writer_module
from ncbackup.archive.index import IndexWriter, read_index
from ncbackup.archive.writer import SMALL_FILE_BYTES, TarWriter
from ncbackup.process import run
from ncbackup.sources.base import StreamReport
from tests.support import need, need_binary


def _write(path: Path, data: bytes, *, mode: int = 0o644, mtime_ns: int | None = None) -> None:
    path.write_bytes(data)
    os.chmod(path, mode)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


def _varied_tree(root: Path) -> None:
    """Files at every edge the small-file path decides on: sizes, name lengths, characters, times, modes, owners."""
    root.mkdir()
    base = len(os.fsencode(root).strip(b"/")) + 1      # the member name's length before the file's own name
    for size in (0, 1, 40, 511, 512, 513, 4096, SMALL_FILE_BYTES - 1, SMALL_FILE_BYTES, SMALL_FILE_BYTES + 1):
        _write(root / f"size-{size}", bytes(range(256)) * (size // 256) + b"s" * (size % 256))
    for length in (99, 100, 101):
        if length - base > 0:
            _write(root / ("n" * (length - base)), b"name length\n")
    for name in ('quote"d', "back\\slash", "tab\there", "unicode-é", "space d", "new\nline"):
        _write(root / name, b"odd name\n")
    with open(os.fsencode(root) + b"/latin-\xe9", "wb") as handle:
        handle.write(b"not utf-8\n")
    for label, mtime_ns in (("whole", 1_700_000_000 * 10**9), ("nanos", 1_700_000_000_123_456_789),
                            ("tenth", 1_700_000_000_100_000_000), ("epoch", 0), ("before-epoch", -1_500_000_000),
                            ("far-future", 8**11 * 10**9 + 5), ("short-record", 5)):
        _write(root / f"mtime-{label}", b"time\n", mtime_ns=mtime_ns)
    for mode in (0o600, 0o755, 0o4755, 0o1777, 0o000):
        _write(root / f"mode-{mode:o}", b"mode\n", mode=mode)
    _write(root / "hard-a", b"two names\n")
    os.link(root / "hard-a", root / "hard-b")
    if platform.is_root():
        for label, uid, gid in (("nobody", 65534, 65534), ("no-name", 4242, 4343), ("big-ids", 3_000_000, 4_000_000)):
            _write(root / f"owner-{label}", b"owner\n")
            os.chown(root / f"owner-{label}", uid, gid)
    (root / "sub").mkdir()
    _write(root / "sub" / "inner", b"inner\n", mtime_ns=1_600_000_000_000_000_001)


def _archive(root: Path, *, small_file_bytes: int, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bytes, StreamReport]:
    monkeypatch.setattr(writer_module, "SMALL_FILE_BYTES", small_file_bytes)
    sink, index_sink, report = io.BytesIO(), io.BytesIO(), StreamReport()
    writer = TarWriter(sink, report=report, index=IndexWriter(index_sink))
    writer.add_tree(str(root))
    writer.close()
    return sink.getvalue(), index_sink.getvalue(), report


def test_small_file_path_writes_the_same_archive_and_index_bytes_as_the_general_path(tmp_path, monkeypatch):
    root = tmp_path / "tree"
    _varied_tree(root)
    fast_tar, fast_index, fast_report = _archive(root, small_file_bytes=SMALL_FILE_BYTES, monkeypatch=monkeypatch)
    general_tar, general_index, _ = _archive(root, small_file_bytes=-1, monkeypatch=monkeypatch)
    assert fast_index == general_index
    assert fast_tar == general_tar
    assert fast_report.warnings == []
    entries = list(read_index(io.BytesIO(fast_index)))
    assert len(entries) == sum(1 for _ in root.rglob("*")) + 1


def test_gnu_tar_compares_a_tree_of_small_files_equal_to_the_live_tree(tmp_path, monkeypatch):
    tar = need_binary("tar")
    root = tmp_path / "tree"
    _varied_tree(root)
    archive, _, _ = _archive(root, small_file_bytes=SMALL_FILE_BYTES, monkeypatch=monkeypatch)
    (tmp_path / "out.tar").write_bytes(archive)
    run([tar, "--compare", "-f", tmp_path / "out.tar", "-C", "/"])


def test_a_small_file_costs_one_open_one_read_and_no_fstat(tmp_path, monkeypatch):
    root = tmp_path / "tree"
    root.mkdir()
    for number in range(50):
        _write(root / f"f{number:02d}", b"small file %d\n" % number, mtime_ns=1_700_000_000_000_000_001 + number)
    calls: dict[str, int] = {"open": 0, "read": 0, "fstat": 0}

    def counted(name, real):
        def call(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return call

    for name in calls:
        monkeypatch.setattr(writer_module.os, name, counted(name, getattr(os, name)))
    archive, _, report = _archive(root, small_file_bytes=SMALL_FILE_BYTES, monkeypatch=monkeypatch)
    folder_opens = 1 if platform.HAS_RELATIVE_LISTING else 0   # the folder, to open its files by name in it
    assert calls == {"open": 50 + folder_opens, "read": 50, "fstat": 0}
    assert report.warnings == []
    assert archive.count(b"small file 7\n") == 1


def test_owner_lookups_happen_once_per_owner_not_per_file(tmp_path, monkeypatch):
    need(platform.is_root(), "giving files other owners needs root")
    root = tmp_path / "tree"
    root.mkdir()
    for number in range(30):
        _write(root / f"f{number}", b"x")
        os.chown(root / f"f{number}", 65534 if number % 2 else 0, 0)
    looked_up: list[int] = []
    real_lookup = platform.user_name_for_uid
    monkeypatch.setattr(platform, "user_name_for_uid", lambda uid: looked_up.append(uid) or real_lookup(uid))
    _archive(root, small_file_bytes=SMALL_FILE_BYTES, monkeypatch=monkeypatch)
    assert sorted(looked_up) == sorted({0, 65534, os.stat(root).st_uid})


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_tree_deeper_than_the_open_folder_limit_is_archived_whole_with_no_folder_left_open(tmp_path, monkeypatch):
    need(Path("/proc/self/fd").is_dir(), "counting open descriptors needs /proc")
    root = tmp_path / "deep"
    folder = root
    for level in range(8):
        folder.mkdir()
        _write(folder / f"file-{level}", b"level %d\n" % level)
        _write(folder / f"z-after-{level}", b"after the subfolder %d\n" % level)
        folder = folder / f"level-{level}"
    before = _open_descriptors()
    unlimited, unlimited_index, _ = _archive(root, small_file_bytes=SMALL_FILE_BYTES, monkeypatch=monkeypatch)
    monkeypatch.setattr(writer_module, "MAX_FOLDER_DESCRIPTORS", 3)
    sink, index_sink, report = io.BytesIO(), io.BytesIO(), StreamReport()
    writer = TarWriter(sink, report=report, index=IndexWriter(index_sink))
    during: list[int] = []
    writer.before_read = lambda path: during.append(_open_descriptors())
    writer.add_tree(str(root))
    writer.close()
    limited, limited_index = sink.getvalue(), index_sink.getvalue()
    assert _open_descriptors() == before
    assert max(during) <= before + 3 + 1    # three folders and the file being read
    assert (limited, limited_index) == (unlimited, unlimited_index)
    assert report.warnings == []
    names = [entry.path.rsplit("/", 1)[-1] for entry in read_index(io.BytesIO(limited_index))]
    # Pre-order: a folder's whole subtree comes before its next sibling.
    assert names[:5] == ["deep", "file-0", "level-0", "file-1", "level-1"]
    assert names[-2:] == ["z-after-1", "z-after-0"]


def test_a_walk_that_fails_midway_leaves_no_folder_open(tmp_path):
    need(Path("/proc/self/fd").is_dir(), "counting open descriptors needs /proc")
    root = tmp_path / "tree"
    (root / "a" / "b").mkdir(parents=True)
    for number in range(3000):
        _write(root / "a" / "b" / f"f{number}", b"%d" % number * 40)

    class BrokenSink(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            raise OSError(28, "No space left on device")

    before = _open_descriptors()
    writer = TarWriter(BrokenSink(), report=StreamReport())
    with pytest.raises(OSError):
        writer.add_tree(str(root))
    assert _open_descriptors() == before


def test_walk_memory_does_not_grow_with_the_number_of_files(tmp_path):
    """Ten times the paths (the same tree under ten names), the same peak: nothing is kept per file."""
    root = tmp_path / "tree"
    for folder in range(4):
        (root / f"d{folder}").mkdir(parents=True)
        for number in range(500):
            _write(root / f"d{folder}" / f"file-{number:04d}.txt", b"%040d" % number, mtime_ns=1_700_000_000_000_000_007)

    def peak_bytes(copies: int) -> int:
        with tempfile.TemporaryFile() as index_sink:   # on disk, as the files source spools a big index
            writer = TarWriter(_NullSink(), report=StreamReport(), index=IndexWriter(index_sink))
            tracemalloc.start()
            try:
                for copy in range(copies):
                    writer.add_tree(str(root), name=b"copy-%d" % copy)
                writer.close()
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

    one, ten = peak_bytes(1), peak_bytes(10)
    assert ten - one < 256 << 10, f"{one} bytes at peak for 2,000 files, {ten} for 20,000"


class _NullSink(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return len(data)
