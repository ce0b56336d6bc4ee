"""Restore of an incremental files stream: every file written once, from the set of the chain that holds it.

The newest set's index lists every path present when it was made; a member it did not store names the set
that does (``IndexEntry.set``) and its offset there. So a restore reads that one index, collects per set of
the chain the offsets of the members to take from it, and reads each set's files stream once, oldest first,
extracting only those members into the one target (``archive.extract.extract_chain``): no file is written
twice, a deleted path is never written, and a set holding nothing wanted is not read at all. Symlinks and
folder metadata are applied once at the end, so a later set's files do not disturb an earlier set's folders.
"""

from __future__ import annotations

import io
import logging
from array import array
from bisect import bisect_right
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from ncbackup.archive.extract import WantedMembers, extract_chain, member_selector
from ncbackup.archive.index import read_index
from ncbackup.errors import BackupError, IntegrityError, StorageError
from ncbackup.setformat import Manifest, StreamInfo, is_set_id
from ncbackup.storage.base import Storage, as_binary

if TYPE_CHECKING:
    from ncbackup.engine.restore import RestoreOptions

log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 1 << 20
LEVEL_INCREMENTAL = "incremental"
# A set whose wanted members lie in less than this share of its stored frames is read by frames (the others are
# never fetched, decrypted or decompressed): a --path restore, or a full most of whose files changed later.
# Above it the whole stream is read, by three threads: measured on bench/incremental.py's chain (1 GiB, the full's
# wanted members in ~70 % of its frames), reading the full by frames took 3.3-3.7 s against 2.8 s whole.
READ_BY_FRAMES_BELOW = 0.3

OpenManifest = Callable[[str], Manifest]
"""Opens a set of the chain by id (signature checked, fields validated: setformat.open_set)."""


def is_incremental(stream: StreamInfo) -> bool:
    """Whether a files stream stores only what changed since its parent (its index names the other sets)."""
    return stream.kind == "files" and stream.metadata.get("level") == LEVEL_INCREMENTAL


@dataclass
class ChainRead:
    """What a chain restore took from each set: members extracted per set id, oldest first."""

    stream_name: str
    members_by_set: dict[str, int]
    sets_read_by_frames: list[str] = field(default_factory=list)


def restore_chain_stream(
    storage: Storage,
    manifest: Manifest,
    stream: StreamInfo,
    *,
    options: RestoreOptions,
    open_manifest: OpenManifest | None,
) -> tuple[list[str], ChainRead]:
    """Extract the tree as it was at manifest's set (only --path members when given) into options.target."""
    from ncbackup.engine.restore import check_ciphers, open_plain_stream
    from ncbackup.engine.selective import index_stream_of

    where = f"stream {stream.name} of set {manifest.set_id}"
    if options.target is None:
        raise BackupError(f"restoring {where} needs a target folder; pass --target DIR")
    index_stream = index_stream_of(manifest, stream)
    if index_stream is None:
        raise IntegrityError(f"{where} is incremental but its index stream is missing or failed; restore an older set")
    order = (*manifest.chain, manifest.set_id)
    wanted: dict[str, array[int]] = {set_id: array("q") for set_id in order}
    wanted_bytes = dict.fromkeys(order, 0)
    selects = member_selector(options.paths) if options.paths else None
    with open_plain_stream(storage, manifest, index_stream.name, key_file=options.key_file) as (plain, stored):
        lines = as_binary(io.BufferedReader(cast(io.RawIOBase, plain), READ_CHUNK_BYTES))
        for entry in read_index(lines):
            holder = entry.set or manifest.set_id
            offsets = wanted.get(holder) if isinstance(holder, str) else None
            if offsets is None or entry.offset is None:
                shown = holder if isinstance(holder, str) and is_set_id(holder) else "an unknown set"
                raise IntegrityError(
                    f"the index of {where} places a member in {shown}, which is not in its chain "
                    f"({', '.join(order)}); the set is damaged: restore an older set"
                )
            if selects is None or selects(entry.path_bytes):
                offsets.append(entry.offset)
                wanted_bytes[holder] += entry.size
        while plain.read(READ_CHUNK_BYTES):
            pass
        stored.drain()
    manifests = {manifest.set_id: manifest}
    for set_id in manifest.chain:
        if wanted[set_id]:
            manifests[set_id] = _open_chain_set(storage, manifest, set_id, open_manifest)
            if options.expected_cipher is not None:
                check_ciphers(manifests[set_id], options.expected_cipher, options.allowed_ciphers)
    read = ChainRead(stream.name, {set_id: len(wanted[set_id]) for set_id in order if wanted[set_id]})

    def streams() -> Generator[tuple[BinaryIO, WantedMembers | None], None, None]:
        for set_id in order:
            offsets = wanted[set_id]
            if not offsets:
                continue
            holder = manifests[set_id]
            _check_holder(holder, stream.name, manifest.set_id)
            if list(offsets) != sorted(offsets):
                offsets = array("q", sorted(offsets))
            # Cheap first look: the wanted members' bytes against the stream's; only then its index and seek table.
            file_bytes = holder.stream(stream.name).metadata.get("file_bytes")
            is_sparse = isinstance(file_bytes, int) and wanted_bytes[set_id] < READ_BY_FRAMES_BELOW * file_bytes
            by_frames = (_read_by_frames(storage, holder, stream.name, offsets, key_file=options.key_file)
                         if is_sparse else None)
            if by_frames is not None:
                read.sets_read_by_frames.append(set_id)
                try:
                    yield by_frames, None
                finally:
                    by_frames.close()
                continue
            _check_parts_first(storage, holder, stream.name)
            with open_plain_stream(storage, holder, stream.name, key_file=options.key_file) as (plain, stored):
                yield plain, WantedMembers(offsets, where=f"stream {stream.name} of set {set_id}")
                while plain.read(READ_CHUNK_BYTES):
                    pass
                stored.drain()

    with closing(streams()) as chain_streams:
        warnings = extract_chain(chain_streams, options.target)
    log.info("stream %s: restored from %s", stream.name,
             ", ".join(f"{count} member(s) of set {set_id}" for set_id, count in read.members_by_set.items()))
    return warnings, read


def _read_by_frames(storage: Storage, holder: Manifest, stream_name: str, offsets: array[int], *,
                    key_file: Path | None) -> BinaryIO | None:
    """The wanted members of holder's stream as a tar read by frames (engine/selective.py), read ahead by a thread;
    None when the stream is not seekable, or the members need most of its frames (then it is read whole)."""
    from ncbackup.engine.readahead import ReadAhead
    from ncbackup.engine.selective import SelectedTar, index_stream_of, open_frames, read_stream_index

    stream = holder.stream(stream_name)
    index_stream = index_stream_of(holder, stream)
    if index_stream is None:
        return None
    opened = open_frames(storage, holder, stream, key_file=key_file)
    if opened is None:
        return None
    frames, _seekable, table = opened
    entries, _ = read_stream_index(storage, holder, index_stream, key_file=key_file)
    if any(entry.offset is None for entry in entries):
        return None
    # Where each member stored in this set starts: a wanted member runs to the next one (or the stream's end).
    starts = sorted(cast(int, entry.offset) for entry in entries if entry.set is None)
    where = f"stream {stream_name} of set {holder.set_id}"
    segments: list[tuple[int, int]] = []
    for offset in offsets:
        number = bisect_right(starts, offset)
        if number == 0 or starts[number - 1] != offset:
            raise IntegrityError(f"the index says a member starts at byte {offset} of {where}, but its own index has "
                                 "none there; the chain is damaged: restore an older set, or verify the chain")
        end = starts[number] if number < len(starts) else frames.plain_size
        if segments and segments[-1][1] == offset:
            segments[-1] = (segments[-1][0], end)
        else:
            segments.append((offset, end))
    needed = {number for start, end in segments for number in range(frames.frame_of(start), frames.frame_of(end - 1) + 1)}
    needed_bytes = sum(table[number].compressed_bytes for number in needed)
    if needed_bytes >= READ_BY_FRAMES_BELOW * sum(frame.compressed_bytes for frame in table):
        return None
    return as_binary(ReadAhead(as_binary(SelectedTar(frames, segments)), name=f"restore-frames-{holder.set_id}"))


def _open_chain_set(storage: Storage, manifest: Manifest, set_id: str, open_manifest: OpenManifest | None) -> Manifest:
    if open_manifest is None:
        raise BackupError(f"set {manifest.set_id} is incremental and needs set {set_id}, but no way to open it was given; "
                          "this is a bug")
    try:
        opened = open_manifest(set_id)
    except (StorageError, IntegrityError) as error:
        raise IntegrityError(
            f"set {manifest.set_id} needs set {set_id} of its chain, which cannot be read on {storage.name} ({error}); "
            "restore it from a storage that has the whole chain, or restore an older set"
        ) from None
    if opened.set_id != set_id or opened.host != manifest.host:
        raise IntegrityError(f"set {set_id} on {storage.name} is not the set of host {manifest.host} the chain needs; "
                             "do not trust it, restore another set")
    return opened


def _check_holder(holder: Manifest, stream_name: str, newest: str) -> None:
    """The set holding members must have a usable files stream of that name."""
    try:
        stream = holder.stream(stream_name)
    except IntegrityError:
        raise IntegrityError(f"set {newest} needs stream {stream_name} of set {holder.set_id}, which has none; "
                             "the chain is damaged: restore an older set") from None
    if not stream.is_ok or stream.kind != "files":
        raise IntegrityError(f"set {newest} needs stream {stream_name} of set {holder.set_id}, which failed during its "
                             "backup; the chain is broken: restore an older set")


def _check_parts_first(storage: Storage, holder: Manifest, stream_name: str) -> None:
    """A cipher that authenticates nothing: check every part's hash before anything is written (as restore_set does)."""
    from ncbackup.engine.restore import AUTHENTICATED_CIPHERS, open_stream

    if holder.stream(stream_name).cipher not in AUTHENTICATED_CIPHERS:
        with open_stream(storage, holder, stream_name) as stored:
            stored.drain()
