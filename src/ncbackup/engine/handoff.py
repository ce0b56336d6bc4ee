"""The two small writers between a source and the splitter: a byte counter that reports progress, and the
hand-off thread that runs encryption, hashing and the tee while the source thread archives and compresses.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

from ncbackup.errors import BackupError

QUEUE_CHUNKS = 8                     # chunks waiting for the encryption thread
PROGRESS_EVERY_BYTES = 8 << 20       # call on_progress at most this often (plus once at the end)

OnProgress = Callable[[str, int], None]


class CountingWriter(io.RawIOBase):
    """Counts bytes on their way from the source into the compressor and reports progress."""

    def __init__(self, inner: BinaryIO, stream_name: str, on_progress: OnProgress | None,
                 stop: threading.Event | None = None) -> None:
        super().__init__()
        self.inner = inner
        self._stop = stop   # set when the run must stop (MAX_RUNTIME): the next write raises RunStopped
        self._stream_name = stream_name
        self._on_progress = on_progress
        self.bytes_in = 0
        self._next_report = PROGRESS_EVERY_BYTES

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self._stop is not None and self._stop.is_set():
            raise RunStopped(STOPPED_TEXT)
        self.inner.write(data)
        size = len(data) if isinstance(data, (bytes, bytearray)) else memoryview(data).nbytes
        self.bytes_in += size
        if self._on_progress is not None and self.bytes_in >= self._next_report:
            self._next_report = self.bytes_in + PROGRESS_EVERY_BYTES
            self._on_progress(self._stream_name, self.bytes_in)
        return size

    def close(self) -> None:
        # Closing the counter never closes the compressor: the pipeline closes each stage itself.
        super().close()


STOPPED_TEXT = "stopped: the run exceeded GENERAL MAX_RUNTIME"


class RunStopped(BackupError):
    """The run passed MAX_RUNTIME: the stream being written stops here and its set is never marked complete."""


_STOP = object()


class StageThread(io.RawIOBase):
    """Writable that hands chunks to a thread running encryption, hashing and the tee.

    The source thread then only archives and feeds zstd (which compresses in its own C threads,
    without the GIL), while this thread encrypts and hashes: the two overlap instead of taking
    turns. Errors from the far side are raised on the next write() or on close().
    """

    def __init__(self, inner: BinaryIO, stream_name: str) -> None:
        super().__init__()
        self._inner = inner
        self._chunks: queue.Queue[bytes | object] = queue.Queue(QUEUE_CHUNKS)
        self._error: BaseException | None = None
        self._is_discarding = False
        self._thread = threading.Thread(target=self._run, name=f"encrypt-{stream_name}", daemon=True)
        self._thread.start()

    def writable(self) -> bool:
        return True

    def _run(self) -> None:
        while True:
            item = self._chunks.get()
            if not isinstance(item, bytes):   # _STOP
                return
            if self._error is None and not self._is_discarding:
                try:
                    self._inner.write(item)
                except BaseException as error:  # noqa: BLE001 - handed back to the source thread
                    self._error = error

    def write(self, data: Any) -> int:
        if self._error is not None:
            raise self._error
        if not isinstance(data, bytes):
            data = bytes(data)  # the caller may reuse its buffer
        self._chunks.put(data)
        return len(data)

    def close(self) -> None:
        """Wait until every chunk went through; raise what the far side raised."""
        if self.closed:
            return
        self._chunks.put(_STOP)
        self._thread.join()
        super().close()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Drop what is still queued and wait for the thread (the stream failed)."""
        if self.closed:
            return
        self._is_discarding = True
        self._chunks.put(_STOP)
        self._thread.join()
        super().close()


def stop_handoff(handoff: StageThread | None) -> None:
    if handoff is not None:
        handoff.stop()
