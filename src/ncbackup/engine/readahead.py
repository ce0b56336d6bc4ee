"""A readable whose source is read ahead by its own thread into a bounded queue of chunks.

Restore stacks these so part I/O, hashing and decryption, zstd decompression and extraction run at
the same time instead of taking turns (zstd, hashing and file I/O release the GIL). Whatever the
source raises in the thread is raised, as the same exception object, by the consumer's next read;
close() stops the thread and waits for it, even when the consumer gave up half way.
"""

from __future__ import annotations

import io
import queue
import threading
from typing import Any, BinaryIO

READ_AHEAD_CHUNK_BYTES = 1 << 20
# Chunks waiting between two stages: bounded, so memory stays flat (a few MiB per stage).
READ_AHEAD_DEPTH = 4
_END = object()


class _Failure:
    """What the source raised, carried through the queue to the consumer."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ReadAhead(io.RawIOBase):
    """Readable: the bytes of source, read by a thread in chunks of chunk_bytes, at most depth chunks ahead."""

    def __init__(
        self,
        source: BinaryIO,
        *,
        name: str,
        chunk_bytes: int = READ_AHEAD_CHUNK_BYTES,
        depth: int = READ_AHEAD_DEPTH,
        returns_views: bool = False,
    ) -> None:
        super().__init__()
        # Views avoid a copy; only for a consumer that takes any buffer (zstd does), not bytes methods.
        self._returns_views = returns_views
        self._source = source
        self._chunk_bytes = chunk_bytes
        self._chunks: queue.Queue = queue.Queue(depth)
        self._stopping = threading.Event()
        self._current = memoryview(b"")
        self._failure: BaseException | None = None
        self._is_at_end = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def readable(self) -> bool:
        return True

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                chunk = self._source.read(self._chunk_bytes)
                if not chunk:
                    self._chunks.put(_END)
                    return
                self._chunks.put(chunk)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            self._chunks.put(_Failure(error))
        # Stopped by close(): no end marker, a consumer must never take a cut stream for a whole one.

    def _next_chunk(self) -> bool:
        """Load the next chunk into _current; False at the end; raise what the source raised."""
        if self._failure is not None:
            raise self._failure
        if self._is_at_end:
            return False
        if self.closed:
            raise ValueError("read from a closed ReadAhead")
        item = self._chunks.get()
        if item is _END:
            self._is_at_end = True
            return False
        if isinstance(item, _Failure):
            self._failure = item.error
            raise item.error
        self._current = memoryview(item)
        return True

    def read(self, size: int | None = -1) -> bytes | memoryview:
        if size is None or size < 0:
            return self.readall()
        while not self._current:
            if size == 0 or not self._next_chunk():
                return b""
        if size >= len(self._current):
            # The whole chunk: hand over the producer's buffer, no copy.
            chunk, self._current = self._current, memoryview(b"")
            if isinstance(chunk.obj, bytes) and len(chunk.obj) == len(chunk):
                return chunk.obj
        else:
            chunk, self._current = self._current[:size], self._current[size:]
        return chunk if self._returns_views else bytes(chunk)

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        count = len(chunk)
        memoryview(buffer).cast("B")[:count] = chunk
        return count

    def readall(self) -> bytes:
        pieces: list[bytes | memoryview] = []
        while True:
            piece = self.read(self._chunk_bytes)
            if not piece:
                return b"".join(pieces)
            pieces.append(piece)

    def close(self) -> None:
        """Stop the thread (dropping what it read ahead) and wait for it; the source is left open."""
        if self.closed:
            return
        self._stopping.set()
        # The thread may be blocked putting into a full queue: empty it until the thread is gone.
        while self._thread.is_alive():
            self._discard_queued()
            self._thread.join(0.05)
        self._discard_queued()
        # A stage reading from this one in its own thread must not wait forever on the empty queue.
        self._chunks.put_nowait(_Failure(ValueError("read from a closed ReadAhead")))
        self._current = memoryview(b"")
        super().close()

    def _discard_queued(self) -> None:
        while True:
            try:
                self._chunks.get_nowait()
            except queue.Empty:
                return
