"""Repair from a sibling: a part whose upload to one storage failed for a passing reason is copied at the end
from another storage of the run that holds it, its size and SHA-256 checked against the manifest's.

A streamed part cannot be replayed (nothing keeps it), so this is the only way a storage that
missed a part can still get the whole set; a storage whose part cannot be copied gets no manifest.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from typing import Any, BinaryIO

from ncbackup.engine.tee import StorageWorker
from ncbackup.errors import BackupError, IntegrityError
from ncbackup.setformat import PartInfo
from ncbackup.stages.hashing import PartDigest
from ncbackup.storage.base import Storage, as_binary
from ncbackup.storage.retry import retry

log = logging.getLogger(__name__)

REPAIR_ATTEMPTS = 3                  # copies of one part from a sibling storage before giving up
REPAIR_FIRST_WAIT_SECONDS = 1.0


class HashingReader(io.RawIOBase):
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

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def copy_part(source: Storage, target: Storage, key: str, expected: PartInfo) -> None:
    """Copy one part between storages (a fresh read each try), checking size and SHA-256; a bad copy is removed again."""

    def copy_once() -> None:
        reader = source.get(key)
        try:
            hashing = HashingReader(reader)
            target.put(key, as_binary(hashing))
        finally:
            reader.close()
        if (hashing.digest.size_bytes, hashing.digest.hexdigest()) != (expected.size_bytes, expected.sha256):
            target.delete(key)
            raise IntegrityError(f"the copy of {key} read from {source.name} does not match the manifest")

    retry(copy_once, what=f"copying {key} to {target.name}", attempts=REPAIR_ATTEMPTS,
          first_wait_seconds=REPAIR_FIRST_WAIT_SECONDS)


def repair_missing_parts(workers: Sequence[StorageWorker], parts_by_key: dict[str, PartInfo]) -> list[str]:
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
                copy_part(source, worker.named.storage, key, expected)
            except BackupError as error:
                worker.error = f"{key} failed ({why}); copying it from {source.name} failed too: {error}"
                break
            repaired.append(f"{worker.named.section_name}: {key} failed ({why}) and was copied from {source.name}")
            log.warning("%s", repaired[-1])
    return repaired
