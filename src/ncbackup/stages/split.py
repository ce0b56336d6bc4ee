"""The splitter: the last stage of a stream, cutting its bytes into parts of part_size_bytes.

``cat`` of the parts in order gives the stream back. Each part is hashed as it goes and handed,
chunk by chunk, to a ``PartSink`` (in a backup set: a tee to every storage).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ncbackup.stages.hashing import PartDigest

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class PartSink(Protocol):
    """Receives the parts of one stream; called from the producing thread, in order."""

    def begin(self, index: int) -> None:
        """A new part starts (0, 1, 2...)."""
        ...

    def chunk(self, data: bytes | memoryview) -> None:
        """Next bytes of the current part; data is immutable and may be kept."""
        ...

    def end(self, index: int, size_bytes: int, sha256: str) -> None:
        """The current part is complete."""
        ...

    def abort(self, error: BaseException) -> None:
        """The stream failed: the current part, if any, must not be stored."""
        ...


@dataclass(frozen=True)
class CutPart:
    index: int
    size_bytes: int
    sha256: str


class Splitter(io.RawIOBase):
    """Writable: cuts what is written into parts; close() ends the last part (an empty stream gives one empty part).

    After abort(), further writes are ignored: stages above it may still flush trailers on
    garbage collection, and those bytes must go nowhere.
    """

    def __init__(self, sink: PartSink, *, part_size_bytes: int | None) -> None:
        super().__init__()
        if part_size_bytes is not None and part_size_bytes < 1:
            raise ValueError("part_size_bytes must be at least 1 (None: one part)")
        self._sink = sink
        self._part_size_bytes = part_size_bytes
        self._digest: PartDigest | None = None
        self._index = -1
        self._is_aborted = False
        self.parts: list[CutPart] = []

    @property
    def bytes_out(self) -> int:
        return sum(part.size_bytes for part in self.parts) + (self._digest.size_bytes if self._digest else 0)

    def writable(self) -> bool:
        return True

    def _begin(self) -> PartDigest:
        self._index += 1
        digest = self._digest = PartDigest()
        self._sink.begin(self._index)
        return digest

    def _end(self, digest: PartDigest) -> None:
        part = CutPart(index=self._index, size_bytes=digest.size_bytes, sha256=digest.hexdigest())
        self._digest = None
        self._sink.end(part.index, part.size_bytes, part.sha256)
        self.parts.append(part)

    def write(self, data: ReadableBuffer) -> int:
        if self._is_aborted or self.closed:
            return memoryview(data).nbytes
        # bytes can be handed on as they are; anything mutable (a reused buffer) is copied once.
        if not isinstance(data, bytes):
            data = bytes(data)
        size = len(data)
        if size == 0:
            return 0
        limit = self._part_size_bytes
        if limit is None:
            digest = self._digest if self._digest is not None else self._begin()
            digest.update(data)
            self._sink.chunk(data)
            return size
        view = memoryview(data)
        position = 0
        while position < size:
            digest = self._digest if self._digest is not None else self._begin()
            room = limit - digest.size_bytes
            piece = view[position:position + room] if (size - position > room or position) else data
            digest.update(piece)
            self._sink.chunk(piece)
            position += len(piece)
            if digest.size_bytes == limit:
                self._end(digest)
        return size

    def close(self) -> None:
        """End the last part; a stream that wrote nothing still gets its one (empty) part."""
        if self.closed:
            return
        try:
            if not self._is_aborted:
                if self._digest is None and not self.parts:
                    self._begin()
                if self._digest is not None:
                    self._end(self._digest)
        finally:
            super().close()

    def abort(self, error: BaseException) -> None:
        """Drop the part in progress; what was already ended stays ended."""
        if self._is_aborted:
            return
        self._is_aborted = True
        if self._digest is not None:
            self._digest = None
            self._sink.abort(error)
