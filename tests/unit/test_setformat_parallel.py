"""list_sets reads manifests in parallel where the storage allows it (read_workers), with the same result."""

from __future__ import annotations

import dataclasses
import io
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from ncbackup.setformat import (
    STATE_COMPLETE,
    STATE_DAMAGED,
    STATE_INCOMPLETE,
    STATE_UNTRUSTED,
    list_sets,
    manifest_key,
    set_time,
    signature_key,
    write_manifest,
)
from ncbackup.signing import generate_key
from ncbackup.storage.base import ObjectInfo, Storage, read_workers
from ncbackup.storage.local import LocalStorage
from tests.support import SIGNER, TRUST
from tests.unit.test_setformat import _manifest


class OneAtATime:
    """A storage seen without its read_workers: list_sets reads it one set after the other."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.name = inner.name

    def put(self, key: str, stream: BinaryIO) -> None:
        self.inner.put(key, stream)

    def get(self, key: str) -> BinaryIO:
        return self.inner.get(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


class Parallel(OneAtATime):
    """A storage that allows `workers` reads at once and records how many ran at the same time."""

    def __init__(self, inner: Storage, workers: int) -> None:
        super().__init__(inner)
        self.workers = workers
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def read_workers(self) -> int:
        return self.workers

    def get(self, key: str) -> BinaryIO:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(0.01)   # long enough for the other workers to be inside get() too
            return self.inner.get(key)
        finally:
            with self._lock:
                self.running -= 1


def fill_with_sets_of_every_state(storage: Storage, *, count: int) -> None:
    """count rounds of: a complete set, one without signature, one without manifest, a damaged and an untrusted one."""
    stranger = generate_key()
    start = set_time("20200101T030000Z")
    for index in range(count):
        ids = [(start + timedelta(days=index * 5 + offset)).strftime("%Y%m%dT%H%M%SZ") for offset in range(5)]
        for set_id, signer in ((ids[0], SIGNER), (ids[1], SIGNER), (ids[4], stranger)):
            manifest = dataclasses.replace(_manifest(set_id), set_id=set_id)
            storage.put(f"{set_id}/files.tar.zst.age.000", io.BytesIO(b"x" * (index + 1)))
            write_manifest(storage, manifest, signer)
        storage.delete(signature_key(ids[1]))                                             # incomplete: no signature
        storage.put(f"{ids[2]}/files.tar.zst.age.000", io.BytesIO(b"half"))               # incomplete: no manifest
        storage.put(manifest_key(ids[3]), io.BytesIO(b'{"format_version": 2}'))           # damaged
        storage.put(signature_key(ids[3]), storage.get(signature_key(ids[0])))
        storage.put(f"{ids[0]}-2/files.tar.zst.age.000", io.BytesIO(b"same second"))   # a suffixed id


def test_parallel_list_sets_is_the_sequential_one_in_order_and_state(tmp_path: Path) -> None:
    local = LocalStorage(tmp_path / "web1")
    fill_with_sets_of_every_state(local, count=8)
    parallel = Parallel(local, workers=8)

    sequential = list_sets(OneAtATime(local), TRUST)
    found = list_sets(parallel, TRUST)

    assert found == sequential
    assert parallel.most_at_once > 1                   # it really read in parallel
    assert parallel.most_at_once <= 8
    states = [info.state for info in found]
    assert {STATE_COMPLETE, STATE_INCOMPLETE, STATE_DAMAGED, STATE_UNTRUSTED} <= set(states)
    assert [info.set_id for info in found] == sorted((info.set_id for info in found),
                                                     key=lambda s: (set_time(s), s))


def test_read_workers_is_one_unless_the_backend_says_more(tmp_path: Path) -> None:
    local = LocalStorage(tmp_path / "web1")
    assert read_workers(local) == 8          # local files read fine from several threads

    class Plain:                             # a backend that says nothing: one reader
        name = "plain"

    assert read_workers(Plain()) == 1  # type: ignore[arg-type]
    assert read_workers(Parallel(local, workers=16)) == 16
    assert read_workers(Parallel(local, workers=0)) == 1
