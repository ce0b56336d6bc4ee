"""The file index: one JSON line per tar member (path, type, size, mtime, offset), stored as its own stream.

``offset`` is where the member's first header block (its pax header, if any) starts in the plain tar
stream; with the files stream's zstd seek table it locates the frame to decompress for a selective
restore. Indexes written before it have no offset (``IndexEntry.offset`` is None).

A path is the member name as written in the tar (bytes, no trailing slash) decoded as UTF-8 with
``surrogateescape``: a byte that is not valid UTF-8 appears as a ``\\udcXX`` escape in the JSON text,
and ``entry.path_bytes`` gives the exact original bytes back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

# Member types as the index spells them.
FILE, DIRECTORY, SYMLINK, HARDLINK = "file", "dir", "symlink", "hardlink"


def bytes_to_text(raw: bytes) -> str:
    """Decode a file name reversibly: invalid UTF-8 bytes become lone surrogates."""
    return raw.decode("utf-8", "surrogateescape")


def text_to_bytes(text: str) -> bytes:
    """Inverse of bytes_to_text: the exact original bytes."""
    return text.encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class IndexEntry:
    """One member of a files stream as the index records it."""

    path: str                 # member name, surrogate-escaped (see module docstring)
    type: str                 # "file" | "dir" | "symlink" | "hardlink"
    size: int                 # bytes of content (0 for everything but files)
    mtime: float              # seconds since the epoch
    link: str | None = None   # symlink target or hard link's first name
    offset: int | None = None  # byte offset of the member's header in the plain tar; None in older indexes
    set: str | None = None     # incremental sets: the set whose files stream holds the member (None: this set)

    @property
    def path_bytes(self) -> bytes:
        return text_to_bytes(self.path)


class IndexWriter:
    """Appends one JSON line per member to a binary file (``add_plain_file`` lines once ``flush`` is called)."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._pending: list[bytes] = []
        self.count = 0

    def add_plain_file(self, name: bytes, *, size: int, mtime_text: bytes, offset: int) -> None:
        """A regular file whose name needs no JSON escaping (printable ASCII but " and \\) and whose mtime is
        already written as the index writes it; kept until flush: one write per batch instead of per member."""
        pending = self._pending
        self.count += 1
        pending.append(b'{"path":"%s","type":"file","size":%d,"mtime":%s,"offset":%d}\n' % (name, size, mtime_text, offset))
        if len(pending) >= _PENDING_LINES:
            self.flush()

    def flush(self) -> None:
        """Write the lines add_plain_file kept."""
        if self._pending:
            self._sink.write(b"".join(self._pending))
            self._pending = []

    def add(
        self, name: bytes, *, kind: str, size: int, mtime_ns: int, link: bytes | None = None, offset: int | None = None,
        set_id: str | None = None,
    ) -> None:
        self.flush()
        tail = b"}\n" if offset is None else b',"offset":%d}\n' % offset
        if set_id is not None:
            tail = b',"set":"%s"' % set_id.encode("ascii") + tail
        if link is None and _is_plain(name):
            # Fast path for the common name that needs no JSON escaping: json.dumps per member was
            # as slow as building the member's tar headers.
            line = b'{"path":"%s","type":"%s","size":%d,"mtime":%s' % (name, kind.encode(), size, _seconds(mtime_ns)) + tail
        else:
            record: dict[str, object] = {"path": bytes_to_text(name), "type": kind, "size": size}
            if link is not None:
                record["link"] = bytes_to_text(link)
            # ensure_ascii keeps surrogate escapes as \\udcXX text, which json.loads turns back exactly.
            text = json.dumps(record, separators=(",", ":"))
            line = text[:-1].encode("ascii") + b',"mtime":%s' % _seconds(mtime_ns) + tail
        self._sink.write(line)
        self.count += 1


_PENDING_LINES = 1024
# The bytes a name may hold to go into a line as it is: printable ASCII without " and \\.
PLAIN_NAME_BYTES = bytes(byte for byte in range(32, 127) if byte not in b'"\\')


def _is_plain(name: bytes) -> bool:
    return not name.translate(None, PLAIN_NAME_BYTES)   # nothing left once every plain byte is deleted


def _seconds(ns: int) -> bytes:
    sign = b"-" if ns < 0 else b""
    seconds, fraction = divmod(abs(ns), 1_000_000_000)
    return sign + (b"%d.%09d" % (seconds, fraction)).rstrip(b"0").rstrip(b".")


def read_index(reader: BinaryIO) -> Iterator[IndexEntry]:
    """Yield the entries of an index stream in archive order."""
    for line in reader:
        line = line.strip()
        if not line:
            continue
        record = json.loads(line)
        yield IndexEntry(
            path=record["path"],
            type=record["type"],
            size=int(record.get("size", 0)),
            mtime=float(record.get("mtime", 0.0)),
            link=record.get("link"),
            offset=int(record["offset"]) if "offset" in record else None,
            set=record.get("set"),
        )
