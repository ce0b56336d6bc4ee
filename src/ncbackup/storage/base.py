"""What a storage is: four operations on keys. Retrying wraps it from outside (``storage/retry.py``).

Keys are relative, '/'-separated: ``<set-id>/<file>``. Each storage adds its own base (a folder,
a bucket prefix, a remote dir) which defaults to ``<HOSTNAME>/``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ncbackup.config.settings import SectionSettings

ModelT = TypeVar("ModelT", bound="BaseModel")


def as_binary(stream: io.RawIOBase | io.BufferedIOBase) -> BinaryIO:
    """Our own io.RawIOBase readers and writers as the BinaryIO that storages and stages take: they implement
    the binary file protocol at run time, but typeshed's BinaryIO is a class of its own, not a protocol."""
    return cast(BinaryIO, stream)


@dataclass(frozen=True)
class ObjectInfo:
    key: str          # relative to the storage's base
    size_bytes: int


class Storage(Protocol):
    name: str  # for messages: "local:/backups/web1", "s3://bucket/web1/"

    def put(self, key: str, stream: BinaryIO) -> None:
        """Read stream to EOF and store it under key; the key appears only once it is complete."""
        ...

    def get(self, key: str) -> BinaryIO:
        """Return a readable stream of the object (close it when done); StorageError if missing."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield the objects whose key starts with prefix."""
        ...

    def delete(self, key: str) -> None:
        """Remove key; a missing key is not an error."""
        ...


def storage_options(
    model: type[ModelT], section: SectionSettings, *, legacy_keys: dict[str, str] | None = None,
) -> ModelT:
    """Parse a STORAGE section's ARGS_DICT into the backend's pydantic options model (ConfigError if invalid).

    legacy_keys maps a top-level PARAMETERS key of the original (e.g. BUCKET_NAME) to an ARGS_DICT key,
    used only when ARGS_DICT does not set that key.
    """
    from ncbackup.config.types import parse_options

    parameters = dict(section.parameters or {})
    values = dict(parameters.get("ARGS_DICT") or {})
    for old, new in (legacy_keys or {}).items():
        if old in parameters and new not in values:
            values[new] = parameters[old]
    return parse_options(model, section, parameters=values, within="ARGS_DICT")


# Optional capabilities, used by retention (prune). A backend that offers more implements the method
# named here; every caller goes through these functions, never through getattr of its own.

def delete_keys(storage: Storage, keys: list[str]) -> dict[str, str]:
    """Delete keys in the given order; return {key: why} for those that could not be deleted (never raises
    StorageError). Uses the backend's ``delete_many(keys) -> dict[str, str]`` when it has one (S3: batches)."""
    from ncbackup.errors import StorageError

    batch = getattr(storage, "delete_many", None)
    if batch is not None:
        return cast(dict[str, str], batch(keys))
    failures: dict[str, str] = {}
    for key in keys:
        try:
            storage.delete(key)
        except StorageError as error:
            failures[key] = str(error)
    return failures


def retained_until(storage: Storage, key: str) -> datetime | None:
    """When the object's write lock (S3 Object Lock) expires; None when it has none or the backend has no locks."""
    query = getattr(storage, "retained_until", None)
    return cast("datetime | None", query(key)) if query is not None else None


def prune_support(storage: Storage) -> str | None:
    """None when the storage can list and delete (so prune works on it); else why not, one sentence starting
    "prune cannot work here: " (the caller names the storage)."""
    query = getattr(storage, "prune_support", None)
    return cast("str | None", query()) if query is not None else None


def bucket_location(storage: Storage) -> tuple[str, str] | None:
    """(bucket, key prefix of the storage's base) for an object-store backend, to match CLEANUP's BUCKET/PREFIX;
    None for storages that have no bucket."""
    query = getattr(storage, "bucket_location", None)
    return cast("tuple[str, str] | None", query()) if query is not None else None


def host_storages(storage: Storage) -> list[tuple[str, Storage]] | None:
    """(host folder name, storage at that folder) for every host folder beside this storage's base (its own
    included), sorted by name, for a fleet view; None when the backend cannot list other hosts. StorageError
    when the listing fails. Uses the backend's ``host_storages()``."""
    query = getattr(storage, "host_storages", None)
    return cast("list[tuple[str, Storage]] | None", query()) if query is not None else None


def read_workers(storage: Storage) -> int:
    """How many objects may be read at once (list_sets reads manifests in parallel); 1 unless the backend's client is
    known to be thread-safe and says more through ``read_workers() -> int``."""
    query = getattr(storage, "read_workers", None)
    return max(1, int(query())) if query is not None else 1


def parallel_part_reads(storage: Storage) -> int:
    """How many parts of a stream a restore downloads at once (the one being read and those after it); 1 unless the
    backend says more through ``parallel_part_reads() -> int`` (remote storages: parallel downloads hide each request's
    latency and one connection's limit; a local disk gains nothing from it, and one SFTP session is not safe for
    reads from several threads: its files are pipelined by paramiko's prefetch instead)."""
    query = getattr(storage, "parallel_part_reads", None)
    return max(1, int(query())) if query is not None else 1


def get_range(storage: Storage, key: str, start: int, length: int) -> bytes:
    """Bytes [start, start + length) of the object (fewer only where it ends); StorageError if missing.

    Uses the backend's ``get_range(key, start, length) -> bytes`` (local: a seek, S3: a Range GET,
    SFTP: a seek on the remote file). Other backends fall back to reading the object from its start and
    dropping the bytes before start: correct, but as slow as reading all of them.
    """
    ranged = getattr(storage, "get_range", None)
    if ranged is not None:
        return cast(bytes, ranged(key, start, length))
    if length <= 0:
        return b""
    with storage.get(key) as reader:
        remaining_skip = start
        while remaining_skip:
            skipped = len(reader.read(min(remaining_skip, 1 << 20)))
            if not skipped:
                return b""
            remaining_skip -= skipped
        pieces: list[bytes] = []
        remaining = length
        while remaining:
            piece = reader.read(min(remaining, 1 << 20))
            if not piece:
                break
            pieces.append(piece)
            remaining -= len(piece)
        return b"".join(pieces)
