"""Compression stages: zstd (multi-threaded, the default), gzip (stdlib, for ``.tar.gz``) and none.

zstd output is seekable (zstd's own "seekable format", contrib/seekable_format in the zstd sources):
a new frame starts every ``seek_frame_bytes`` of plain data, and a skippable frame at the very end
holds the seek table (each frame's compressed and plain size). Stock ``zstd -d`` skips that frame,
so the stream stays one ordinary ``.zst``; a reader that knows the table can decompress one frame alone.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, cast

import zstandard

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

# zstd hands its output to the next stage in chunks this big: fewer, larger writes downstream.
ZSTD_OUTPUT_CHUNK_BYTES = 1 << 20
READ_CHUNK_BYTES = 1 << 20
# Multi-threaded zstd keeps a few jobs in flight, each with input and output buffers. Its default job
# at level 3 is 8 MiB: 4 MiB cut the pipeline's peak RSS from ~170 to ~115 MiB on a 1 GiB tree, for
# 0.3 % larger output (measured on the bench corpus, 2 threads).
ZSTD_JOB_BYTES = 4 << 20
ZSTD_SMALL_JOB_MAX_LEVEL = 9
# The seek table (zstd seekable format): a skippable frame, entries of (compressed, plain) size, a footer.
SKIPPABLE_MAGIC = 0x184D2A5E
SEEKABLE_MAGIC = 0x8F92EAB1
SEEK_ENTRY = struct.Struct("<II")
SEEK_FOOTER = struct.Struct("<IBI")     # number of frames, descriptor (no checksums: 0), seekable magic
SEEK_FRAME_MAX_BYTES = (1 << 32) - 1    # a frame's plain size must fit the table's 4-byte field


class _Passthrough(io.RawIOBase):
    """Writable stream that forwards to sink and leaves it open on close."""

    def __init__(self, sink: BinaryIO) -> None:
        super().__init__()
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        self._sink.write(data)
        return memoryview(data).nbytes


@dataclass(frozen=True)
class SeekFrame:
    """One zstd frame of a seekable stream: where it starts in the compressed and in the plain stream."""

    compressed_offset: int
    compressed_bytes: int
    plain_offset: int
    plain_bytes: int


def seek_table_bytes(frames: list[tuple[int, int]]) -> bytes:
    """The skippable frame holding the seek table of (compressed size, plain size) per frame."""
    body = b"".join(SEEK_ENTRY.pack(compressed, plain) for compressed, plain in frames)
    body += SEEK_FOOTER.pack(len(frames), 0, SEEKABLE_MAGIC)
    return struct.pack("<II", SKIPPABLE_MAGIC, len(body)) + body


def seek_table_size(footer: bytes) -> int:
    """From the last 9 bytes of a stream, the size of its whole seek table frame; ValueError when it has none."""
    frames, descriptor, magic = SEEK_FOOTER.unpack(footer)
    if magic != SEEKABLE_MAGIC or descriptor & 0x7C:
        raise ValueError("the stream does not end with a zstd seek table")
    entry_bytes = SEEK_ENTRY.size + (4 if descriptor & 0x80 else 0)
    return 8 + frames * entry_bytes + SEEK_FOOTER.size


def parse_seek_table(table: bytes) -> list[SeekFrame]:
    """The frames a seek table (the whole skippable frame, as seek_table_size measured it) lists; ValueError if malformed."""
    magic, size = struct.unpack_from("<II", table)
    if magic != SKIPPABLE_MAGIC or size != len(table) - 8:
        raise ValueError("malformed zstd seek table")
    count, descriptor, _ = SEEK_FOOTER.unpack(table[-SEEK_FOOTER.size:])
    entry_bytes = SEEK_ENTRY.size + (4 if descriptor & 0x80 else 0)
    if 8 + count * entry_bytes + SEEK_FOOTER.size != len(table):
        raise ValueError("malformed zstd seek table")
    frames, compressed_offset, plain_offset = [], 0, 0
    for number in range(count):
        compressed, plain = SEEK_ENTRY.unpack_from(table, 8 + number * entry_bytes)
        frames.append(SeekFrame(compressed_offset, compressed, plain_offset, plain))
        compressed_offset += compressed
        plain_offset += plain
    return frames


class _SeekableWriter(io.RawIOBase):
    """A new zstd frame every frame_bytes of plain data; close() ends the last one and appends the seek table.

    The frames are independent, so they are compressed in parallel, each by a single-threaded compressor on a
    worker thread (zstandard releases the GIL while it compresses), and written in order. zstd's own
    multi-threading cannot help here: ending a frame waits for all of its jobs, and a frame is about one job.
    At most 2 x threads frames are in flight, so memory stays bounded (~40 MiB more than one frame: 160-175 MiB
    peak for the whole run on the 1 GiB bench corpus, against 127 MiB).
    """

    def __init__(self, parameters: zstandard.ZstdCompressionParameters, sink: BinaryIO, frame_bytes: int,
                 threads: int) -> None:
        super().__init__()
        self._sink = sink
        self._parameters = parameters
        self._frame_bytes = frame_bytes
        self._buffer = bytearray()
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="zstd-frame") if threads > 1 else None
        self._in_flight: deque[tuple[int, Future[bytes]]] = deque()
        self._max_in_flight = 2 * max(1, threads)
        self.frames: list[tuple[int, int]] = []   # (compressed size, plain size)

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data).cast("B")
        self._buffer += view
        while len(self._buffer) >= self._frame_bytes:
            with memoryview(self._buffer) as whole:
                frame = bytes(whole[:self._frame_bytes])
            del self._buffer[:self._frame_bytes]
            self._submit(frame)
        return len(view)

    def _compress(self, plain: bytes) -> bytes:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:   # a ZstdCompressor is not thread-safe: one per worker thread
            compressor = self._local.compressor = zstandard.ZstdCompressor(compression_params=self._parameters)
        return cast(bytes, compressor.compress(plain))

    def _submit(self, plain: bytes) -> None:
        if self._pool is None:
            self._emit(len(plain), self._compress(plain))
            return
        self._in_flight.append((len(plain), self._pool.submit(self._compress, plain)))
        while len(self._in_flight) >= self._max_in_flight:
            self._emit_oldest()

    def _emit_oldest(self) -> None:
        plain_bytes, future = self._in_flight.popleft()
        self._emit(plain_bytes, future.result())

    def _emit(self, plain_bytes: int, compressed: bytes) -> None:
        self._sink.write(compressed)
        self.frames.append((len(compressed), plain_bytes))

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._buffer or not (self.frames or self._in_flight):
                self._submit(bytes(self._buffer))
                self._buffer.clear()
            while self._in_flight:
                self._emit_oldest()
            self._sink.write(seek_table_bytes(self.frames))
        finally:
            for _plain_bytes, future in self._in_flight:
                future.cancel()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            super().close()


class ZstdStage:
    """zstd at a settable level; threads=0 compresses on the calling thread, -1 uses every core.

    seek_frame_bytes > 0 makes the output seekable (see the module docstring); 0 writes one frame.
    """

    name = "zstd"
    suffix = ".zst"

    def __init__(self, *, level: int = 3, threads: int = -1, seek_frame_bytes: int = 0) -> None:
        self.level = level
        self.threads = (os.cpu_count() or 1) if threads < 0 else threads
        if not 0 <= seek_frame_bytes <= SEEK_FRAME_MAX_BYTES:
            raise ValueError("seek_frame_bytes must be between 0 and 4 GiB - 1")
        self.seek_frame_bytes = seek_frame_bytes

    def writer(self, sink: BinaryIO) -> BinaryIO:
        # A frame checksum, as the zstd CLI writes: corruption of an unencrypted stream is caught too.
        parameters = zstandard.ZstdCompressionParameters.from_level(
            self.level, threads=self.threads, job_size=self._job_bytes(), write_checksum=1,
        )
        if self.seek_frame_bytes:
            frame_parameters = zstandard.ZstdCompressionParameters.from_level(self.level, write_checksum=1)
            return _SeekableWriter(frame_parameters, sink, self.seek_frame_bytes, self.threads)  # type: ignore[return-value]
        compressor = zstandard.ZstdCompressor(compression_params=parameters)
        return compressor.stream_writer(sink, write_size=ZSTD_OUTPUT_CHUNK_BYTES, closefd=False)

    def _job_bytes(self) -> int:
        # High levels are chosen for ratio, with bigger windows: leave zstd's own job size there (0).
        return ZSTD_JOB_BYTES if self.threads and self.level <= ZSTD_SMALL_JOB_MAX_LEVEL else 0

    def reader(self, source: BinaryIO) -> BinaryIO:
        decompressor = zstandard.ZstdDecompressor()
        return io.BufferedReader(
            decompressor.stream_reader(source, read_size=READ_CHUNK_BYTES, read_across_frames=True, closefd=False),
            buffer_size=READ_CHUNK_BYTES,
        )

    def describe(self) -> dict[str, object]:
        described: dict[str, object] = {"codec": self.name, "level": self.level}
        if self.seek_frame_bytes:
            described["seek_frame_bytes"] = self.seek_frame_bytes
        return described


class GzipStage:
    """gzip from the standard library (single-threaded; choose it for ``.tar.gz`` compatibility)."""

    name = "gzip"
    suffix = ".gz"

    def __init__(self, *, level: int = 6) -> None:
        self.level = level

    def writer(self, sink: BinaryIO) -> BinaryIO:
        # mtime=0: identical input gives identical output; GzipFile.close() leaves fileobj open.
        return gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=self.level, mtime=0)  # type: ignore[return-value]

    def reader(self, source: BinaryIO) -> BinaryIO:
        return io.BufferedReader(gzip.GzipFile(fileobj=source, mode="rb"), buffer_size=READ_CHUNK_BYTES)

    def describe(self) -> dict[str, object]:
        return {"codec": self.name, "level": self.level}


class NoCompression:
    """Bytes pass through unchanged (already-compressed data, or a downstream tool compresses)."""

    name = "none"
    suffix = ""

    def writer(self, sink: BinaryIO) -> BinaryIO:
        return _Passthrough(sink)  # type: ignore[return-value]

    def reader(self, source: BinaryIO) -> BinaryIO:
        return source

    def describe(self) -> dict[str, object]:
        return {"codec": self.name}
