"""The streaming pipeline: each source stream -> compressor -> encryptor -> splitter -> every storage at once.

One pass, no WORK_FOLDER file: the source pushes bytes into ``compressor.writer(encryptor.writer(
splitter))`` through a counter (``engine/handoff.py``: a thread runs encryption and hashing while
the source compresses); the splitter tees each part to every storage (``engine/tee.py``), parts a
storage missed are copied from a sibling at the end (``engine/repair.py``), and the signed manifest
goes last, only to storages that hold every part. What it all produced is a ``SetResult``
(``engine/setresult.py``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

from ncbackup.engine.handoff import STOPPED_TEXT, CountingWriter, OnProgress, StageThread, stop_handoff
from ncbackup.engine.repair import repair_missing_parts
from ncbackup.engine.setresult import SetResult, StorageOutcome, StreamResult
from ncbackup.engine.tee import AllStoragesFailed, NamedStorage, StorageWorker, Tee
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
from ncbackup.stages.split import Splitter
from ncbackup.storage.base import as_binary
from ncbackup.storage.local import LocalStorage

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class PipelineSpec:
    """What one fused backup step writes: every stream of sources, through the stages, to the storages."""

    sources: Sequence[Source]
    compression: Stage
    encryption: Stage
    part_size_bytes: int | None          # None: one part per stream
    storages: Sequence[NamedStorage] = ()
    signer: SecretKey | None = None      # signs the manifest; a set needs one, a folder (barrier) does not
    stop: threading.Event | None = None  # set when the run passed MAX_RUNTIME: stop writing, commit nothing
    snapshots: tuple[str, ...] = ()      # "method:id" of the snapshots this run took before the set: in its manifest
    chain: tuple[str, ...] = ()          # incremental sets: the sets this one needs, oldest first, its parent last


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
    workers: Sequence[StorageWorker],
    key_for_part: Callable[[int], str],
    on_progress: OnProgress | None,
) -> tuple[StreamResult, Splitter]:
    """Push one stream through compressor -> encryptor -> splitter -> tee; a source failure fails only this stream."""
    result = StreamResult(name=stream.name, kind=stream.kind, file_name=stream_file_name(stream, spec))
    report = StreamReport()
    splitter = Splitter(Tee(workers, key_for_part), part_size_bytes=spec.part_size_bytes)
    counter: CountingWriter | None = None
    handoff: StageThread | None = None
    try:
        encryptor = spec.encryption.writer(as_binary(splitter))
        handoff = StageThread(encryptor, stream.name)
        compressor = spec.compression.writer(as_binary(handoff))
        counter = CountingWriter(compressor, stream.name, on_progress, stop=spec.stop)
        stream.write_to(as_binary(counter), report)
        compressor.close()
        handoff.close()
        encryptor.close()
        splitter.close()
    except AllStoragesFailed:
        stop_handoff(handoff)
        splitter.abort(StorageError("every storage failed"))
        raise
    except BackupError as error:
        stop_handoff(handoff)
        splitter.abort(error)
        result.error = str(error)
        log.error("stream %s failed: %s", stream.name, error)
    except BaseException as error:
        stop_handoff(handoff)
        splitter.abort(error)
        raise
    finally:
        result.bytes_in = counter.bytes_in if counter is not None else 0
        result.warnings.extend(report.warnings)
        result.notes.extend(report.notes)
        result.run_errors.extend(report.errors)
        result.parts = [
            PartInfo(name=key_for_part(part.index).rpartition("/")[2], size_bytes=part.size_bytes, sha256=part.sha256)
            for part in splitter.parts
        ]
        result.bytes_out = sum(part.size_bytes for part in result.parts)
        if on_progress is not None:
            on_progress(stream.name, result.bytes_in)
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
    workers: Sequence[StorageWorker],
    key_for: Callable[[str, int], str],
    on_progress: OnProgress | None,
) -> tuple[list[StreamResult], str | None]:
    """Write every stream; return the results and the set-level error (every storage failed), if any."""
    used_names: set[str] = set()
    results: list[StreamResult] = []
    for stream, listing_error in _all_streams(spec):
        if spec.stop is not None and spec.stop.is_set():
            return results, STOPPED_TEXT
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
            result, _ = _write_stream(stream, spec, workers, partial(key_for, file_name), on_progress)
        except AllStoragesFailed:
            # The cause is the set's error (and each storage's own, in its outcome): this stream only says it stopped.
            results.append(StreamResult(name=name, kind=stream.kind, file_name=file_name, error="not finished"))
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
        recipient_fingerprints=_fingerprints(encryption.get("recipient_fingerprints")),
        compression=spec.compression.describe(),
        encryption=encryption,
        metadata=result.metadata,
        bytes_in=result.bytes_in,
        bytes_out=result.bytes_out,
        warning_count=len(result.warnings),
        parts=tuple(result.parts),
    )


def _fingerprints(value: object) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, (list, tuple)) else ()


def _taken_set_ids(storages: Sequence[NamedStorage], base_id: str) -> set[str]:
    taken: set[str] = set()
    for named in storages:
        try:
            for info in named.storage.list(base_id):
                taken.add(info.key.partition("/")[0])
        except BackupError:
            continue  # a storage that cannot list will fail its puts and be reported then
    return taken


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
    workers = [StorageWorker(named, has_siblings=len(spec.storages) > 1) for named in spec.storages]
    results: list[StreamResult] = []
    set_error: str | None = None
    try:
        results, set_error = _run_streams(spec, workers, lambda file_name, i: part_key(set_id, part_name(file_name, i)), on_progress)
    finally:
        for worker in workers:
            worker.finish()
    if spec.stop is not None and spec.stop.is_set():
        set_error = STOPPED_TEXT   # whatever was written, this set is never marked complete
    repairs = repair_missing_parts(workers, {part_key(set_id, part.name): part for result in results for part in result.parts})
    manifest = Manifest(
        host=hostname, set_id=set_id, started_at=started_at, finished_at=utc_now().replace(microsecond=0),
        streams=tuple(_stream_info(result, spec) for result in results), snapshots=spec.snapshots,
        parent=spec.chain[-1] if spec.chain else None, chain=spec.chain,
    )
    outcomes = [_commit(worker, manifest, spec.signer, set_error) for worker in workers]
    return SetResult(set_id=set_id, streams=results, storages=outcomes, manifest=manifest, error=set_error, repairs=repairs,
                     source_reports=[source.report for source in spec.sources])


def _commit(worker: StorageWorker, manifest: Manifest, signer: SecretKey, set_error: str | None) -> StorageOutcome:
    """Write the signed manifest (the commit marker) to a storage that holds every part; its outcome either way."""
    named, error = worker.named, worker.error or set_error
    if error is None:
        try:
            write_manifest(named.storage, manifest, signer)
        except BackupError as manifest_error:
            error = f"manifest: {manifest_error}"
    if error is not None:
        log.error("set %s is incomplete on %s (%s)", manifest.set_id, named.storage.name, error)
    return StorageOutcome(section_name=named.section_name, storage_name=named.storage.name, error=error)


def write_to_folder(spec: PipelineSpec, folder: Path, *, on_progress: OnProgress | None = None) -> SetResult:
    """The barrier case: each stream as a plain file in folder (``name.000``... when splitting); no set, no manifest."""
    named = NamedStorage(section_name=str(folder), storage=LocalStorage(Path(folder)))
    is_split = spec.part_size_bytes is not None

    def key_for(file_name: str, index: int) -> str:
        return part_name(file_name, index) if is_split else file_name

    folder_spec = PipelineSpec(
        sources=spec.sources, compression=spec.compression, encryption=spec.encryption,
        part_size_bytes=spec.part_size_bytes, storages=[named], stop=spec.stop,
    )
    worker = StorageWorker(named)
    results: list[StreamResult] = []
    set_error: str | None = None
    try:
        results, set_error = _run_streams(folder_spec, [worker], key_for, on_progress)
    finally:
        worker.finish()
    error = worker.error or next((f"{key}: {why}" for key, why in worker.missing.items()), None)
    outcome = StorageOutcome(section_name=named.section_name, storage_name=named.storage.name, error=error or set_error)
    return SetResult(set_id=None, streams=results, storages=[outcome], error=set_error,
                     source_reports=[source.report for source in spec.sources])
