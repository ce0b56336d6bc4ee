"""The file index: one JSON line per member, matching the tar exactly, odd names reversible."""

from __future__ import annotations

import io
import json
import os
import tarfile

from ncbackup.archive.index import IndexWriter, read_index
from ncbackup.archive.writer import write_tar
from ncbackup.sources.base import StreamReport


def test_index_lists_every_tar_member_with_type_size_and_mtime(source_tree):
    archive = io.BytesIO()
    index = io.BytesIO()
    write_tar(archive, [str(source_tree.root)], report=StreamReport(), index=IndexWriter(index))
    entries = list(read_index(io.BytesIO(index.getvalue())))
    with tarfile.open(fileobj=io.BytesIO(archive.getvalue())) as reader:
        members = reader.getmembers()
    assert [entry.path for entry in entries] == [member.name for member in members]
    for entry, member in zip(entries, members, strict=True):
        assert entry.size == member.size
        assert abs(entry.mtime - member.mtime) < 1e-6
        expected_type = {"0": "file", "5": "dir", "2": "symlink", "1": "hardlink"}[member.type.decode()]
        assert entry.type == expected_type
        if member.issym() or member.islnk():
            assert entry.link == member.linkname
    # Every line is plain ASCII JSON, readable by any JSON tool.
    for line in index.getvalue().splitlines():
        json.loads(line.decode("ascii"))


def test_names_needing_escapes_round_trip_to_the_exact_bytes():
    names = [b"plain/name.txt", b'quote"and\\backslash', b"tab\there", b"caf\xe9\xff", "名前".encode(), b"new\nline"]
    buffer = io.BytesIO()
    writer = IndexWriter(buffer)
    for number, name in enumerate(names):
        writer.add(name, kind="file", size=number, mtime_ns=1_700_000_000_000_000_001 * (1 if number % 2 else -1))
    writer.add(b"link", kind="symlink", size=0, mtime_ns=0, link=b"target\xfe")
    entries = list(read_index(io.BytesIO(buffer.getvalue())))
    assert [entry.path_bytes for entry in entries] == names + [b"link"]
    assert [entry.size for entry in entries[:-1]] == list(range(len(names)))
    assert entries[1].mtime == 1_700_000_000.000000001
    assert entries[0].mtime == -1_700_000_000.000000001
    assert os.fsencode(entries[-1].link) == b"target\xfe"
    assert len(buffer.getvalue().splitlines()) == len(names) + 1


def test_index_offsets_point_at_each_members_first_header_block(source_tree):
    """offset: where the member's headers (pax first, if any) start in the tar, as tarfile sees them."""
    archive = io.BytesIO()
    index = io.BytesIO()
    write_tar(archive, [str(source_tree.root)], report=StreamReport(), index=IndexWriter(index))
    entries = list(read_index(io.BytesIO(index.getvalue())))
    with tarfile.open(fileobj=io.BytesIO(archive.getvalue())) as reader:
        members = reader.getmembers()
    for entry, member in zip(entries, members, strict=True):
        # tarfile's offset is the member's own header; a pax header before it belongs to the member too.
        assert entry.offset is not None and entry.offset <= member.offset < entry.offset + 512 * 8
        if entry.offset < member.offset:
            assert archive.getvalue()[entry.offset + 156:entry.offset + 157] == b"x"
    assert entries[0].offset == 0


def test_index_lines_written_before_offsets_still_read():
    line = b'{"path":"etc/hosts","type":"file","size":12,"mtime":1700000000}\n'
    (entry,) = read_index(io.BytesIO(line))
    assert entry.path == "etc/hosts" and entry.offset is None
