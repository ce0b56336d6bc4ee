"""Reading backup sets back: streams checked part by part against the manifest, verify, and restore.

Every part is checked for size and SHA-256 while it streams; the first mismatch raises
IntegrityError naming the part (truncated, bit-flipped, missing, or a part of another set copied
in: its size or hash cannot match). Past that check come the decryption reader and the
decompression reader of ``stages.registry``. With age, every 64 KiB chunk is authenticated before
it is handed on, so no byte of a damaged part ever reaches a restorer. The legacy and "none"
ciphers authenticate nothing, so restore_set reads such a stream's parts once through the hash
check before restoring it (one extra read of the stored bytes, for those sets only).

Each stage is read ahead by its own thread (engine.readahead): part I/O, SHA-256 and decryption in
one, decompression in another, the restorer in the caller's, so they overlap on several cores. An
error in a thread is raised by the caller's next read, unchanged (it still names the part).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import secrets
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import zstandard

from ncbackup import platform
from ncbackup.engine.prefetch import PartPrefetcher
from ncbackup.engine.readahead import ReadAhead
from ncbackup.errors import BackupError, DecryptError, IntegrityError, StorageError
from ncbackup.setformat import MANIFEST_NAME, SIGNATURE_NAME, Manifest, StreamInfo, is_safe_name, part_key
from ncbackup.storage.base import Storage, as_binary, parallel_part_reads

if TYPE_CHECKING:
    from ncbackup.engine.chain import ChainRead, OpenManifest
    from ncbackup.engine.selective import SelectiveRead
    from ncbackup.sources.base import Restorer, RestoreRequest

log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 1 << 20
CIPHER_NONE = "none"
CODEC_NONE = "none"
# The file index rides along as its own stream; extracting files must not drop it into the target.
INDEX_KINDS = frozenset({"files-index"})
# Ciphers that authenticate the data as it streams; other streams are hash-checked before restoring.
AUTHENTICATED_CIPHERS = frozenset({"age"})
# Kinds whose restorer unpacks into --target (with or without --to-database).
EXTRACTED_KINDS = frozenset({"files", "mysql-binlogs"})
# Kinds --to-dc rebuilds a domain controller from.
DC_KINDS = frozenset({"ad"})
TEMP_PREFIX = ".ncbackup-partial-"
# What codecs raise on damaged input; a plain OSError is not here: it may be the target disk's.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, EOFError, zlib.error, gzip.BadGzipFile, zstandard.ZstdError,
)


# --- parts: concatenated and checked ------------------------------------------------------------


@dataclass(frozen=True)
class PartSource:
    """One part to read: how to open it and, when known, what it must contain."""

    label: str                          # for messages, e.g. "part files.tar.zst.age.001 of set X on local:/b"
    open: Callable[[], BinaryIO]
    size_bytes: int | None = None
    sha256: str | None = None


class PartsReader(io.RawIOBase):
    """The concatenation of parts, each checked against its size and SHA-256 as it streams.

    The check of a part happens when its last byte is read, before any byte of the next part (or
    the end of the stream) is handed out; a part that grows past its size fails at once.
    """

    def __init__(self, parts: Sequence[PartSource], *, parallel_parts: int = 1) -> None:
        super().__init__()
        self._parts = list(parts)
        # Remote storages: the next parts are downloaded while this one is read (engine.prefetch); checked alike.
        self._prefetcher: PartPrefetcher | None = None
        if parallel_parts > 1 and len(self._parts) > 1:
            self._prefetcher = PartPrefetcher([part.open for part in self._parts], workers=parallel_parts)
        self._index = -1
        self._current: BinaryIO | None = None
        self._hasher: Any = None       # a hashlib sha256 while reading a part whose hash is known
        self._seen_bytes = 0
        self._has_failed = False
        self.bytes_read = 0
        self.parts_checked = 0

    def readable(self) -> bool:
        return True

    def _open_next(self) -> bool:
        self._index += 1
        if self._index >= len(self._parts):
            return False
        part = self._parts[self._index]
        try:
            self._current = self._prefetcher.open(self._index) if self._prefetcher is not None else part.open()
        except (StorageError, OSError) as error:
            raise IntegrityError(
                f"{part.label} is missing or unreadable ({_one_line(error)}); "
                "restore from another storage or another set"
            ) from None
        self._hasher = hashlib.sha256() if part.sha256 else None
        self._seen_bytes = 0
        return True

    def _finish_part(self) -> None:
        part = self._parts[self._index]
        current, self._current = self._current, None
        if current is not None:
            current.close()
        if part.size_bytes is not None and self._seen_bytes < part.size_bytes:
            raise IntegrityError(
                f"{part.label} is truncated ({self._seen_bytes} of {part.size_bytes} bytes); "
                "restore from another storage or another set"
            )
        if self._hasher is not None and self._hasher.hexdigest() != part.sha256:
            raise IntegrityError(
                f"{part.label} does not match its SHA-256 in the manifest: it is damaged or comes from "
                "another set; restore from another storage or another set"
            )
        self.parts_checked += 1

    def read(self, size: int = -1) -> bytes:
        try:
            return self._read(size)
        except IntegrityError:
            self._has_failed = True
            raise

    def _read(self, size: int) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if size == 0:
            return b""
        while True:
            if self._current is None and not self._open_next():
                return b""
            current = cast(BinaryIO, self._current)   # _open_next() has just opened it
            try:
                chunk = current.read(min(size, READ_CHUNK_BYTES))
            except (StorageError, OSError) as error:
                part = self._parts[self._index]
                raise IntegrityError(
                    f"{part.label} could not be read to the end ({_one_line(error)}); "
                    "retry, or restore from another storage"
                ) from None
            if chunk:
                self._account(chunk)
                return chunk
            self._finish_part()

    def _account(self, chunk: bytes) -> None:
        part = self._parts[self._index]
        self._seen_bytes += len(chunk)
        self.bytes_read += len(chunk)
        if part.size_bytes is not None and self._seen_bytes > part.size_bytes:
            raise IntegrityError(
                f"{part.label} is larger than the manifest says ({part.size_bytes} bytes): it is damaged "
                "or comes from another set; restore from another storage or another set"
            )
        if self._hasher is not None:
            self._hasher.update(chunk)

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        count = len(chunk)
        buffer[:count] = chunk
        return count

    def readall(self) -> bytes:
        pieces: list[bytes] = []
        while True:
            piece = self.read(READ_CHUNK_BYTES)
            if not piece:
                return b"".join(pieces)
            pieces.append(piece)

    def diagnose(self) -> IntegrityError | None:
        """After a downstream failure: finish checking the part being read; its IntegrityError, if any.

        A decryptor authenticates ahead of the part check (age fails on the first foreign chunk), so
        the error it raises cannot name the part; the part's own size and hash can.
        """
        if self._has_failed or self._current is None:
            return None
        try:
            while True:
                chunk = self._current.read(READ_CHUNK_BYTES)
                if not chunk:
                    break
                self._account(chunk)
            self._finish_part()
        except IntegrityError as error:
            return error
        except (StorageError, OSError):
            return None
        return None

    def drain(self) -> int:
        """Read (and so check) everything left; return how many bytes that was."""
        total = 0
        while True:
            piece = self.read(READ_CHUNK_BYTES)
            if not piece:
                return total
            total += len(piece)

    def close(self) -> None:
        try:
            if self._current is not None:
                self._current.close()
        finally:
            self._current = None
            if self._prefetcher is not None:
                self._prefetcher.close()
        super().close()


def _one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0].rstrip(".;")


class _DecodeGuard(io.RawIOBase):
    """Passes reads through, turning a codec's own exception on damaged data into IntegrityError."""

    def __init__(self, inner: BinaryIO, what: str) -> None:
        super().__init__()
        self._inner = inner
        self._what = what

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return self._inner.read(size)
        except BackupError:
            raise
        except DECODE_ERRORS as error:
            raise IntegrityError(
                f"{self._what} cannot be decoded ({_one_line(error)}): it is damaged; "
                "restore from another storage or another set"
            ) from None

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def readall(self) -> bytes:
        pieces: list[bytes] = []
        while True:
            piece = self.read(READ_CHUNK_BYTES)
            if not piece:
                return b"".join(pieces)
            pieces.append(piece)


# --- streams of a set ---------------------------------------------------------------------------


def _stream_parts(storage: Storage, manifest: Manifest, stream: StreamInfo) -> list[PartSource]:
    def opener(key: str) -> Callable[[], BinaryIO]:
        return lambda: storage.get(key)

    return [
        PartSource(
            label=f"part {part.name} of set {manifest.set_id} on {storage.name}",
            open=opener(part_key(manifest.set_id, part.name)),
            size_bytes=part.size_bytes,
            sha256=part.sha256,
        )
        for part in stream.parts
    ]


def _usable_stream(manifest: Manifest, stream_name: str) -> StreamInfo:
    stream = manifest.stream(stream_name)
    if not stream.is_ok:
        raise BackupError(
            f"stream {stream.name} of set {manifest.set_id} failed during the backup ({stream.error or 'no reason recorded'}); "
            "it holds no data to restore: use another set"
        )
    return stream


def open_stream(storage: Storage, manifest: Manifest, stream_name: str) -> PartsReader:
    """Return the stream's stored bytes (its parts concatenated), each part checked against the manifest."""
    stream = _usable_stream(manifest, stream_name)
    return PartsReader(_stream_parts(storage, manifest, stream), parallel_parts=parallel_part_reads(storage))


@contextmanager
def open_plain_stream(
    storage: Storage, manifest: Manifest, stream_name: str, *, key_file: Path | None = None
) -> Iterator[tuple[BinaryIO, PartsReader]]:
    """Yield (plain reader, stored reader) for a stream: parts checked, decrypted, decompressed.

    The stored reader is yielded too so a caller can drain it after the plain end and be sure every
    part was read and checked.
    """
    from ncbackup.stages.age import AgeStage
    from ncbackup.stages.registry import compression_for, decryption_for

    stream = _usable_stream(manifest, stream_name)
    stored = PartsReader(_stream_parts(storage, manifest, stream), parallel_parts=parallel_part_reads(storage))
    read_aheads: list[ReadAhead] = []

    def stop_threads() -> None:
        # Downstream first: each stage stops while the one feeding it still runs.
        for read_ahead in reversed(read_aheads):
            read_ahead.close()

    with ExitStack() as stack:
        stack.callback(stored.close)
        reader: BinaryIO = stored  # type: ignore[assignment]
        if stream.cipher != CIPHER_NONE:
            if key_file is not None and not Path(key_file).exists():
                raise DecryptError(
                    f"key file {key_file} does not exist; pass the identity or key file these backups were made "
                    "with using --key-file (a newly made key cannot read them)"
                )
            stage = decryption_for(stream.cipher, key_file)
            # Unbuffered age: the read-ahead takes its decrypted blocks as they are, without a copy.
            reader = stage.reader(reader, buffered=False) if isinstance(stage, AgeStage) else stage.reader(reader)
            stack.callback(reader.close)
        # Three threads: parts I/O, SHA-256 and decryption here; decompression next; the consumer last.
        # zstd takes any buffer: hand it views of the decrypted chunks; others get bytes.
        read_aheads.append(ReadAhead(reader, name=f"restore-read-{stream.name}", returns_views=stream.codec == "zstd"))
        reader = read_aheads[-1]  # type: ignore[assignment]
        stack.callback(stop_threads)
        if stream.codec != CODEC_NONE:
            reader = compression_for(stream.codec).reader(reader)
            stack.callback(reader.close)
            read_aheads.append(ReadAhead(reader, name=f"restore-decompress-{stream.name}"))
            reader = read_aheads[-1]  # type: ignore[assignment]
            # Again, so the threads stop before the readers they use are closed (closing twice is harmless).
            stack.callback(stop_threads)
        try:
            yield as_binary(_DecodeGuard(reader, f"stream {stream.name} of set {manifest.set_id}")), stored
        except BackupError:
            # The reading thread must be stopped before the part it was reading is looked at here.
            stop_threads()
            # Prefer naming the damaged part over the decryptor's "authentication failed".
            better = stored.diagnose()
            if better is not None:
                raise better from None
            raise


def plain_suffix(stream: StreamInfo) -> str:
    """The stream's plain-format suffix (``.tar``, ``.sql``), from its stored file name."""
    from ncbackup.stages.registry import compression_for

    suffix = stream.file_name[len(stream.name):] if stream.file_name.startswith(stream.name) else ""
    if stream.cipher != CIPHER_NONE and "." in suffix:
        suffix = suffix[: suffix.rfind(".")]
    if stream.codec != CODEC_NONE:
        codec_suffix = compression_for(stream.codec).suffix
        if codec_suffix and suffix.endswith(codec_suffix):
            suffix = suffix[: -len(codec_suffix)]
    return suffix


# --- verify ---------------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    """What verify_set checked; any failure was raised instead, naming the first bad part."""

    set_id: str
    streams_checked: int = 0
    parts_checked: int = 0
    bytes_checked: int = 0
    decrypted_streams: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def decrypt_key_status(key_file: Path | None) -> str | None:
    """None when key_file can decrypt; otherwise why not (for verify's note)."""
    from ncbackup.errors import ConfigError
    from ncbackup.stages import keys

    if key_file is None:
        return "no key file given"
    if not Path(key_file).exists():
        return f"key file {key_file} does not exist (pass the identity with --key-file)"
    try:
        material = keys.read_key_file(key_file)
    except ConfigError as error:
        return str(error)
    if not material.can_decrypt:
        return f"key file {key_file} holds only recipients (a write-only server)"
    return None


def check_ciphers(manifest: Manifest, expected: str, allowed: Sequence[str] = ()) -> None:
    """Refuse a set whose streams use another cipher than the reading side's key implies (a downgrade: a manifest
    saying "none" would make restore take attacker-written plaintext), unless that cipher is explicitly allowed."""
    for stream in manifest.streams:
        if stream.is_ok and stream.cipher != expected and stream.cipher not in allowed:
            raise IntegrityError(
                f"stream {stream.name} of set {manifest.set_id} says cipher {stream.cipher!r} but the key in use expects "
                f"{expected!r}: refused as a possible downgrade; if you know why, add --allow-cipher {stream.cipher}"
            )


def verify_set(
    storage: Storage,
    manifest: Manifest,
    *,
    key_file: Path | None = None,
    must_decrypt: bool = False,
    on_stream: Callable[[str], None] | None = None,
    expected_cipher: str | None = None,
    allowed_ciphers: Sequence[str] = (),
) -> VerifyReport:
    """Check every part of a set (size, SHA-256) and, given a usable key, decrypt and decompress each stream to the end.

    manifest comes from setformat.open_set (authenticated, validated). Raises on the first bad part
    (IntegrityError), a cipher other than expected_cipher (unless allowed), or an undecryptable
    stream (DecryptError); streams that failed during the backup are noted, not raised.
    must_decrypt turns an unusable key into an error instead of a hash-only check.
    """
    set_id = manifest.set_id
    if expected_cipher is not None:
        check_ciphers(manifest, expected_cipher, allowed_ciphers)
    report = VerifyReport(set_id=set_id)
    key_problem = decrypt_key_status(key_file)
    if key_problem and must_decrypt:
        raise DecryptError(f"cannot decrypt set {set_id}: {key_problem}; pass an identity or key file with --key-file")
    _note_unlisted_objects(storage, manifest, report)
    for stream in manifest.streams:
        if not stream.is_ok:
            report.warnings.append(
                f"stream {stream.name} failed during the backup ({stream.error or 'no reason recorded'}); it has no data"
            )
            continue
        if on_stream:
            on_stream(stream.name)
        can_decrypt = stream.cipher == CIPHER_NONE or key_problem is None
        if can_decrypt:
            with open_plain_stream(storage, manifest, stream.name, key_file=key_file) as (plain, stored):
                while plain.read(READ_CHUNK_BYTES):
                    pass
                trailing = stored.drain()
                if trailing:
                    raise IntegrityError(
                        f"stream {stream.name} of set {set_id} has {trailing} bytes after its end; "
                        "it is damaged: restore from another storage or another set"
                    )
                report.decrypted_streams.append(stream.name)
                report.parts_checked += stored.parts_checked
                report.bytes_checked += stored.bytes_read
        else:
            with open_stream(storage, manifest, stream.name) as stored:
                stored.drain()
                report.parts_checked += stored.parts_checked
                report.bytes_checked += stored.bytes_read
        report.streams_checked += 1
    if key_problem and any(s.cipher != CIPHER_NONE and s.is_ok for s in manifest.streams):
        report.notes.append(f"sizes and SHA-256 checked, streams not decrypted: {key_problem}")
    return report


def _note_unlisted_objects(storage: Storage, manifest: Manifest, report: VerifyReport) -> None:
    listed = {part.name for stream in manifest.streams for part in stream.parts} | {MANIFEST_NAME, SIGNATURE_NAME}
    try:
        present = [info.key.partition("/")[2] for info in storage.list(f"{manifest.set_id}/")]
    except StorageError as error:
        report.warnings.append(f"could not list set {manifest.set_id} on {storage.name}: {_one_line(error)}")
        return
    # Names come from the storage: shown escaped unless plain, so one cannot forge a line of output.
    extra = sorted(name if is_safe_name(name) else repr(name) for name in present if name and name not in listed)
    if extra:
        report.warnings.append(
            f"set {manifest.set_id} on {storage.name} holds files its manifest does not list: "
            + ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else "")
        )


# --- restore --------------------------------------------------------------------------------------




@dataclass(frozen=True)
class RestoreOptions:
    """What the user asked of ``ncbackup restore`` (the set is already chosen)."""

    target: Path | None
    stream_names: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    force: bool = False
    key_file: Path | None = None
    to_database: bool = False
    database: str | None = None
    options_by_kind: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    expected_cipher: str | None = None           # what the key in use implies; None: not checked (tests, decrypt)
    allowed_ciphers: tuple[str, ...] = ()        # --allow-cipher
    dc_folder: Path | None = None                # --to-dc: AD streams rebuild a domain controller there
    new_server_name: str | None = None           # --new-server-name


@dataclass
class RestoreReport:
    set_id: str
    restored: list[str] = field(default_factory=list)       # "stream -> where"
    warnings: list[str] = field(default_factory=list)
    selective: list[SelectiveRead] = field(default_factory=list)   # streams restored by ranged reads (--path)
    chains: list[ChainRead] = field(default_factory=list)          # incremental streams: members taken from each set


def select_streams(manifest: Manifest, stream_names: Sequence[str]) -> tuple[list[StreamInfo], list[str]]:
    """The streams to restore and warnings about skipped ones; unknown or failed named streams raise."""
    if stream_names:
        chosen = [manifest.stream(name) for name in dict.fromkeys(stream_names)]
        for stream in chosen:
            _usable_stream(manifest, stream.name)
        return chosen, []
    chosen, warnings = [], []
    for stream in manifest.streams:
        if stream.kind in INDEX_KINDS:
            continue
        if not stream.is_ok:
            warnings.append(
                f"stream {stream.name} failed during the backup ({stream.error or 'no reason recorded'}); skipped"
            )
            continue
        chosen.append(stream)
    return chosen, warnings


def _uses_restorer(stream: StreamInfo, options: RestoreOptions) -> bool:
    from ncbackup.sources.kinds import restorer_for

    if restorer_for(stream.kind) is None:
        return False
    # Archives are always unpacked into the target; a dump goes to a server only when asked, else it is a plain file.
    return stream.kind in EXTRACTED_KINDS or options.to_database or (options.dc_folder is not None and stream.kind in DC_KINDS)


def _lands_in_target(stream: StreamInfo, options: RestoreOptions) -> bool:
    return not _uses_restorer(stream, options) or stream.kind in EXTRACTED_KINDS


def prepare_target(target: Path, *, force: bool) -> None:
    """Create target if needed; refuse a non-empty one unless force."""
    if target.exists() and not target.is_dir():
        raise BackupError(f"restore target {target} exists and is not a folder; choose a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise BackupError(
            f"restore target {target} is not empty; choose an empty folder, or add --force to restore "
            "into it (files with the same names are replaced)"
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BackupError(f"cannot create restore target {target} ({error.strerror}); choose a writable folder") from None


def restore_set(
    storage: Storage,
    manifest: Manifest,
    *,
    options: RestoreOptions,
    on_stream: Callable[[str], None] | None = None,
    open_manifest: OpenManifest | None = None,
) -> RestoreReport:
    """Restore the chosen streams of a complete set (manifest from setformat.open_set); stops at the first error (raised).

    With --path, a seekable files stream is read by ranges, only where the selected members lie (engine/selective.py).
    An incremental files stream is rebuilt from its chain (engine/chain.py), whose sets open_manifest opens.
    """
    from ncbackup.engine.chain import is_incremental, restore_chain_stream

    if options.expected_cipher is not None:
        check_ciphers(manifest, options.expected_cipher, options.allowed_ciphers)
    streams, warnings = select_streams(manifest, options.stream_names)
    report = RestoreReport(set_id=manifest.set_id, warnings=list(warnings))
    if not streams:
        raise BackupError(f"set {manifest.set_id} has no stream to restore; check `ncbackup list` and --stream")
    # Every stream that does not go to a database lands in the target folder.
    needs_target = any(_lands_in_target(s, options) for s in streams)
    if needs_target:
        if options.target is None:
            raise BackupError("restore needs --target DIR (an empty folder) for these streams; add it")
        prepare_target(options.target, force=options.force)
    for stream in streams:
        if on_stream:
            on_stream(stream.name)
        if is_incremental(stream):
            chain_warnings, chain_read = restore_chain_stream(storage, manifest, stream, options=options,
                                                              open_manifest=open_manifest)
            report.warnings.extend(chain_warnings)
            report.chains.append(chain_read)
            report.restored.append(f"{stream.name} -> {options.target}")
            continue
        if options.paths and _uses_restorer(stream, options) and _restore_selected(storage, manifest, stream, options, report):
            continue
        if stream.cipher not in AUTHENTICATED_CIPHERS:
            # Nothing downstream would notice a damaged byte before it is written: check every part first.
            with open_stream(storage, manifest, stream.name) as stored:
                stored.drain()
        with open_plain_stream(storage, manifest, stream.name, key_file=options.key_file) as (plain, stored):
            if _uses_restorer(stream, options):
                stream_warnings = _restorer(stream.kind)(plain, _restore_request(stream, options))
                # A restorer may stop reading early (a --path match, tar's end blocks): check the rest.
                while plain.read(READ_CHUNK_BYTES):
                    pass
                stored.drain()
                report.warnings.extend(stream_warnings or [])
                where = str(options.target) if _lands_in_target(stream, options) else (
                    f"a new DC in {options.dc_folder}" if stream.kind in DC_KINDS and options.dc_folder else "its database server")
            else:
                if options.target is None:
                    raise BackupError("restore needs --target DIR for these streams; add it")
                destination = options.target / f"{stream.name}{plain_suffix(stream)}"
                if destination.exists() and not options.force:
                    raise BackupError(f"{destination} already exists; remove it or add --force")
                write_atomically(plain, destination)
                stored.drain()
                where = str(destination)
                if options.paths:
                    report.warnings.append(f"--path applies to file streams only; stream {stream.name} was restored whole")
        report.restored.append(f"{stream.name} -> {where}")
    return report


def _restorer(kind: str) -> Restorer:
    """The restorer of a stream kind, importing only that source's module (sources/kinds.py)."""
    from ncbackup.sources.kinds import restorer_for

    restorer = restorer_for(kind)
    if restorer is None:  # _uses_restorer said there is one
        raise BackupError(f"no restorer for stream kind {kind!r}; this is a bug")
    return restorer


def _restore_request(stream: StreamInfo, options: RestoreOptions) -> RestoreRequest:
    from ncbackup.sources.base import RestoreRequest

    return RestoreRequest(
        stream_name=stream.name,
        kind=stream.kind,
        metadata=stream.metadata,
        target=options.target,
        to_database=options.to_database,
        database=options.database,
        paths=tuple(options.paths),
        force=options.force,
        options=options.options_by_kind.get(stream.kind, {}),
        dc_folder=options.dc_folder,
        new_server_name=options.new_server_name,
    )


def _restore_selected(storage: Storage, manifest: Manifest, stream: StreamInfo, options: RestoreOptions, report: RestoreReport) -> bool:
    """Restore the --path members of a seekable files stream by ranged reads (engine/selective.py); False when the
    stream is not seekable, and nothing was done."""
    from ncbackup.engine.selective import open_selected

    selected = open_selected(storage, manifest, stream, patterns=options.paths, key_file=options.key_file)
    if selected is None:
        return False
    reader, outcome = selected
    report.warnings.extend(_restorer(stream.kind)(as_binary(reader), _restore_request(stream, options)) or [])
    read = outcome()
    report.selective.append(read)
    log.info(
        "stream %s: %d member(s) restored from %d of %d frames; read %d of the set's %d bytes (%.2f %%)",
        stream.name, read.members_selected, read.frames_read, read.frames_total, read.bytes_read, read.set_bytes,
        100 * read.bytes_read / max(1, read.set_bytes),
    )
    report.restored.append(f"{stream.name} -> {options.target}")
    return True


def write_atomically(reader: BinaryIO, destination: Path, *, mode: int = 0o600) -> int:
    """Copy reader to destination under a temporary name, fsync, rename; nothing is left on failure."""
    destination = Path(destination)
    temp = destination.with_name(f"{TEMP_PREFIX}{secrets.token_hex(4)}-{destination.name}")
    written = 0
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    except OSError as error:
        raise BackupError(f"cannot write {destination} ({error.strerror}); choose a writable place") from None
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = reader.read(READ_CHUNK_BYTES)
                if not chunk:
                    break
                out.write(chunk)
                written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, destination)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise BackupError(f"cannot write {destination} ({error.strerror}); check free space and permissions") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    platform.fsync_directory(destination.parent)
    return written
