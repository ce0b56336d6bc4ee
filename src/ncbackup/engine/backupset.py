"""The streaming pipeline: each source stream -> compressor -> encryptor -> splitter -> every storage at once.

One pass, no WORK_FOLDER file: the source pushes bytes into ``compressor.writer(encryptor.writer(
splitter))``; the splitter hashes each part and tees its chunks to one worker thread per storage,
through a bounded queue, while the worker's ``storage.put`` consumes them. Memory stays at a few
MiB per storage whatever the backup size. A storage that fails is dropped for the rest of the set
(its error kept); the others finish; ``manifest.json`` goes last, and only to storages that
received every part. A streamed part cannot be replayed, so a part whose upload failed for a passing
reason is copied afterwards from another storage that holds it, its SHA-256 checked against the
manifest's (repair from a sibling); a storage that fails permanently, or twice in a row, is dropped.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ncbackup.errors import BackupError, IntegrityError, StorageError
from ncbackup.setformat import (
    STATUS_FAILED,
    STATUS_OK,
    Manifest,
    PartInfo,
    StreamInfo,
    part_key,
    part_name,
    safe_stream_name,
    set_id_for,
    store_object_names,
    utc_now,
    validate_metadata,
    write_manifest,
)
from ncbackup.signing import SecretKey
from ncbackup.sources.base import Source, Stream, StreamReport
from ncbackup.stages.base import Stage
from ncbackup.stages.hashing import PartDigest
from ncbackup.stages.split import Splitter
from ncbackup.storage.base import Storage, retry
from ncbackup.storage.local import LocalStorage

log = logging.getLogger(__name__)

QUEUE_CHUNKS = 8                     # per storage: with ~1 MiB chunks, a few MiB in flight
PROGRESS_EVERY_BYTES = 8 << 20       # call on_progress at most this often (plus once at the end)
FAILURES_BEFORE_DROP = 2             # consecutive failed parts before a storage gets no more parts
REPAIR_ATTEMPTS = 3                  # copies of one part from a sibling storage before giving up
REPAIR_FIRST_WAIT_SECONDS = 1.0

OnProgress = Callable[[str, int], None]


@dataclass(frozen=True)
class NamedStorage:
    """A storage and the config section it came from (for messages and the run report)."""

    section_name: str
    storage: Storage


@dataclass(frozen=True)
class PipelineSpec:
    """What one fused backup step writes: every stream of sources, through the stages, to the storages."""

    sources: Sequence[Source]
    compression: Stage
    encryption: Stage
    part_size_bytes: int | None          # None: one part per stream
    storages: Sequence[NamedStorage] = ()
    signer: SecretKey | None = None      # signs the manifest; a set needs one, a folder (barrier) does not


@dataclass
class StreamResult:
    name: str
    kind: str
    bytes_in: int = 0
    bytes_out: int = 0
    parts: list[PartInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    file_name: str = ""
    metadata: dict = field(default_factory=dict)   # the source's StreamReport.metadata, for the manifest
    run_errors: list[str] = field(default_factory=list)  # StreamReport.errors: the stream is good, the run fails

    @property
    def is_ok(self) -> bool:
        return self.error is None


@dataclass
class StorageOutcome:
    section_name: str
    storage_name: str
    error: str | None = None             # None: every part (and the manifest) stored

    @property
    def is_ok(self) -> bool:
        return self.error is None


@dataclass
class SetResult:
    set_id: str | None
    streams: list[StreamResult] = field(default_factory=list)
    storages: list[StorageOutcome] = field(default_factory=list)
    manifest: Manifest | None = None
    error: str | None = None             # the set as a whole stopped early (every storage failed)

    @property
    def is_complete(self) -> bool:
        """Every storage holds every part and the manifest (or, for a folder, every file was written)."""
        return self.error is None and all(outcome.is_ok for outcome in self.storages)

    @property
    def failed_streams(self) -> list[StreamResult]:
        return [stream for stream in self.streams if not stream.is_ok]

    @property
    def bytes_in(self) -> int:
        return sum(stream.bytes_in for stream in self.streams)

    @property
    def bytes_out(self) -> int:
        return sum(stream.bytes_out for stream in self.streams)

    repairs: list[str] = field(default_factory=list)   # parts copied from a sibling after a failed upload

    @property
    def warnings(self) -> list[str]:
        return [f"{stream.name}: {warning}" for stream in self.streams for warning in stream.warnings] + self.repairs


# --- the tee: one worker thread per storage ---------------------------------------------------------

_END = object()


class _Abort:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _StreamAborted(Exception):
    """Raised inside storage.put when the stream feeding the part failed: the put must store nothing."""


class _PartReader(io.RawIOBase):
    """What storage.put reads: the chunks of one part from the worker's queue, until the part ends."""

    def __init__(self, chunks: queue.Queue) -> None:
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
            raise _StreamAborted(str(item.error))
        self._current = memoryview(item)
        return True

    def readinto(self, target) -> int:
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
        return data.obj if (count == len(data.obj) and isinstance(data.obj, bytes)) else bytes(data)

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
            except _StreamAborted:
                pass
        return left


class _StorageWorker:
    """Runs storage.put for each part in a thread, fed chunk by chunk through a bounded queue."""

    def __init__(self, named: NamedStorage, *, has_siblings: bool = False) -> None:
        self.named = named
        self.has_siblings = has_siblings   # another storage may hold a copy to repair a missed part from
        self.error: str | None = None        # set when the storage is dropped: it gets no more parts
        self.missing: dict[str, str] = {}    # key -> why its put failed (passing errors: repaired at the end)
        self._failures_in_a_row = 0
        self._chunks: queue.Queue = queue.Queue(QUEUE_CHUNKS)
        self._keys: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"put-{named.section_name}", daemon=True)
        self._thread.start()

    @property
    def is_alive(self) -> bool:
        return self.error is None

    def begin(self, key: str) -> None:
        self._keys.put(key)

    def chunk(self, data) -> None:
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
            reader = _PartReader(self._chunks)
            if self.error is not None:
                reader.drain()
                continue
            try:
                self.named.storage.put(key, reader)
            except _StreamAborted:
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
                self.error = f"{self.named.storage.name} stored only part of {key} ({left} bytes unread); this is a bug in the storage backend"
                continue
            self._failures_in_a_row = 0

    def _failed(self, key: str, error: BaseException) -> None:
        """Record a failed part; drop the storage when retrying cannot help or it keeps failing."""
        text = str(error) if isinstance(error, BackupError) else f"{type(error).__name__}: {error}"
        if not isinstance(error, BackupError):
            log.debug("storage failure", exc_info=True)
        self._failures_in_a_row += 1
        is_permanent = getattr(error, "is_permanent", False) or not isinstance(error, BackupError)
        if is_permanent or not self.has_siblings or self._failures_in_a_row >= FAILURES_BEFORE_DROP:
            self.error = text
            log.error("storage %s (%s) failed: %s; it gets no more parts of this set",
                      self.named.section_name, self.named.storage.name, text)
            return
        self.missing[key] = text
        log.warning("storage %s (%s) failed on %s: %s; the part will be copied from another storage at the end",
                    self.named.section_name, self.named.storage.name, key, text)


class _AllStoragesFailed(StorageError):
    pass


class _Tee:
    """PartSink that sends each part to every storage still alive."""

    def __init__(self, workers: Sequence[_StorageWorker], key_for: Callable[[int], str]) -> None:
        self._workers = workers
        self._key_for = key_for
        self._active: list[_StorageWorker] = []

    def begin(self, index: int) -> None:
        self._active = [worker for worker in self._workers if worker.is_alive]
        if not self._active:
            raise _AllStoragesFailed("; ".join(f"{w.named.section_name}: {w.error}" for w in self._workers))
        key = self._key_for(index)
        for worker in self._active:
            worker.begin(key)

    def chunk(self, data) -> None:
        # A worker whose put failed keeps draining its queue, so putting to it never blocks for long.
        is_any_alive = False
        for worker in self._active:
            worker.chunk(data)
            is_any_alive = is_any_alive or worker.is_alive
        if not is_any_alive:
            raise _AllStoragesFailed("; ".join(f"{w.named.section_name}: {w.error}" for w in self._workers))

    def end(self, index: int, size_bytes: int, sha256: str) -> None:
        for worker in self._active:
            worker.end()

    def abort(self, error: BaseException) -> None:
        for worker in self._active:
            worker.abort(error)


# --- counting what the source writes --------------------------------------------------------------


class _CountingWriter(io.RawIOBase):
    """Counts bytes on their way from the source into the compressor and reports progress."""

    def __init__(self, inner: BinaryIO | None, stream_name: str, on_progress: OnProgress | None) -> None:
        super().__init__()
        self.inner = inner
        self._stream_name = stream_name
        self._on_progress = on_progress
        self.bytes_in = 0
        self._next_report = PROGRESS_EVERY_BYTES

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
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


# --- the hand-off between the compressor and the encryptor -------------------------------------------

_STOP = object()


class _StageThread(io.RawIOBase):
    """Writable that hands chunks to a thread running encryption, hashing and the tee.

    The source thread then only archives and feeds zstd (which compresses in its own C threads,
    without the GIL), while this thread encrypts and hashes: the two overlap instead of taking
    turns. Errors from the far side are raised on the next write() or on close().
    """

    def __init__(self, inner: BinaryIO, stream_name: str) -> None:
        super().__init__()
        self._inner = inner
        self._chunks: queue.Queue = queue.Queue(QUEUE_CHUNKS)
        self._error: BaseException | None = None
        self._is_discarding = False
        self._thread = threading.Thread(target=self._run, name=f"encrypt-{stream_name}", daemon=True)
        self._thread.start()

    def writable(self) -> bool:
        return True

    def _run(self) -> None:
        while True:
            item = self._chunks.get()
            if item is _STOP:
                return
            if self._error is None and not self._is_discarding:
                try:
                    self._inner.write(item)
                except BaseException as error:  # noqa: BLE001 - handed back to the source thread
                    self._error = error

    def write(self, data) -> int:
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


def _stop(handoff: _StageThread | None) -> None:
    if handoff is not None:
        handoff.stop()


# --- the pipeline -----------------------------------------------------------------------------------


def stream_file_name(stream: Stream, spec: PipelineSpec) -> str:
    """``files`` + ``.tar`` + ``.zst`` + ``.age``."""
    return f"{stream.name}{stream.suffix}{spec.compression.suffix}{spec.encryption.suffix}"


def _unique_name(name: str, used: set[str]) -> str:
    candidate, number = name, 1
    while candidate in used:
        number += 1
        candidate = f"{name}-{number}"
    used.add(candidate)
    return candidate


class _Renamed:
    """A stream under another name (a duplicate got -2, -3...)."""

    def __init__(self, stream: Stream, name: str) -> None:
        self._stream = stream
        self.name = name
        self.kind = stream.kind
        self.suffix = stream.suffix

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        self._stream.write_to(sink, report)


def _all_streams(spec: PipelineSpec) -> Iterator[tuple[Stream | None, str | None]]:
    """Every stream of every source; a source that cannot even list its streams yields (None, error)."""
    for source in spec.sources:
        iterator = iter(source.streams())
        while True:
            try:
                stream = next(iterator)
            except StopIteration:
                break
            except BackupError as error:
                yield None, f"{source.describe()}: {error}"
                break
            yield stream, None


def _write_stream(
    stream: Stream,
    spec: PipelineSpec,
    workers: Sequence[_StorageWorker],
    key_for_part: Callable[[int], str],
    on_progress: OnProgress | None,
) -> tuple[StreamResult, Splitter]:
    """Push one stream through compressor -> encryptor -> splitter -> tee; a source failure fails only this stream."""
    result = StreamResult(name=stream.name, kind=stream.kind, file_name=stream_file_name(stream, spec))
    report = StreamReport()
    splitter = Splitter(_Tee(workers, key_for_part), part_size_bytes=spec.part_size_bytes)
    counter = _CountingWriter(None, stream.name, on_progress)
    handoff: _StageThread | None = None
    try:
        encryptor = spec.encryption.writer(splitter)
        handoff = _StageThread(encryptor, stream.name)
        compressor = spec.compression.writer(handoff)
        counter.inner = compressor
        stream.write_to(counter, report)
        compressor.close()
        handoff.close()
        encryptor.close()
        splitter.close()
    except _AllStoragesFailed:
        _stop(handoff)
        splitter.abort(StorageError("every storage failed"))
        raise
    except BackupError as error:
        _stop(handoff)
        splitter.abort(error)
        result.error = str(error)
        log.error("stream %s failed: %s", stream.name, error)
    except BaseException as error:
        _stop(handoff)
        splitter.abort(error)
        raise
    finally:
        result.bytes_in = counter.bytes_in
        result.warnings.extend(report.warnings)
        result.notes.extend(report.notes)
        result.run_errors.extend(report.errors)
        result.parts = [
            PartInfo(name=key_for_part(part.index).rpartition("/")[2], size_bytes=part.size_bytes, sha256=part.sha256)
            for part in splitter.parts
        ]
        result.bytes_out = sum(part.size_bytes for part in result.parts)
        if on_progress is not None:
            on_progress(stream.name, counter.bytes_in)
    result.metadata = store_object_names(report.metadata)
    try:
        validate_metadata(result.metadata, where=f"stream {stream.name}")
    except IntegrityError as error:
        # A reader would refuse the whole set over it: fail this stream instead, loudly.
        result.metadata = {}
        if result.error is None:
            result.error = f"its description cannot be stored safely ({error}); rename the object or exclude it"
            log.error("stream %s failed: %s", stream.name, result.error)
    return result, splitter


def _run_streams(
    spec: PipelineSpec,
    workers: Sequence[_StorageWorker],
    key_for: Callable[[str, int], str],
    on_progress: OnProgress | None,
) -> tuple[list[StreamResult], str | None]:
    """Write every stream; return the results and the set-level error (every storage failed), if any."""
    used_names: set[str] = set()
    results: list[StreamResult] = []
    for stream, listing_error in _all_streams(spec):
        if stream is None:
            failed = StreamResult(name=_unique_name("source", used_names), kind="unknown", error=listing_error)
            results.append(failed)
            log.error("%s", listing_error)
            continue
        name = _unique_name(safe_stream_name(stream.name), used_names)
        if name != stream.name:
            stream = _Renamed(stream, name)
        file_name = stream_file_name(stream, spec)
        try:
            result, _ = _write_stream(stream, spec, workers, lambda i, f=file_name: key_for(f, i), on_progress)
        except _AllStoragesFailed:
            # Each storage's own error is in its outcome; repeating it here would only bury it.
            failed = StreamResult(name=name, kind=stream.kind, file_name=file_name, error="not finished: every storage had failed")
            results.append(failed)
            return results, "the set was stopped: every storage had failed"
        results.append(result)
    return results, None


def _stream_info(result: StreamResult, spec: PipelineSpec) -> StreamInfo:
    encryption = spec.encryption.describe()
    return StreamInfo(
        name=result.name,
        kind=result.kind,
        file_name=result.file_name,
        codec=spec.compression.name,
        cipher=spec.encryption.name,
        status=STATUS_OK if result.is_ok else STATUS_FAILED,
        error=result.error,
        recipient_fingerprints=tuple(encryption.get("recipient_fingerprints", ())),
        compression=spec.compression.describe(),
        encryption=encryption,
        metadata=result.metadata,
        bytes_in=result.bytes_in,
        bytes_out=result.bytes_out,
        warning_count=len(result.warnings),
        parts=tuple(result.parts),
    )


def _taken_set_ids(storages: Sequence[NamedStorage], base_id: str) -> set[str]:
    taken: set[str] = set()
    for named in storages:
        try:
            for info in named.storage.list(base_id):
                taken.add(info.key.partition("/")[0])
        except BackupError:
            continue  # a storage that cannot list will fail its puts and be reported then
    return taken


class _HashingReader(io.RawIOBase):
    """Passes a stream through while counting and hashing it, so a copied part can be checked."""

    def __init__(self, inner: BinaryIO) -> None:
        super().__init__()
        self._inner = inner
        self.digest = PartDigest()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.digest.update(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _copy_part(source: Storage, target: Storage, key: str, expected: PartInfo) -> None:
    """Copy one part between storages (a fresh read each try), checking size and SHA-256; a bad copy is removed again."""

    def copy_once() -> None:
        reader = source.get(key)
        try:
            hashing = _HashingReader(reader)
            target.put(key, hashing)
        finally:
            reader.close()
        if (hashing.digest.size_bytes, hashing.digest.hexdigest()) != (expected.size_bytes, expected.sha256):
            target.delete(key)
            raise IntegrityError(f"the copy of {key} read from {source.name} does not match the manifest")

    retry(copy_once, what=f"copying {key} to {target.name}", attempts=REPAIR_ATTEMPTS,
          first_wait_seconds=REPAIR_FIRST_WAIT_SECONDS)


def _repair(workers: Sequence[_StorageWorker], parts_by_key: dict[str, PartInfo]) -> list[str]:
    """Copy every part a live storage missed from a storage that holds it; return what was repaired.

    A storage whose missing part cannot be copied gets its error set, so it gets no manifest.
    """
    repaired: list[str] = []
    for worker in workers:
        for key, why in worker.missing.items():
            if worker.error is not None:
                break
            expected = parts_by_key.get(key)
            if expected is None:
                continue  # the part was abandoned anyway (its source failed): nothing to repair
            holders = [other for other in workers if other is not worker and other.error is None and key not in other.missing]
            if not holders:
                worker.error = f"{key} failed ({why}) and no other storage of this run holds a copy to repair it from"
                break
            source = holders[0].named.storage
            try:
                _copy_part(source, worker.named.storage, key, expected)
            except BackupError as error:
                worker.error = f"{key} failed ({why}); copying it from {source.name} failed too: {error}"
                break
            repaired.append(f"{worker.named.section_name}: {key} failed ({why}) and was copied from {source.name}")
            log.warning("%s", repaired[-1])
    return repaired


def write_backup_set(
    spec: PipelineSpec,
    *,
    hostname: str,
    set_id: str | None = None,
    on_progress: OnProgress | None = None,
) -> SetResult:
    """Write one backup set to every storage of spec in one streaming pass; the manifest and its
    signature go last, only where every part went."""
    if spec.signer is None:
        raise ValueError("a backup set needs a signing key (PipelineSpec.signer)")
    started_at = utc_now().replace(microsecond=0)
    if set_id is None:
        base_id = set_id_for(started_at)
        set_id = set_id_for(started_at, _taken_set_ids(spec.storages, base_id))
    workers = [_StorageWorker(named, has_siblings=len(spec.storages) > 1) for named in spec.storages]
    results: list[StreamResult] = []
    set_error: str | None = None
    try:
        results, set_error = _run_streams(spec, workers, lambda file_name, i: part_key(set_id, part_name(file_name, i)), on_progress)
    finally:
        for worker in workers:
            worker.finish()
    repairs = _repair(workers, {part_key(set_id, part.name): part for result in results for part in result.parts})
    errors = [worker.error for worker in workers]
    manifest = Manifest(
        host=hostname,
        set_id=set_id,
        started_at=started_at,
        finished_at=utc_now().replace(microsecond=0),
        streams=tuple(_stream_info(result, spec) for result in results),
    )
    outcomes: list[StorageOutcome] = []
    for named, error in zip(spec.storages, errors):
        if error is None and set_error is None:
            try:
                write_manifest(named.storage, manifest, spec.signer)
            except BackupError as manifest_error:
                error = f"manifest: {manifest_error}"
        elif error is None:
            error = set_error
        if error is not None:
            log.error("set %s is incomplete on %s (%s)", set_id, named.storage.name, error)
        outcomes.append(StorageOutcome(section_name=named.section_name, storage_name=named.storage.name, error=error))
    return SetResult(set_id=set_id, streams=results, storages=outcomes, manifest=manifest, error=set_error, repairs=repairs)


def write_to_folder(spec: PipelineSpec, folder: Path, *, on_progress: OnProgress | None = None) -> SetResult:
    """The barrier case: each stream as a plain file in folder (``name.000``... when splitting); no set, no manifest."""
    named = NamedStorage(section_name=str(folder), storage=LocalStorage(Path(folder)))
    is_split = spec.part_size_bytes is not None

    def key_for(file_name: str, index: int) -> str:
        return part_name(file_name, index) if is_split else file_name

    folder_spec = PipelineSpec(
        sources=spec.sources, compression=spec.compression, encryption=spec.encryption,
        part_size_bytes=spec.part_size_bytes, storages=[named],
    )
    worker = _StorageWorker(named)
    results: list[StreamResult] = []
    set_error: str | None = None
    try:
        results, set_error = _run_streams(folder_spec, [worker], key_for, on_progress)
    finally:
        worker.finish()
    error = worker.error or next((f"{key}: {why}" for key, why in worker.missing.items()), None)
    outcome = StorageOutcome(section_name=named.section_name, storage_name=named.storage.name, error=error or set_error)
    return SetResult(set_id=None, streams=results, storages=[outcome], error=set_error)
