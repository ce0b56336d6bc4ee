"""Selective restore: read only the zstd frames of a seekable files stream that hold the members --path selects.

A seekable set (``stages/compress.py``: a frame every SEEK_FRAME_MB of plain data, zstd's seek table
at the end; ``archive/index.py``: each member's tar offset) lets ``restore --path`` fetch the index
stream, pick the matching members, and for each of them decrypt (age chunks, each authenticated),
and decompress only the frames covering it, fetched by ranged reads across part boundaries. The
members' tar bytes, cut from those frames and followed by the end-of-archive blocks, go through the
stream's usual restorer (the same extractor, the same --path selection), so hard links, folders and
refusals behave as with a full read. Anything else (no seek table, no offsets in the index, another
cipher than age with an X25519 identity) returns None: the caller reads the stream from its start.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import logging
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import zstandard

from ncbackup.archive.extract import member_selector
from ncbackup.archive.index import IndexEntry, read_index
from ncbackup.errors import IntegrityError
from ncbackup.setformat import Manifest, StreamInfo, part_key
from ncbackup.stages.compress import SEEK_FOOTER, SeekFrame, parse_seek_table, seek_table_size
from ncbackup.storage.base import Storage, as_binary, get_range

log = logging.getLogger(__name__)

END_OF_ARCHIVE = bytes(1024)
READ_CHUNK_BYTES = 1 << 20


@dataclass
class SelectiveRead:
    """What a selective restore read: bytes fetched from storage against the size of the whole set."""

    stream_name: str
    members_selected: int
    frames_read: int
    frames_total: int
    bytes_read: int        # stored bytes fetched: index stream, age header, seek table, chunks
    set_bytes: int         # stored bytes of every stream of the set


class PartsRange:
    """A stream's parts as one logical file, read by ranges (each part's size from the manifest)."""

    def __init__(self, storage: Storage, manifest: Manifest, stream: StreamInfo) -> None:
        self._storage = storage
        self._parts = list(stream.parts)
        self._where = f"set {manifest.set_id} on {storage.name}"
        self._keys = [part_key(manifest.set_id, part.name) for part in stream.parts]
        self._starts: list[int] = []
        total = 0
        for part in stream.parts:
            self._starts.append(total)
            total += part.size_bytes
        self.size_bytes = total

    def read(self, offset: int, length: int) -> bytes:
        """Bytes [offset, offset + length) of the concatenated parts (fewer only at the end)."""
        pieces: list[bytes] = []
        end = min(offset + length, self.size_bytes)
        index = max(0, bisect.bisect_right(self._starts, offset) - 1)
        while offset < end and index < len(self._keys):
            part_start = self._starts[index]
            part_end = self._starts[index + 1] if index + 1 < len(self._starts) else self.size_bytes
            if offset < part_end:
                count = min(end, part_end) - offset
                piece = get_range(self._storage, self._keys[index], offset - part_start, count)
                if count == part_end - part_start:
                    self._check_whole(index, piece)
                pieces.append(piece)
                offset += len(piece)
                if len(piece) < count:
                    break   # the part is shorter than the manifest says: the caller reports the short read
            index += 1
        return b"".join(pieces)


    def _check_whole(self, index: int, data: bytes) -> None:
        """A part read whole is checked against its SHA-256, as a full read would."""
        part = self._parts[index]
        if part.sha256 and hashlib.sha256(data).hexdigest() != part.sha256:
            raise IntegrityError(
                f"part {part.name} of {self._where} does not match its SHA-256 in the manifest: it is damaged or comes "
                "from another set; restore from another storage or another set"
            )


class _Frames:
    """The plain bytes of a seekable stream, one frame decompressed at a time (the last one is kept)."""

    def __init__(self, read_compressed: Callable[[int, int], bytes], frames: Sequence[SeekFrame], *, where: str) -> None:
        self._read = read_compressed
        self._frames = list(frames)
        self._plain_starts = [frame.plain_offset for frame in frames]
        self._where = where
        self._cached: tuple[int, bytes] | None = None
        self.frames_read: set[int] = set()
        self.plain_size = sum(frame.plain_bytes for frame in frames)

    def frame_of(self, position: int) -> int:
        return max(0, bisect.bisect_right(self._plain_starts, position) - 1)

    def _frame(self, number: int) -> bytes:
        if self._cached is not None and self._cached[0] == number:
            return self._cached[1]
        frame = self._frames[number]
        compressed = self._read(frame.compressed_offset, frame.compressed_bytes)
        try:
            plain = zstandard.ZstdDecompressor().decompressobj().decompress(compressed)
        except zstandard.ZstdError as error:
            raise IntegrityError(f"{self._where}: frame {number} cannot be decompressed ({error}); it is damaged") from None
        if len(compressed) != frame.compressed_bytes or len(plain) != frame.plain_bytes:
            raise IntegrityError(f"{self._where}: frame {number} does not match its seek table entry; the stream is damaged")
        self._cached = (number, plain)
        self.frames_read.add(number)
        return plain

    def read(self, start: int, end: int) -> bytes:
        """Plain bytes [start, end), from as many frames as it covers."""
        pieces = []
        while start < end:
            number = self.frame_of(start)
            frame = self._frames[number]
            data = self._frame(number)
            stop = min(end, frame.plain_offset + frame.plain_bytes)
            pieces.append(data[start - frame.plain_offset:stop - frame.plain_offset])
            if stop <= start:
                raise IntegrityError(f"{self._where}: the index points past the end of the stream; it is damaged")
            start = stop
        return b"".join(pieces)


class SelectedTar(io.RawIOBase):
    """A tar stream made of the selected members' bytes, cut from the frames, then the end-of-archive blocks."""

    def __init__(self, frames: _Frames, segments: Sequence[tuple[int, int]]) -> None:
        super().__init__()
        self._frames = frames
        self._segments = list(segments)
        self._pending = memoryview(b"")
        self._position = 0     # next offset to read within the current segment
        self._is_done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = READ_CHUNK_BYTES
        while not self._pending:
            if self._is_done:
                return b""
            if not self._segments:
                self._pending = memoryview(END_OF_ARCHIVE)
                self._is_done = True
                break
            start, end = self._segments[0]
            start = max(start, self._position)
            stop = min(end, start + READ_CHUNK_BYTES)
            self._pending = memoryview(self._frames.read(start, stop))
            self._position = stop
            if stop >= end:
                self._segments.pop(0)
                self._position = 0
        piece = bytes(self._pending[:size])
        self._pending = self._pending[len(piece):]
        return piece

    def readinto(self, buffer: Any) -> int:
        piece = self.read(len(buffer))
        buffer[:len(piece)] = piece
        return len(piece)


def _segments(entries: Sequence[IndexEntry], patterns: Sequence[str], plain_size: int) -> tuple[list[tuple[int, int]], int]:
    """[start, end) in the plain tar of the selected members (from a member's offset to the next member's),
    neighbours merged, and how many members were selected."""
    selects = member_selector(patterns)
    offsets = sorted((entry.offset or 0, entry.path_bytes) for entry in entries)
    segments: list[tuple[int, int]] = []
    selected = 0
    for number, (start, name) in enumerate(offsets):
        if not selects(name):
            continue
        selected += 1
        end = offsets[number + 1][0] if number + 1 < len(offsets) else plain_size
        if segments and segments[-1][1] == start:
            segments[-1] = (segments[-1][0], end)   # neighbours: one segment
        else:
            segments.append((start, end))
    return segments, selected


def index_stream_of(manifest: Manifest, stream: StreamInfo) -> StreamInfo | None:
    """The usable files-index stream written with stream, if any."""
    for candidate in manifest.streams:
        if candidate.kind == "files-index" and candidate.name == f"{stream.name}-index" and candidate.is_ok:
            return candidate
    return None


def is_seekable(manifest: Manifest, stream: StreamInfo) -> bool:
    """Whether stream was written seekable (zstd seek frames, age) and has an index stream beside it."""
    return (
        stream.kind == "files" and stream.codec == "zstd" and stream.cipher == "age"
        and bool(stream.compression.get("seek_frame_bytes")) and index_stream_of(manifest, stream) is not None
    )


def read_stream_index(storage: Storage, manifest: Manifest, index_stream: StreamInfo, *,
                      key_file: Path | None) -> tuple[list[IndexEntry], int]:
    """The entries of a files-index stream, read whole and checked; and the stored bytes that took."""
    from ncbackup.engine.restore import open_plain_stream

    with open_plain_stream(storage, manifest, index_stream.name, key_file=key_file) as (plain, stored):
        # Buffered: iterating lines over the unbuffered plain reader would read a byte per call.
        entries = list(read_index(as_binary(io.BufferedReader(cast(io.RawIOBase, plain), READ_CHUNK_BYTES))))
        while plain.read(READ_CHUNK_BYTES):
            pass
        stored.drain()
        return entries, stored.bytes_read


def open_frames(storage: Storage, manifest: Manifest, stream: StreamInfo, *,
                key_file: Path | None) -> tuple[_Frames, Any, list[SeekFrame]] | None:
    """The plain bytes of a seekable stream by frames (its seek table read by ranges), the age reader under them
    and the frames; None when the stream is not seekable or the key cannot read it by ranges (an ssh key)."""
    from ncbackup.stages.age import AgeStage
    from ncbackup.stages.registry import decryption_for

    if not is_seekable(manifest, stream):
        return None
    stage = decryption_for(stream.cipher, key_file)
    if not isinstance(stage, AgeStage):
        return None
    where = f"stream {stream.name} of set {manifest.set_id}"
    parts = PartsRange(storage, manifest, stream)
    seekable = stage.seekable_reader(parts.read, parts.size_bytes, where=where)
    if seekable is None:
        return None
    try:
        footer = seekable.read(seekable.size_bytes - SEEK_FOOTER.size, SEEK_FOOTER.size)
        table_bytes = seek_table_size(footer)
        frames = parse_seek_table(seekable.read(seekable.size_bytes - table_bytes, table_bytes))
    except (ValueError, struct.error) as error:
        raise IntegrityError(f"{where} says it is seekable but its seek table is damaged ({error})") from None
    return _Frames(seekable.read, frames, where=where), seekable, frames


def open_selected(
    storage: Storage,
    manifest: Manifest,
    stream: StreamInfo,
    *,
    patterns: Sequence[str],
    key_file: Path | None,
) -> tuple[io.RawIOBase, Callable[[], SelectiveRead]] | None:
    """A tar stream of only the members patterns select, read by ranges, and a function saying what it read;
    None when the stream is not seekable (or the key is an ssh key): read it whole instead."""
    from ncbackup.stages.age import AgeStage
    from ncbackup.stages.registry import decryption_for

    index_stream = index_stream_of(manifest, stream)
    if index_stream is None or not is_seekable(manifest, stream):
        return None
    if not isinstance(decryption_for(stream.cipher, key_file), AgeStage):
        return None
    entries, index_bytes = read_stream_index(storage, manifest, index_stream, key_file=key_file)
    if not entries or any(entry.offset is None for entry in entries):
        return None   # an index written before offsets were recorded
    opened = open_frames(storage, manifest, stream, key_file=key_file)
    if opened is None:
        return None
    reader, seekable, frames = opened
    segments, selected_count = _segments(entries, patterns, reader.plain_size)
    selected = SelectedTar(reader, segments)
    set_bytes = sum(part.size_bytes for each in manifest.streams for part in each.parts)

    def outcome() -> SelectiveRead:
        return SelectiveRead(
            stream_name=stream.name, members_selected=selected_count, frames_read=len(reader.frames_read),
            frames_total=len(frames), bytes_read=index_bytes + seekable.bytes_read, set_bytes=set_bytes,
        )

    return selected, outcome
