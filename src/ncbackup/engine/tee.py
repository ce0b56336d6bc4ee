"""The tee: every part of a stream goes to every storage still alive, one worker thread per storage.

The splitter hands each part to ``Tee`` chunk by chunk; each ``StorageWorker`` feeds its storage's
``put`` through a bounded queue (a few MiB in flight per storage), so memory stays flat. A storage
whose put fails for a passing reason while it has siblings keeps going and records the part as
missing (``engine/repair.py`` copies it from a sibling at the end); a permanent error, a lone
storage, or two failures in a row drop it for the rest of the set. The retry layers as a whole are
described in ``storage/retry.py``.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ncbackup.errors import BackupError, StorageError
from ncbackup.storage.base import Storage, as_binary

log = logging.getLogger(__name__)

QUEUE_CHUNKS = 8                     # per storage: with ~1 MiB chunks, a few MiB in flight
FAILURES_BEFORE_DROP = 2             # consecutive failed parts before a storage gets no more parts


@dataclass(frozen=True)
class NamedStorage:
    """A storage and the config section it came from (for messages and the run report)."""

    section_name: str
    storage: Storage



_END = object()


class _Abort:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class StreamAborted(Exception):
    """Raised inside storage.put when the stream feeding the part failed: the put must store nothing."""


class PartReader(io.RawIOBase):
    """What storage.put reads: the chunks of one part from the worker's queue, until the part ends."""

    def __init__(self, chunks: queue.Queue[object]) -> None:
        super().__init__()
        self._chunks = chunks
        self._current = memoryview(b"")
        self.is_finished = False        # the end (or abort) marker was consumed
        self.is_aborted = False

    def readable(self) -> bool:
        return True

    def _next(self) -> bool:
        if self.is_finished:
            return False
        item = self._chunks.get()
        if item is _END:
            self.is_finished = True
            return False
        if isinstance(item, _Abort):
            self.is_finished = True
            self.is_aborted = True
            raise StreamAborted(str(item.error))
        self._current = memoryview(cast(bytes, item))   # the queue holds chunks and the two markers above
        return True

    def readinto(self, target: Any) -> int:
        while not self._current:
            if not self._next():
                return 0
        count = min(len(target), len(self._current))
        target[:count] = self._current[:count]
        self._current = self._current[count:]
        return count

    def read(self, size: int = -1) -> bytes:
        # Hand whole chunks over without copying when the caller asks for at least that much.
        while not self._current:
            if not self._next():
                return b""
        if size is None or size < 0:
            parts = [bytes(self._current)]
            self._current = memoryview(b"")
            while self._next():
                parts.append(bytes(self._current))
                self._current = memoryview(b"")
            return b"".join(parts)
        count = min(size, len(self._current))
        data = self._current[:count]
        self._current = self._current[count:]
        whole = data.obj
        return whole if (isinstance(whole, bytes) and count == len(whole)) else bytes(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def drain(self) -> int:
        """Consume the rest of the part; return how many bytes were left unread."""
        left = len(self._current)
        self._current = memoryview(b"")
        while not self.is_finished:
            try:
                if self._next():
                    left += len(self._current)
                    self._current = memoryview(b"")
            except StreamAborted:
                pass
        return left


class StorageWorker:
    """Runs storage.put for each part in a thread, fed chunk by chunk through a bounded queue."""

    def __init__(self, named: NamedStorage, *, has_siblings: bool = False) -> None:
        self.named = named
        self.has_siblings = has_siblings   # another storage may hold a copy to repair a missed part from
        self.error: str | None = None        # set when the storage is dropped: it gets no more parts
        self.missing: dict[str, str] = {}    # key -> why its put failed (passing errors: repaired at the end)
        self._failures_in_a_row = 0
        self._chunks: queue.Queue[object] = queue.Queue(QUEUE_CHUNKS)
        self._keys: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"put-{named.section_name}", daemon=True)
        self._thread.start()

    @property
    def is_alive(self) -> bool:
        return self.error is None

    def begin(self, key: str) -> None:
        self._keys.put(key)

    def chunk(self, data: bytes | memoryview) -> None:
        self._chunks.put(data)

    def end(self) -> None:
        self._chunks.put(_END)

    def abort(self, error: BaseException) -> None:
        self._chunks.put(_Abort(error))

    def finish(self) -> str | None:
        """Wait for every queued part; return the storage's error, if any."""
        self._keys.put(None)
        self._thread.join()
        return self.error

    def _run(self) -> None:
        while True:
            key = self._keys.get()
            if key is None:
                return
            reader = PartReader(self._chunks)
            if self.error is not None:
                reader.drain()
                continue
            try:
                self.named.storage.put(key, as_binary(reader))
            except StreamAborted:
                continue
            except BaseException as error:  # noqa: BLE001 - a failure costs this storage the part, the others go on
                if reader.is_aborted:
                    continue
                reader.drain()
                self._failed(key, error)
                continue
            left = reader.drain()
            if reader.is_aborted:
                continue
            if left:
                self.error = (f"{self.named.storage.name} stored only part of {key} ({left} bytes unread); "
                              "this is a bug in the storage backend")
                continue
            self._failures_in_a_row = 0

    def _failed(self, key: str, error: BaseException) -> None:
        """Record a failed part; drop the storage when retrying cannot help or it keeps failing."""
        text = str(error) if isinstance(error, BackupError) else f"{type(error).__name__}: {error}"
        if not isinstance(error, BackupError):
            log.debug("storage failure", exc_info=True)
        self._failures_in_a_row += 1
        # Only a BackupError says whether waiting could help; anything else is a bug in the backend: permanent.
        is_permanent = error.is_permanent if isinstance(error, StorageError) else not isinstance(error, BackupError)
        if is_permanent or not self.has_siblings or self._failures_in_a_row >= FAILURES_BEFORE_DROP:
            self.error = text
            log.error("storage %s (%s) failed: %s; it gets no more parts of this set",
                      self.named.section_name, self.named.storage.name, text)
            return
        self.missing[key] = text
        log.warning("storage %s (%s) failed on %s: %s; the part will be copied from another storage at the end",
                    self.named.section_name, self.named.storage.name, key, text)


class AllStoragesFailed(StorageError):
    pass


class Tee:
    """PartSink that sends each part to every storage still alive."""

    def __init__(self, workers: Sequence[StorageWorker], key_for: Callable[[int], str]) -> None:
        self._workers = workers
        self._key_for = key_for
        self._active: list[StorageWorker] = []

    def begin(self, index: int) -> None:
        self._active = [worker for worker in self._workers if worker.is_alive]
        if not self._active:
            raise AllStoragesFailed("; ".join(f"{w.named.section_name}: {w.error}" for w in self._workers))
        key = self._key_for(index)
        for worker in self._active:
            worker.begin(key)

    def chunk(self, data: bytes | memoryview) -> None:
        # A worker whose put failed keeps draining its queue, so putting to it never blocks for long.
        is_any_alive = False
        for worker in self._active:
            worker.chunk(data)
            is_any_alive = is_any_alive or worker.is_alive
        if not is_any_alive:
            raise AllStoragesFailed("; ".join(f"{w.named.section_name}: {w.error}" for w in self._workers))

    def end(self, index: int, size_bytes: int, sha256: str) -> None:
        for worker in self._active:
            worker.end()

    def abort(self, error: BaseException) -> None:
        for worker in self._active:
            worker.abort(error)
