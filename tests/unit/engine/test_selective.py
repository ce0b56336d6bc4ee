"""Selective restore (restore --path on a seekable set): real sets written by write_backup_set from real trees,
restored by ranged reads, compared with the tree and with the full read of the same stream."""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncbackup.archive.index import IndexWriter
from ncbackup.archive.writer import write_tar
from ncbackup.engine import selective
from ncbackup.engine.backupset import NamedStorage, PipelineSpec, write_backup_set
from ncbackup.engine.restore import RestoreOptions, open_plain_stream, restore_set
from ncbackup.errors import DecryptError, IntegrityError
from ncbackup.sources.base import StreamReport
from ncbackup.sources.files import FilesetOptions, FilesSource
from ncbackup.stages.age import CHUNK_BYTES, SEALED_CHUNK_BYTES, AgeStage
from ncbackup.stages.compress import ZstdStage, parse_seek_table, seek_table_size
from ncbackup.stages.keys import write_identity_file
from ncbackup.storage.local import LocalStorage
from tests.support import SIGNER, read_manifest


@dataclass
class Written:
    storage: LocalStorage
    set_id: str
    key_file: Path
    data: Path          # the tree that was backed up

    @property
    def manifest(self):
        return read_manifest(self.storage, self.set_id)


def _key(tmp_path: Path) -> tuple[Path, str]:
    key_file = tmp_path / "key.txt"
    if not key_file.exists():
        write_identity_file(key_file)
    return key_file, key_file.read_text().splitlines()[1].split(": ")[1]


def _backup(tmp_path: Path, data: Path, *, frame_bytes: int, part_bytes: int | None, name: str = "b") -> Written:
    key_file, recipient = _key(tmp_path)
    storage = LocalStorage(tmp_path / name / "web1")
    result = write_backup_set(
        PipelineSpec(
            signer=SIGNER, sources=[FilesSource(FilesetOptions(include=[data]))],
            compression=ZstdStage(threads=0, seek_frame_bytes=frame_bytes), encryption=AgeStage(recipients=[recipient]),
            part_size_bytes=part_bytes, storages=[NamedStorage("STORAGE", storage)],
        ),
        hostname="web1",
    )
    assert result.error is None and all(stream.is_ok for stream in result.manifest.streams)
    return Written(storage, result.set_id, key_file, data)


def _restore(written: Written, target: Path, paths: tuple[str, ...], *, full: bool = False, monkeypatch=None):
    if full:
        monkeypatch.setattr(selective, "open_selected", lambda *args, **kwargs: None)
    try:
        return restore_set(written.storage, written.manifest,
                           options=RestoreOptions(target=target, paths=paths, key_file=written.key_file, stream_names=("files",)))
    finally:
        if full:
            monkeypatch.undo()


def _tree(root: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if path.is_symlink():
            out[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            out[relative] = ("dir", path.stat().st_mode & 0o7777)
        else:
            info = path.stat()
            out[relative] = (path.read_bytes(), info.st_mode & 0o7777, info.st_nlink, info.st_mtime_ns)
    return out


def _offsets(data: Path) -> dict[str, int]:
    """Each member's tar offset, from a dry run of the writer over the same tree (the backup writes the same bytes)."""
    spool = io.BytesIO()
    index = IndexWriter(spool)
    write_tar(io.BytesIO(), [str(data)], report=StreamReport(), index=index)
    from ncbackup.archive.index import read_index

    spool.seek(0)
    return {entry.path: entry.offset for entry in read_index(spool)}


def _member(data: Path, relative: str) -> str:
    return str(data / relative).lstrip("/")


def _make_tree(data: Path) -> None:
    """Files of many sizes (several frames of 8 KiB, several parts), a zero-length file, a hard link, a symlink."""
    (data / "a").mkdir(parents=True)
    (data / "b" / "deep").mkdir(parents=True)
    for number in range(40):
        size = (number * 2711) % 9000
        payload = os.urandom(size // 2) + b"text line\n" * (size // 20)
        (data / "a" / f"f{number:02d}").write_bytes(payload[:size])
    (data / "a" / "empty").write_bytes(b"")
    (data / "b" / "big.bin").write_bytes(os.urandom(70_000))          # spans frames and parts
    (data / "b" / "deep" / "log.txt").write_bytes(b"a log line\n" * 3000)
    os.link(data / "b" / "big.bin", data / "b" / "hard")
    os.symlink("deep/log.txt", data / "b" / "link")
    for path in [*data.rglob("*"), data]:
        os.utime(path, (1_700_000_000, 1_700_000_000), follow_symlinks=False)


def _boundaries(written: Written) -> dict[str, set[str]]:
    """Which members lie on which boundary: frame start, spanning two parts, ending a part's stored bytes."""
    manifest = written.manifest
    stream = manifest.stream("files")
    parts = selective.PartsRange(written.storage, manifest, stream)
    reader = AgeStage(identities=[written.key_file.read_text().splitlines()[2]]).seekable_reader(parts.read, parts.size_bytes, where="t")
    footer = reader.read(reader.size_bytes - 9, 9)
    table = seek_table_size(footer)
    frames = parse_seek_table(reader.read(reader.size_bytes - table, table))
    frame_starts = {frame.plain_offset for frame in frames}
    part_ends = []
    total = 0
    for part in stream.parts:
        total += part.size_bytes
        part_ends.append(total)
    offsets = sorted((offset, path) for path, offset in _offsets(written.data).items())
    found: dict[str, set[str]] = {"frame start": set(), "two parts": set(), "part end": set()}
    header_bytes = _payload_offset(written, parts)
    for number, (offset, path) in enumerate(offsets):
        end = offsets[number + 1][0] if number + 1 < len(offsets) else sum(frame.plain_bytes for frame in frames)
        if offset in frame_starts and offset:
            found["frame start"].add(path)
        first = [f for f in frames if f.plain_offset <= offset][-1]
        last = [f for f in frames if f.plain_offset < end][-1]
        c_start, c_end = first.compressed_offset, last.compressed_offset + last.compressed_bytes
        s_start = header_bytes + (c_start // CHUNK_BYTES) * SEALED_CHUNK_BYTES
        s_end = min(header_bytes + (-(-c_end // CHUNK_BYTES)) * SEALED_CHUNK_BYTES, parts.size_bytes)
        if any(s_start < part_end < s_end for part_end in part_ends):
            found["two parts"].add(path)
        if s_end in part_ends[:-1]:
            found["part end"].add(path)
    return found


def _payload_offset(written: Written, parts: selective.PartsRange) -> int:
    head = parts.read(0, 4096)
    return head.index(b"\n", head.index(b"--- ")) + 1 + 16


def test_members_at_every_boundary_restore_exactly_through_ranged_reads(tmp_path):
    data = tmp_path / "d"
    _make_tree(data)
    offsets = _offsets(data)
    # Frames of exactly the distance to a member in the middle: that member starts on a frame's first byte.
    frame_bytes = offsets[_member(data, "a/f20")]
    probe = _backup(tmp_path, data, frame_bytes=frame_bytes, part_bytes=None, name="probe")
    # Parts cut exactly where the stored bytes of f10's last frame end: a member whose read ends on a part's last byte.
    stream = probe.manifest.stream("files")
    parts = selective.PartsRange(probe.storage, probe.manifest, stream)
    header = _payload_offset(probe, parts)
    reader = AgeStage(identities=[probe.key_file.read_text().splitlines()[2]]).seekable_reader(parts.read, parts.size_bytes, where="t")
    table = seek_table_size(reader.read(reader.size_bytes - 9, 9))
    frames = parse_seek_table(reader.read(reader.size_bytes - table, table))
    frame = frames[0]
    part_bytes = header + (-(-(frame.compressed_offset + frame.compressed_bytes) // CHUNK_BYTES)) * SEALED_CHUNK_BYTES
    written = _backup(tmp_path, data, frame_bytes=frame_bytes, part_bytes=part_bytes)
    assert len(written.manifest.stream("files").parts) >= 2
    found = _boundaries(written)
    assert _member(data, "a/f20") in found["frame start"]
    assert found["two parts"] and found["part end"], found
    chosen = {
        "frame start": _member(data, "a/f20"),
        "two parts": sorted(found["two parts"])[0],
        "part end": sorted(found["part end"])[-1],
        "zero-length": _member(data, "a/empty"),
        "hard link": _member(data, "b/hard"),      # with its first name, below
        "symlink": _member(data, "b/link"),
    }
    for kind, member in chosen.items():
        selected = tmp_path / f"sel-{kind.replace(' ', '-')}"
        paths = (member, _member(data, "b/big.bin")) if kind == "hard link" else (member,)
        report = restore_set(written.storage, written.manifest,
                             options=RestoreOptions(target=selected, paths=paths, key_file=written.key_file, stream_names=("files",)))
        assert report.selective, f"{kind}: not restored through the selective path"
        relative = member[len(str(data).lstrip("/")) + 1:]
        restored = selected / member
        source = data / relative
        if source.is_symlink():
            assert os.readlink(restored) == os.readlink(source)
        else:
            assert restored.read_bytes() == source.read_bytes(), kind
            assert restored.stat().st_mtime_ns == source.stat().st_mtime_ns
    assert (tmp_path / "sel-hard-link" / _member(data, "b/hard")).stat().st_ino == (
        tmp_path / "sel-hard-link" / _member(data, "b/big.bin")).stat().st_ino
    # The hard link's first name is outside the selection: as with a full read, it is reported, not invented.
    hard = restore_set(written.storage, written.manifest, options=RestoreOptions(
        target=tmp_path / "hard-only", paths=(_member(data, "b/hard"),), key_file=written.key_file, stream_names=("files",)))
    assert hard.selective and any("hard link" in warning and "was not restored in this run" in warning for warning in hard.warnings)


def test_selective_restore_matches_the_full_read_and_reads_less(tmp_path, monkeypatch):
    data = tmp_path / "d"
    _make_tree(data)
    (data / "z.bin").write_bytes(os.urandom(1_500_000))   # the bulk of the set, which one small file must not cost
    written = _backup(tmp_path, data, frame_bytes=8192, part_bytes=200_000)
    for pattern in (_member(data, "b/deep"), _member(data, "a/f3*"), _member(data, "b"), "*/empty", "nothing/here"):
        fast, slow = tmp_path / "fast", tmp_path / "slow"
        report = _restore(written, fast, (pattern,))
        full_report = _restore(written, slow, (pattern,), full=True, monkeypatch=monkeypatch)
        assert report.selective and not full_report.selective
        assert _tree(fast) == _tree(slow), pattern
        assert report.warnings == full_report.warnings
        shutil.rmtree(fast)
        shutil.rmtree(slow)
    one = _restore(written, tmp_path / "one", (_member(data, "a/f05"),))
    read = one.selective[0]
    assert read.members_selected == 1
    assert read.bytes_read < read.set_bytes / 5
    assert read.frames_read <= 2 < read.frames_total


def test_flipped_byte_in_a_chunk_the_selective_path_reads_is_detected(tmp_path):
    data = tmp_path / "d"
    _make_tree(data)
    written = _backup(tmp_path, data, frame_bytes=8192, part_bytes=None)
    # The last member (b/link) is read from the last frame, just before the seek table: flip a byte there.
    (part,) = written.manifest.stream("files").parts
    path = written.storage.base / written.set_id / part.name
    raw = bytearray(path.read_bytes())
    raw[-200] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(DecryptError, match="authentication failed"):
        _restore(written, tmp_path / "out", (_member(data, "b/link"),))


def test_flipped_byte_in_a_part_read_whole_names_the_part(tmp_path):
    data = tmp_path / "d"
    _make_tree(data)
    written = _backup(tmp_path, data, frame_bytes=65536, part_bytes=3000)   # a frame spans many small parts
    # A part in the middle of the first frame's stored bytes: the selective read of the first file takes it whole.
    victim = written.manifest.stream("files").parts[3]
    path = written.storage.base / written.set_id / victim.name
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match=f"part {victim.name} .*SHA-256"):
        _restore(written, tmp_path / "out", (_member(data, "a/f00"),))


def test_sets_without_seek_frames_fall_back_to_the_full_read(tmp_path):
    data = tmp_path / "d"
    _make_tree(data)
    written = _backup(tmp_path, data, frame_bytes=0, part_bytes=20_000)
    report = _restore(written, tmp_path / "out", (_member(data, "b/deep"),))
    assert not report.selective
    assert (tmp_path / "out" / _member(data, "b/deep/log.txt")).read_bytes() == (data / "b" / "deep" / "log.txt").read_bytes()


def test_seekable_stream_reads_back_whole_through_the_ordinary_reader(tmp_path):
    data = tmp_path / "d"
    _make_tree(data)
    written = _backup(tmp_path, data, frame_bytes=4096, part_bytes=30_000)
    with open_plain_stream(written.storage, written.manifest, "files", key_file=written.key_file) as (plain, stored):
        tar = plain.read()
        stored.drain()
    assert tar.endswith(bytes(1024)) and len(tar) % 10240 == 0


names = st.sampled_from(["a", "b", "c", "ab", "x.log", "y.conf"])


@st.composite
def trees(draw):
    entries = draw(st.lists(st.tuples(st.lists(names, min_size=1, max_size=3), st.integers(0, 20_000)), min_size=1, max_size=25))
    return entries


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees(), frame_bytes=st.sampled_from([1024, 4096, 10_000, 65536]), part_bytes=st.sampled_from([5000, 40_000, None]),
       globs=st.lists(st.sampled_from(["a", "b/*", "*.log", "*/c", "a*", "c/a/b", "*"]), min_size=1, max_size=2))
def test_random_trees_and_globs_restore_what_the_full_read_does(tmp_path_factory, monkeypatch, tree, frame_bytes, part_bytes, globs):
    root = tmp_path_factory.mktemp("prop")
    data = root / "d"
    data.mkdir()
    for parts, size in tree:
        path = data.joinpath(*parts)
        if any(parent.is_file() for parent in path.parents) or path.is_dir():
            continue
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((b"%d " % size) * (size // 8) + os.urandom(size % 300))
    written = _backup(root, data, frame_bytes=frame_bytes, part_bytes=part_bytes)
    prefix = str(data).lstrip("/")
    patterns = tuple(f"{prefix}/{glob}" for glob in globs)
    report = _restore(written, root / "fast", patterns)
    full_report = _restore(written, root / "slow", patterns, full=True, monkeypatch=monkeypatch)
    assert report.selective
    assert _tree(root / "fast") == _tree(root / "slow")
    assert report.warnings == full_report.warnings
