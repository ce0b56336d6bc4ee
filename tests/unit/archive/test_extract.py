"""Safe extraction: our archives and GNU tar's restored exactly; hostile archives refused."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from ncbackup import platform
from ncbackup.archive.extract import extract_tar, safe_member_name
from ncbackup.archive.writer import write_tar
from ncbackup.errors import BackupError, IntegrityError
from ncbackup.process import run
from ncbackup.sources.base import StreamReport
from tests.support import need, need_binary, small_tmpfs
from tests.unit.archive.conftest import assert_same_tree, entries, snapshot, tar_members


def _relative(path: Path) -> Path:
    return Path(*path.parts[1:])


def _our_tar(paths, tmp_path: Path) -> Path:
    archive = tmp_path / "ours.tar"
    with open(archive, "wb") as sink:
        write_tar(sink, [str(path) for path in paths], report=StreamReport())
    return archive


def test_round_trip_restores_bytes_modes_owners_mtimes_links_and_odd_names(source_tree, tmp_path):
    archive = _our_tar([source_tree.root], tmp_path)
    target = tmp_path / "restored"
    with open(archive, "rb") as reader:
        warnings = extract_tar(reader, target)
    restored = target / _relative(source_tree.root)
    # Every symlink exactly as archived, the absolute one (to /etc/hostname) too.
    assert_same_tree(source_tree.root, restored)
    assert os.readlink(restored / "etc" / "absolute-link") == "/etc/hostname"
    assert warnings == []
    assert not list(target.rglob(".ncbackup-*.part"))


@pytest.mark.parametrize("tar_format", ["posix", "gnu"])
def test_archives_made_by_gnu_tar_restore_exactly(source_tree, tmp_path, tar_format):
    tar = need_binary("tar")
    archive = tmp_path / "gnu.tar"
    run([tar, f"--format={tar_format}", "-cf", archive, "-C", "/", str(_relative(source_tree.root))])
    target = tmp_path / "restored"
    with open(archive, "rb") as reader:
        extract_tar(reader, target)
    # The old GNU format has whole-second mtimes only.
    resolution = 1 if tar_format == "posix" else 1_000_000_000
    assert_same_tree(source_tree.root, target / _relative(source_tree.root), mtime_resolution_ns=resolution)


def _hostile_archive(outside: Path) -> bytes:
    buffer = io.BytesIO()

    def add(name: str, *, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = link
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        writer.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as writer:
        add("good.txt", data=b"good")
        add("../escape-dotdot.txt", data=b"evil")
        add(str(outside / "escape-absolute.txt"), data=b"evil")
        add("sub/../../escape-nested.txt", data=b"evil")
        add("hard-out", kind=tarfile.LNKTYPE, link="../../outside-hard")
        add("link-out", kind=tarfile.SYMTYPE, link=str(outside))
        add("link-out/through-symlink.txt", data=b"evil")  # write through the refused link
        add("rel-up", kind=tarfile.SYMTYPE, link="../../..")
        add("after.txt", data=b"after")
    return buffer.getvalue()


def test_hostile_archive_members_are_refused_and_nothing_lands_outside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    before = entries(tmp_path)
    with pytest.raises(IntegrityError) as caught:
        extract_tar(io.BytesIO(_hostile_archive(outside)), target)
    message = str(caught.value)
    assert "refused 4 archive member(s)" in message
    assert "../escape-dotdot.txt" in message and "escape-absolute.txt" in message
    assert "sub/../../escape-nested.txt" in message and "hard-out" in message
    assert list(outside.iterdir()) == []
    created = sorted(entries(tmp_path) - before - {target})
    # The links are restored as archived, but only after every other member: the file meant to go
    # through link-out found a placeholder file there and was not restored.
    assert created == [target / "after.txt", target / "good.txt", target / "link-out", target / "rel-up"]
    assert os.readlink(target / "link-out") == str(outside) and os.readlink(target / "rel-up") == "../../.."
    assert (target / "good.txt").read_bytes() == b"good"


def test_symlinks_are_restored_exactly_wherever_they_point(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    links = {
        "abs": str(outside), "up": "../../x", "fine": "sub/file", "alternative": "/etc/alternatives/awk",
        "dangling": "/nonexistent/target", "dot": ".", "parent": "..",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as writer:
        for number, (name, target_text) in enumerate(links.items()):
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target_text
            info.mtime = 1_500_000_000 + number
            writer.addfile(info)
    target = tmp_path / "target"
    assert extract_tar(io.BytesIO(buffer.getvalue()), target) == []
    assert sorted(os.listdir(target)) == sorted(links)
    for number, (name, target_text) in enumerate(links.items()):
        assert os.readlink(target / name) == target_text
        assert os.lstat(target / name).st_mtime == 1_500_000_000 + number
    assert list(outside.iterdir()) == []


def test_existing_symlink_in_target_is_never_written_through(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside, target / "etc")  # planted before the restore (e.g. --force into a used folder)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as writer:
        info = tarfile.TarInfo("etc/passwd")
        info.size = 4
        writer.addfile(info, io.BytesIO(b"evil"))
    warnings = extract_tar(io.BytesIO(buffer.getvalue()), target)
    assert list(outside.iterdir()) == []
    assert warnings == ["etc/passwd not restored: etc in the target is a symlink or a file, not a folder"]


def test_path_globs_restore_only_matching_members_and_their_contents(source_tree, tmp_path):
    archive = _our_tar([source_tree.root], tmp_path)
    prefix = str(_relative(source_tree.root))
    target = tmp_path / "restored"
    with open(archive, "rb") as reader:
        extract_tar(reader, target, patterns=[f"/{prefix}/etc/ssh/", "*.sh"])
    restored = target / prefix
    files = sorted(str(path.relative_to(restored)) for path in restored.rglob("*"))
    assert files == ["etc", "etc/script.sh", "etc/ssh", "etc/ssh/sshd_config"]
    assert (restored / "etc" / "ssh" / "sshd_config").read_bytes() == b"Port 22\n"
    assert (restored / "etc" / "ssh").stat().st_mode & 0o777 == 0o700


def test_truncated_stream_leaves_no_half_file_under_its_real_name(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a-small").write_bytes(b"small")
    (source / "b-big").write_bytes(os.urandom(2 << 20))
    archive = _our_tar([source], tmp_path).read_bytes()
    cut = archive.index(b"small") + (1 << 20)  # in the middle of b-big's bytes
    target = tmp_path / "restored"
    with pytest.raises(IntegrityError, match="ends inside .*b-big; the stream is truncated"):
        extract_tar(io.BytesIO(archive[:cut]), target)
    restored = target / _relative(source)
    assert (restored / "a-small").read_bytes() == b"small"
    assert not (restored / "b-big").exists()
    assert [path.name for path in restored.iterdir()] == ["a-small"]


def test_corrupted_header_is_reported_not_extracted(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "file").write_bytes(b"data")
    archive = bytearray(_our_tar([source], tmp_path).read_bytes())
    archive[100] ^= 0x01  # the first header's mode field
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        extract_tar(io.BytesIO(bytes(archive)), tmp_path / "restored")


def test_read_only_folder_gets_its_mode_after_its_contents(tmp_path):
    source = tmp_path / "src"
    (source / "ro").mkdir(parents=True)
    (source / "ro" / "inner").write_bytes(b"inner")
    (source / "ro").chmod(0o500)
    try:
        archive = _our_tar([source], tmp_path)
    finally:
        (source / "ro").chmod(0o700)
    target = tmp_path / "restored"
    with open(archive, "rb") as reader:
        extract_tar(reader, target)
    restored = target / _relative(source) / "ro"
    assert (restored / "inner").read_bytes() == b"inner"
    assert restored.stat().st_mode & 0o777 == 0o500
    restored.chmod(0o700)


def test_owners_are_left_to_the_restoring_user_when_not_asked(source_tree, tmp_path):
    archive = _our_tar([source_tree.root], tmp_path)
    target = tmp_path / "restored"
    with open(archive, "rb") as reader:
        extract_tar(reader, target, restore_owners=False)
    script = target / _relative(source_tree.root) / "etc" / "script.sh"
    assert script.stat().st_uid == os.geteuid()
    if platform.is_root():
        with open(archive, "rb") as reader:
            extract_tar(reader, tmp_path / "as-root")
        assert (tmp_path / "as-root" / _relative(source_tree.root) / "etc" / "script.sh").stat().st_uid == 1234


def test_safe_member_name_rules():
    assert safe_member_name(b"./etc//hosts") == b"etc/hosts"
    assert safe_member_name(b"etc/") == b"etc"
    assert safe_member_name(b"/etc/hosts") is None
    assert safe_member_name(b"a/../../b") is None
    assert safe_member_name(b"..") is None
    assert safe_member_name(b"a/..b") == b"a/..b"


def test_full_target_disk_stops_with_one_sentence_and_no_half_file(tmp_path):
    need(platform.is_root(), "mounting a small tmpfs needs root")
    source = tmp_path / "src"
    source.mkdir()
    (source / "a-fits").write_bytes(b"small")
    (source / "b-too-big").write_bytes(os.urandom(1 << 20))
    archive = _our_tar([source], tmp_path)
    with small_tmpfs(tmp_path / "tiny", size_bytes=256 * 1024) as target:
        with open(archive, "rb") as reader, pytest.raises(BackupError) as caught:
            extract_tar(reader, target)
        restored = target / _relative(source)
        names = sorted(path.name for path in restored.iterdir())
    assert "b-too-big" in str(caught.value) and "No space left on device" in str(caught.value)
    assert "Traceback" not in str(caught.value)
    assert names == ["a-fits"]


@pytest.mark.parametrize("tar_format", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_python_tarfile_archives_restore_long_and_non_utf8_names_exactly(tmp_path, tar_format):
    # ustar splits long names into prefix + name; GNU uses ././@LongLink; pax writes hdrcharset=BINARY.
    long_dir = "p" * 90 + "/" + "q" * 60
    names = [f"{long_dir}/file.txt", "caf\udce9-\udcff.bin" if tar_format != tarfile.USTAR_FORMAT else "plain.bin"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format, encoding="utf-8", errors="surrogateescape") as writer:
        for number, name in enumerate(names):
            info = tarfile.TarInfo(name)
            info.size = number + 3
            info.mtime = 1_600_000_000
            info.mode = 0o640
            writer.addfile(info, io.BytesIO(b"x" * (number + 3)))
    target = tmp_path / "t"
    assert extract_tar(io.BytesIO(buffer.getvalue()), target) == []
    for number, name in enumerate(names):
        restored = os.fsencode(target) + b"/" + name.encode("utf-8", "surrogateescape")
        with open(restored, "rb") as handle:
            assert handle.read() == b"x" * (number + 3)
        info = os.stat(restored)
        assert (info.st_mode & 0o777, info.st_mtime) == (0o640, 1_600_000_000)


def test_header_with_valid_checksum_but_garbage_size_is_an_integrity_error(tmp_path):
    block = bytearray(tarfile.TarInfo("x").tobuf(format=tarfile.USTAR_FORMAT)[:512])
    block[124:136] = b"99zz\0       "          # not octal
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)      # a checksum that matches the garbage
    with pytest.raises(IntegrityError, match="malformed header at byte 0"):
        extract_tar(io.BytesIO(bytes(block) + bytes(1024)), tmp_path / "t")


def _tar_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as writer:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o640
            info.mtime = 1_600_000_000
            writer.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_small_file_that_does_not_fit_the_disk_leaves_nothing_under_its_name(tmp_path):
    need(platform.is_root(), "mounting a small tmpfs needs root")
    # Small enough to be entirely in memory when written: the path without a temporary name.
    archive = _tar_of({"a-fits": b"small", "b-too-big": os.urandom(300_000)})
    with small_tmpfs(tmp_path / "tiny", size_bytes=128 * 1024) as target:
        with pytest.raises(BackupError) as caught:
            extract_tar(io.BytesIO(archive), target)
        names = sorted(path.name for path in target.iterdir())
    assert "b-too-big" in str(caught.value) and "No space left on device" in str(caught.value)
    assert names == ["a-fits"]


def test_existing_file_and_symlink_are_replaced_not_written_through(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep me")
    target = tmp_path / "target"
    target.mkdir()
    (target / "old-file").write_bytes(b"old content that is longer")
    os.symlink(outside, target / "old-link")
    archive = _tar_of({"old-file": b"new", "old-link": b"now a file", "fresh": b"fresh"})
    assert extract_tar(io.BytesIO(archive), target) == []
    assert (target / "old-file").read_bytes() == b"new"
    assert not (target / "old-link").is_symlink()
    assert (target / "old-link").read_bytes() == b"now a file"
    assert outside.read_bytes() == b"keep me"
    for name in ("old-file", "old-link", "fresh"):
        info = (target / name).stat()
        assert info.st_mode & 0o777 == 0o640 and info.st_mtime == 1_600_000_000
    assert sorted(path.name for path in target.iterdir()) == ["fresh", "old-file", "old-link"]


def test_files_spanning_many_reads_and_many_small_files_restore_exactly(tmp_path):
    # Members straddling the extractor's read chunks take the temporary-name path, the others not.
    members = {f"dir/small-{index:05d}": os.urandom(index % 3000) for index in range(2000)}
    members["dir/big"] = os.urandom(3_500_000)
    members["dir/zz-after-big"] = b"after"
    target = tmp_path / "target"
    extract_tar(io.BytesIO(_tar_of(members)), target)
    for name, data in members.items():
        assert (target / name).read_bytes() == data
    assert len(list((target / "dir").iterdir())) == len(members)


# --- hostile archives: nothing is ever written, chmodded, chowned or touched outside the target --------


HOSTILE_CASES = {
    "symlink to an outside folder, then a file through it": [
        ("a", "symlink", "{outside}"), ("a/x", "file", b"evil"), ("a/", "dir", None), ("a/y", "file", b"evil"),
    ],
    "symlink to .., then a file and a folder through it": [
        ("up", "symlink", ".."), ("up/escaped.txt", "file", b"evil"), ("up/sub/", "dir", None),
        ("deep/", "dir", None), ("deep/up2", "symlink", "../.."), ("deep/up2/outside/x", "file", b"evil"),
    ],
    "hard link to a symlink, then a file through the hard link": [
        ("s", "symlink", "{outside}/keep.txt"), ("h", "hardlink", "s"), ("h/x", "file", b"evil"),
        ("h2", "hardlink", "s"), ("h2", "file", b"later member wins"),
    ],
    "folder replaced by a symlink between members": [
        ("d/", "dir", None), ("d/a", "file", b"a"), ("d", "symlink", "{outside}"), ("d/b", "file", b"b"),
        ("f", "file", b"f"), ("f", "symlink", "{outside}"), ("f/x", "file", b"evil"), ("f/", "dir", None),
    ],
    "symlink, then a folder of the same name with metadata": [
        ("e", "symlink", "{outside}"), ("e/", "dir", None), ("e/z", "file", b"evil"),
    ],
    "names climbing with .. or absolute": [
        ("../outside/x", "file", b"evil"), ("ok/../../outside/y", "file", b"evil"), ("{outside}/z", "file", b"evil"),
        ("../outside/", "dir", None), ("{outside}", "dir", None), ("hl", "hardlink", "../outside/keep.txt"),
    ],
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CASES))
def test_hostile_archive_writes_nothing_outside_the_target(tmp_path, outside, case):
    members = [
        (name.format(outside=outside), kind, payload.format(outside=outside) if isinstance(payload, str) else payload)
        for name, kind, payload in HOSTILE_CASES[case]
    ]
    target = tmp_path / "target"
    before = snapshot(outside)
    try:
        extract_tar(io.BytesIO(tar_members(*members)), target, restore_owners=platform.is_root())
    except IntegrityError as error:
        assert case == "names climbing with .. or absolute", error
    assert snapshot(outside) == before
    assert sorted(os.listdir(tmp_path)) == ["outside", "target"]
    # Whatever was restored is inside the target, and every symlink in it is one the archive holds.
    archived_links = {payload for _, kind, payload in members if kind == "symlink"}
    for path in entries(target):
        if path.is_symlink():
            assert os.readlink(path) in archived_links


def test_symlink_then_file_through_it_keeps_the_link_and_names_the_skipped_file(tmp_path, outside):
    archive = tar_members(("a", "symlink", str(outside)), ("a/x", "file", b"evil"), ("b", "file", b"fine"))
    warnings = extract_tar(io.BytesIO(archive), tmp_path / "target")
    assert warnings == ["a/x not restored: a in the target is a symlink or a file, not a folder"]
    assert os.readlink(tmp_path / "target" / "a") == str(outside)
    assert (tmp_path / "target" / "b").read_bytes() == b"fine"


def test_hard_link_to_a_symlink_is_restored_as_an_independent_symlink(tmp_path):
    archive = tar_members(
        ("file", "file", b"data"), ("s", "symlink", "/etc/alternatives/awk"), ("h", "hardlink", "s"),
        ("hf", "hardlink", "file"),
    )
    target = tmp_path / "target"
    assert extract_tar(io.BytesIO(archive), target) == []
    assert os.readlink(target / "s") == os.readlink(target / "h") == "/etc/alternatives/awk"
    assert os.lstat(target / "s").st_ino != os.lstat(target / "h").st_ino
    # A hard link to a file still shares the inode.
    assert os.lstat(target / "hf").st_ino == os.lstat(target / "file").st_ino


def test_folder_replaced_by_symlink_in_the_archive_keeps_the_folder(tmp_path, outside):
    archive = tar_members(("d/", "dir", None), ("d/a", "file", b"a"), ("d", "symlink", str(outside)), ("d/b", "file", b"b"))
    target = tmp_path / "target"
    warnings = extract_tar(io.BytesIO(archive), target)
    assert warnings == ["d not restored: a folder of that name is in the target"]
    assert sorted(os.listdir(target / "d")) == ["a", "b"]
    assert (target / "d").stat().st_mode & 0o777 == 0o777


def test_thousands_of_folders_and_links_need_only_a_bounded_number_of_open_files(tmp_path):
    need(platform.IS_POSIX, "RLIMIT_NOFILE (the resource module) is POSIX only")
    import resource
    # Folders (nested and side by side) and symlinks in each: both end-phase walks open every folder again.
    members = []
    for number in range(1500):
        folder = f"top/{number % 7}/f{number:04d}"
        members += [(f"{folder}/", "dir", None), (f"{folder}/file", "file", b"x"), (f"{folder}/link", "symlink", "file")]
    archive = tar_members(*members)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    open_now = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 64
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 300, hard))
    try:
        warnings = extract_tar(io.BytesIO(archive), tmp_path / "target")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert warnings == []
    assert os.readlink(tmp_path / "target" / "top" / "1" / "f1499" / "link") == "file"
    assert (tmp_path / "target" / "top" / "1" / "f1499").stat().st_mtime == 1_000_000_000
