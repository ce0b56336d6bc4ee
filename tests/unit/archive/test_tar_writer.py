"""The pax writer: real trees archived, then read back by GNU tar and Python's tarfile, bytes compared."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from ncbackup import platform
from ncbackup.archive import writer as writer_module
from ncbackup.archive.extract import extract_tar
from ncbackup.archive.writer import ExcludeRules, TarWriter, build_header, member_name, pax_time, write_tar
from ncbackup.errors import IntegrityError
from ncbackup.process import run
from ncbackup.sources.base import StreamReport
from tests.support import need, need_binary, small_tmpfs
from tests.unit.archive.conftest import LONG_NAME, NON_UTF8_NAME, SUBSECOND_NS, assert_same_tree


def _archive(paths, tmp_path: Path, **options) -> tuple[Path, StreamReport]:
    report = StreamReport()
    archive = tmp_path / "out.tar"
    with open(archive, "wb") as sink:
        write_tar(sink, [str(path) for path in paths], report=report, **options)
    return archive, report


def _relative(path: Path) -> Path:
    return Path(*path.parts[1:])


def test_gnu_tar_extracts_every_member_byte_exact_with_metadata(source_tree, tmp_path):
    tar = need_binary("tar")
    archive, report = _archive([source_tree.root], tmp_path)
    target = tmp_path / "gnu"
    target.mkdir()
    run([tar, "-xpf", archive, "-C", target, "--same-owner"])
    assert_same_tree(source_tree.root, target / _relative(source_tree.root))
    assert any("a-fifo is a FIFO; skipped" in note for note in report.notes)
    assert any("a-socket is a socket; skipped" in note for note in report.notes)
    assert report.warnings == []


def test_gnu_tar_lists_members_relative_to_root_and_hard_links_as_links(source_tree, tmp_path):
    tar = need_binary("tar")
    archive, _ = _archive([source_tree.root], tmp_path)
    listing = run([tar, "--quoting-style=literal", "-tvf", archive]).stdout
    root_name = os.fsencode(_relative(source_tree.root))
    assert b"\n/" not in listing and not listing.startswith(b"/")
    assert root_name + b"/etc/hosts\n" in listing
    assert root_name + b"/etc/hard-b link to " + root_name + b"/etc/hard-a" in listing
    assert root_name + b"/" + NON_UTF8_NAME in listing
    assert b"empty-dir/" in listing
    run([tar, "--compare", "-f", archive, "-C", "/"])  # GNU tar's own diff against the live tree


def test_python_tarfile_reads_names_sizes_and_subsecond_mtimes(source_tree, tmp_path):
    archive, _ = _archive([source_tree.root], tmp_path)
    with tarfile.open(archive) as reader:
        members = {member.name: member for member in reader}
    prefix = str(_relative(source_tree.root))
    hosts = members[f"{prefix}/etc/hosts"]
    assert hosts.size == 1000
    assert abs(hosts.mtime - SUBSECOND_NS / 1e9) < 1e-5
    assert hosts.mtime != int(hosts.mtime)
    non_utf8 = f"{prefix}/" + NON_UTF8_NAME.decode("utf-8", "surrogateescape")
    assert non_utf8 in members
    long_member = next(name for name in members if name.endswith(LONG_NAME))
    assert len(long_member.encode()) > 100
    assert members[f"{prefix}/etc/hosts-link"].linkname == "hosts"
    assert members[f"{prefix}/etc/hard-b"].islnk()
    assert members[f"{prefix}/sparse.img"].size == 48 << 20
    if platform.is_root():
        assert members[f"{prefix}/etc/hosts"].uname == platform.user_name_for_uid(65534)
        assert (members[f"{prefix}/etc/script.sh"].uid, members[f"{prefix}/etc/script.sh"].gid) == (1234, 5678)


def test_archive_is_whole_records_and_ends_with_zero_blocks(source_tree, tmp_path):
    archive, _ = _archive([source_tree.root], tmp_path)
    data = archive.read_bytes()
    assert len(data) % writer_module.RECORD_BYTES == 0
    assert data[-1024:] == bytes(1024)


def test_header_for_file_over_8_gib_uses_pax_size_and_readers_see_it(tmp_path):
    size = 9 * (1 << 30) + 3
    header = build_header(b"big.img", typeflag=b"0", mode=0o644, uid=0, gid=0, size=size, mtime_ns=10**18)
    assert b" size=%d\n" % size in header
    with tarfile.open(fileobj=io.BytesIO(header + bytes(1024)), mode="r|") as reader:
        member = reader.next()
        assert member.size == size
    # Our extractor parses the same size and expects that many bytes: the stream is short.
    with pytest.raises(IntegrityError, match="ends inside big.img"):
        extract_tar(io.BytesIO(header + bytes(1024)), tmp_path / "target")


def test_header_big_ids_and_negative_mtime_go_to_pax():
    header = build_header(b"x", typeflag=b"0", mode=0o600, uid=3_000_000, gid=4_000_000, size=0, mtime_ns=-1_500_000_000)
    with tarfile.open(fileobj=io.BytesIO(header + bytes(1024)), mode="r|") as reader:
        member = reader.next()
    assert (member.uid, member.gid) == (3_000_000, 4_000_000)
    assert member.mtime == pytest.approx(-1.5)
    assert pax_time(-1_500_000_000) == b"-1.5"
    assert pax_time(2_000_000_000) == b"2"


def test_member_names_are_relative_to_the_root_on_posix_and_windows():
    assert member_name("/etc/hosts", windows=False) == b"etc/hosts"
    assert member_name("C:\\data\\x", windows=True) == b"C/data/x"
    assert member_name("d:/Users/a b", windows=True) == b"d/Users/a b"


def test_excludes_take_paths_and_glob_patterns(tmp_path):
    root = tmp_path / "www"
    for site in ("a", "b"):
        (root / site / "cache").mkdir(parents=True)
        (root / site / "cache" / "c.bin").write_bytes(b"x")
        (root / site / "index.php").write_bytes(b"<?php")
        (root / site / "error.log").write_bytes(b"log")
    (root / "private").mkdir()
    (root / "private" / "secret").write_bytes(b"s")
    rules = ExcludeRules([f"{root}/*/cache", "*.log", f"{root}/private/"])
    archive, _ = _archive([root], tmp_path, excludes=rules)
    with tarfile.open(archive) as reader:
        names = {name.removeprefix(str(_relative(root)) + "/") for name in reader.getnames()}
    assert names == {str(_relative(root)), "a", "b", "a/index.php", "b/index.php"}


def test_file_that_grows_while_read_is_cut_to_its_header_size_with_a_warning(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    growing = root / "growing.log"
    growing.write_bytes(b"A" * 1000)
    report = StreamReport()
    buffer = io.BytesIO()
    tar_writer = TarWriter(buffer, report=report)
    tar_writer.before_read = lambda path: growing.open("ab").write(b"B" * 5000) if path.endswith("growing.log") else None
    tar_writer.add_tree(str(root))
    tar_writer.close()
    assert any(f"{growing} grew while read" in warning for warning in report.warnings)
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as reader:
        member = reader.getmember(str(_relative(growing)))
        assert reader.extractfile(member).read() == b"A" * 1000


def test_file_that_shrinks_while_read_is_zero_padded_and_archive_stays_valid(tmp_path):
    tar = need_binary("tar")
    root = tmp_path / "t"
    root.mkdir()
    shrinking = root / "a-shrinking.db"
    shrinking.write_bytes(b"S" * 3000)
    (root / "b-after").write_bytes(b"after\n")
    report = StreamReport()
    archive = tmp_path / "out.tar"
    with open(archive, "wb") as sink:
        tar_writer = TarWriter(sink, report=report)
        tar_writer.before_read = lambda path: os.truncate(path, 100) if path.endswith("shrinking.db") else None
        tar_writer.add_tree(str(root))
        tar_writer.close()
    assert any(f"{shrinking} shrank while read (from 3000 to 100 bytes)" in warning for warning in report.warnings)
    target = tmp_path / "x"
    target.mkdir()
    run([tar, "-xf", archive, "-C", target])
    restored = target / _relative(root)
    assert (restored / "a-shrinking.db").read_bytes() == b"S" * 100 + bytes(2900)
    assert (restored / "b-after").read_bytes() == b"after\n"


def test_file_that_vanishes_before_it_is_read_is_a_warning_not_an_abort(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    (root / "a-first").write_bytes(b"1")
    doomed = root / "b-vanishes"
    doomed.write_bytes(b"2")
    (root / "c-last").write_bytes(b"3")
    report = StreamReport()
    buffer = io.BytesIO()
    tar_writer = TarWriter(buffer, report=report)
    tar_writer.before_read = lambda path: doomed.unlink() if path.endswith("a-first") else None
    tar_writer.add_tree(str(root))
    tar_writer.close()
    assert report.warnings == [f"{doomed} vanished before it could be read; skipped"]
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as reader:
        names = [Path(name).name for name in reader.getnames()]
    assert names == ["t", "a-first", "c-last"]


def test_unreadable_file_is_a_warning_with_its_path(tmp_path, monkeypatch):
    root = tmp_path / "t"
    root.mkdir()
    locked = root / "locked"
    locked.write_bytes(b"secret")
    locked.chmod(0)
    (root / "open").write_bytes(b"fine")
    if platform.is_root():
        # root reads mode-000 files: make the kernel's refusal happen for this one path.
        real_open = os.open

        def refusing_open(path, flags, *args, **kwargs):
            if os.path.basename(path) == locked.name:   # opened by full path or by name in its open folder
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(writer_module.os, "open", refusing_open)
    archive, report = _archive([root], tmp_path)
    assert report.warnings == [f"{locked} could not be read (permission denied); skipped"]
    with tarfile.open(archive) as reader:
        assert sorted(Path(name).name for name in reader.getnames()) == ["open", "t"]


def test_missing_include_path_is_a_warning(tmp_path):
    archive, report = _archive([tmp_path / "nope"], tmp_path)
    assert report.warnings == [f"{tmp_path / 'nope'} vanished before it could be read; skipped"]
    with tarfile.open(archive) as reader:
        assert reader.getnames() == []


def test_one_file_system_stores_the_mount_point_but_not_what_is_mounted(tmp_path):
    need(platform.is_root(), "mounting a tmpfs needs root")
    root = tmp_path / "t"
    mount_point = root / "mnt"
    mount_point.mkdir(parents=True)
    (root / "kept").write_bytes(b"k")
    with small_tmpfs(mount_point, size_bytes=1024 * 1024):
        (mount_point / "other-fs-file").write_bytes(b"o")
        archive, report = _archive([root], tmp_path, one_file_system=True)
        (tmp_path / "all").mkdir()
        everything, _ = _archive([root], tmp_path / "all", one_file_system=False)
    with tarfile.open(archive) as reader:
        names = sorted(Path(name).name for name in reader.getnames())
    assert names == ["kept", "mnt", "t"]
    assert any(f"{mount_point} is another file system" in note for note in report.notes)
    with tarfile.open(everything) as reader:
        assert "other-fs-file" in [Path(name).name for name in reader.getnames()]


def test_many_files_do_not_look_up_owners_per_file(tmp_path, monkeypatch):
    root = tmp_path / "many"
    root.mkdir()
    for number in range(300):
        (root / f"f{number}").write_bytes(b"x")
    calls = []
    real_lookup = platform.user_name_for_uid
    monkeypatch.setattr(platform, "user_name_for_uid", lambda uid: calls.append(uid) or real_lookup(uid))
    _archive([root], tmp_path)
    assert len(calls) == 1


def test_add_file_stores_one_file_under_the_chosen_flat_name_and_skips_non_files(tmp_path):
    folder = tmp_path / "binlogs"
    folder.mkdir()
    (folder / "mysql-bin.000001").write_bytes(b"\xfebin" + os.urandom(300_000))
    (folder / "subdir").mkdir()
    sink = io.BytesIO()
    report = StreamReport()
    writer = TarWriter(sink, report=report)
    writer.add_file(str(folder / "mysql-bin.000001"), name="mysql-bin.000001")
    writer.add_file(str(folder / "subdir"), name="subdir")
    writer.add_file(str(folder / "purged"), name="purged")
    writer.close()
    sink.seek(0)
    with tarfile.open(fileobj=sink) as archive:
        assert archive.getnames() == ["mysql-bin.000001"]
        assert archive.extractfile("mysql-bin.000001").read() == (folder / "mysql-bin.000001").read_bytes()
    assert any("subdir is not a regular file" in warning for warning in report.warnings)
    assert any("purged vanished" in warning for warning in report.warnings)
