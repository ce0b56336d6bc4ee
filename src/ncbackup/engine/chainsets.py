"""The sets an incremental set needs: every set of its manifest's chain, opened on the same storage and checked to
belong to it (same host, each one's own chain the start of this one's).

An incremental set alone restores nothing: its index names, for every unchanged member, the older set that holds
it. So verify checks the whole chain, and a set of it that is missing, incomplete, untrusted or from another chain
is one sentence: "set X needs set Y, which is not on storage Z".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from ncbackup.archive.index import read_index
from ncbackup.errors import IntegrityError, StorageError
from ncbackup.setformat import Manifest, OpenedSet, open_set
from ncbackup.signing import SignatureError, Trust
from ncbackup.storage.base import Storage

STATUS_MISSING = "missing"        # no object of the set on the storage
STATUS_INCOMPLETE = "incomplete"  # objects, but no manifest or signature
STATUS_REFUSED = "refused"        # unsigned, untrusted, changed after signing, invalid, or of another chain


@dataclass(frozen=True)
class ChainLink:
    """One set of a chain as found on the storage: opened, or why not (status, one sentence)."""

    set_id: str
    opened: OpenedSet | None = None
    status: str | None = None
    problem: str | None = None

    @property
    def is_usable(self) -> bool:
        return self.opened is not None and self.problem is None


def chain_links(storage: Storage, manifest: Manifest, trust: Trust) -> list[ChainLink]:
    """Every set manifest's chain names, oldest (the full) first, opened through open_set; a full set has none."""
    links: list[ChainLink] = []
    for position, needed in enumerate(manifest.chain):
        links.append(_link(storage, manifest, trust, needed, expected_chain=manifest.chain[:position]))
    return links


def first_problem(links: list[ChainLink]) -> str | None:
    """The sentence of the first set of the chain that cannot be used, oldest first; None when all can."""
    return next((link.problem for link in links if link.problem is not None), None)


def _link(storage: Storage, manifest: Manifest, trust: Trust, needed: str, *, expected_chain: tuple[str, ...]) -> ChainLink:
    needs = f"set {manifest.set_id} needs set {needed}"
    try:
        opened = open_set(storage, needed, trust)
    except StorageError:
        if _has_objects(storage, needed):
            return ChainLink(needed, status=STATUS_INCOMPLETE, problem=(
                f"{needs}, which is incomplete on {storage.name} (no manifest or signature: its backup did not "
                "finish, or a prune removed it halfway); restore an older complete set, or copy the set from "
                "another storage"))
        return ChainLink(needed, status=STATUS_MISSING, problem=(
            f"{needs}, which is not on {storage.name}; copy it from another storage (--storage), or restore a "
            "set whose chain is whole"))
    except (SignatureError, IntegrityError) as error:
        return ChainLink(needed, status=STATUS_REFUSED, problem=f"{needs}, which cannot be used: {error}")
    found = opened.manifest
    if found.host != manifest.host or found.chain != expected_chain:
        return ChainLink(needed, opened=opened, status=STATUS_REFUSED, problem=(
            f"{needs}, but set {needed} on {storage.name} is not the one it was made on (host {found.host}, chain "
            f"{', '.join(found.chain) or 'none: a full'}; expected host {manifest.host}, chain "
            f"{', '.join(expected_chain) or 'none: a full'}); the sets were mixed up: do not trust this chain"))
    return ChainLink(needed, opened=opened)


def outside_references(storage: Storage, manifest: Manifest, *, key_file: Path | None) -> str | None:
    """Read the set's file lists (decrypting them): None when every carried member names a set of its chain, else
    one sentence naming the first that does not (a restore could not find its bytes)."""
    from ncbackup.engine.restore import INDEX_KINDS, open_plain_stream

    allowed = set(manifest.chain)
    for stream in manifest.streams:
        if stream.kind not in INDEX_KINDS or not stream.is_ok:
            continue
        with open_plain_stream(storage, manifest, stream.name, key_file=key_file) as (plain, _stored):
            # read_index only iterates its reader's lines.
            for entry in read_index(cast(BinaryIO, _lines(plain))):
                if entry.set is not None and entry.set not in allowed:
                    return (f"the file list {stream.name} of set {manifest.set_id} says {entry.path!r} is stored in set "
                            f"{entry.set}, which is not in its chain ({', '.join(manifest.chain) or 'none: a full'}); "
                            "the set is damaged or forged: restore another set")
    return None


def _lines(reader: BinaryIO) -> Iterator[bytes]:
    pending = b""
    while chunk := reader.read(1 << 20):
        pieces = (pending + chunk).split(b"\n")
        pending = pieces.pop()
        yield from pieces
    if pending:
        yield pending


def _has_objects(storage: Storage, set_id: str) -> bool:
    try:
        return any(True for _ in storage.list(f"{set_id}/"))
    except StorageError:
        return False
