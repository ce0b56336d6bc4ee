"""The contract every storage backend keeps (restic's shared backend suite, in pytest).

Keys are ``<set-id>/<file>``; put is atomic (a failed stream leaves no object); get of a missing key
is a StorageError; list filters by prefix; delete of a missing key is fine.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from ncbackup.errors import StorageError
from ncbackup.storage.base import Storage

from .backends import BACKENDS

LARGE_OBJECT_BYTES = 40 * 1024 * 1024 + 12345   # bigger than any backend's single chunk or multipart part
SET_ID = "20261126T030000Z"


@pytest.fixture(params=sorted(BACKENDS))
def storage(request, tmp_path: Path) -> Iterator[Storage]:
    with BACKENDS[request.param](tmp_path) as backend:
        yield backend


def _read(storage: Storage, key: str) -> bytes:
    stream = storage.get(key)
    try:
        return stream.read()
    finally:
        stream.close()


def _keys(storage: Storage, prefix: str = "") -> list[str]:
    return sorted(info.key for info in storage.list(prefix))


class PatternStream(io.RawIOBase):
    """A deterministic, non-seekable stream of size_bytes bytes that never holds them all in memory."""

    def __init__(self, size_bytes: int, *, fail_after_bytes: int | None = None) -> None:
        super().__init__()
        self.size_bytes = size_bytes
        self.fail_after_bytes = fail_after_bytes
        self.position = 0
        self._block = hashlib.sha256(b"contract").digest() * 32768   # 1 MiB

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        if self.fail_after_bytes is not None and self.position >= self.fail_after_bytes:
            raise RuntimeError("the source died halfway")
        count = min(len(target), self.size_bytes - self.position, len(self._block))
        if self.fail_after_bytes is not None:
            count = min(count, self.fail_after_bytes - self.position) or count
        start = self.position % len(self._block)
        chunk = (self._block[start:] + self._block)[:count]
        target[:count] = chunk
        self.position += count
        return count

    @staticmethod
    def expected_sha256(size_bytes: int) -> str:
        digest = hashlib.sha256()
        stream = PatternStream(size_bytes)
        while True:
            chunk = stream.read(1 << 20)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)


def test_put_get_list_delete(storage: Storage) -> None:
    storage.put(f"{SET_ID}/files.tar.zst.age.000", io.BytesIO(b"first part"))
    storage.put(f"{SET_ID}/manifest.json", io.BytesIO(b"{}"))
    assert _read(storage, f"{SET_ID}/files.tar.zst.age.000") == b"first part"
    listed = {info.key: info.size_bytes for info in storage.list("")}
    assert listed == {f"{SET_ID}/files.tar.zst.age.000": 10, f"{SET_ID}/manifest.json": 2}
    storage.delete(f"{SET_ID}/files.tar.zst.age.000")
    assert _keys(storage) == [f"{SET_ID}/manifest.json"]


def test_list_filters_by_prefix(storage: Storage) -> None:
    for key in (f"{SET_ID}/a.000", f"{SET_ID}/b.000", "20261127T030000Z/a.000", f"{SET_ID}-2/a.000"):
        storage.put(key, io.BytesIO(key.encode()))
    assert _keys(storage, f"{SET_ID}/") == [f"{SET_ID}/a.000", f"{SET_ID}/b.000"]
    assert _keys(storage, f"{SET_ID}/a") == [f"{SET_ID}/a.000"]
    assert _keys(storage, "2026112") == sorted([f"{SET_ID}/a.000", f"{SET_ID}/b.000", "20261127T030000Z/a.000", f"{SET_ID}-2/a.000"])
    assert _keys(storage, "19990101T000000Z/") == []


def test_put_overwrites_existing_key(storage: Storage) -> None:
    key = f"{SET_ID}/manifest.json"
    storage.put(key, io.BytesIO(b"old and longer content"))
    storage.put(key, io.BytesIO(b"new"))
    assert _read(storage, key) == b"new"
    assert [(info.key, info.size_bytes) for info in storage.list(SET_ID)] == [(key, 3)]


def test_empty_object(storage: Storage) -> None:
    storage.put(f"{SET_ID}/empty.000", io.BytesIO(b""))
    assert _read(storage, f"{SET_ID}/empty.000") == b""
    assert [info.size_bytes for info in storage.list(SET_ID)] == [0]


def test_get_of_missing_key_is_storage_error(storage: Storage) -> None:
    with pytest.raises(StorageError):
        storage.get(f"{SET_ID}/nothing-here.000")


def test_delete_of_missing_key_is_not_an_error(storage: Storage) -> None:
    storage.delete(f"{SET_ID}/nothing-here.000")


def test_large_streamed_object_round_trips(storage: Storage) -> None:
    key = f"{SET_ID}/big.tar.zst.age.000"
    storage.put(key, PatternStream(LARGE_OBJECT_BYTES))
    digest = hashlib.sha256()
    stream = storage.get(key)
    try:
        while True:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            digest.update(chunk)
    finally:
        stream.close()
    assert digest.hexdigest() == PatternStream.expected_sha256(LARGE_OBJECT_BYTES)
    assert [info.size_bytes for info in storage.list(SET_ID)] == [LARGE_OBJECT_BYTES]


def test_keys_with_spaces_and_unicode(storage: Storage) -> None:
    key = f"{SET_ID}/my db – ünïcode.sql.zst.age.000"  # noqa: RUF001 - an en dash on purpose
    storage.put(key, io.BytesIO(b"dump"))
    assert _keys(storage) == [key]
    assert _read(storage, key) == b"dump"
    storage.delete(key)
    assert _keys(storage) == []


@pytest.mark.parametrize("fail_after_bytes", [0, 1000, 9 * 1024 * 1024])
def test_put_whose_stream_fails_leaves_no_object(storage: Storage, fail_after_bytes: int) -> None:
    key = f"{SET_ID}/files.tar.zst.age.000"
    with pytest.raises(Exception):  # noqa: B017 - the stream's own error, or a StorageError wrapping it
        storage.put(key, PatternStream(20 * 1024 * 1024, fail_after_bytes=fail_after_bytes))
    assert _keys(storage) == []
    with pytest.raises(StorageError):
        storage.get(key)


def test_failed_overwrite_keeps_the_old_object(storage: Storage) -> None:
    key = f"{SET_ID}/manifest.json"
    storage.put(key, io.BytesIO(b"the good manifest"))
    with pytest.raises(Exception):  # noqa: B017
        storage.put(key, PatternStream(5 * 1024 * 1024, fail_after_bytes=1024 * 1024))
    assert _read(storage, key) == b"the good manifest"


def test_name_is_set_for_messages(storage: Storage) -> None:
    assert isinstance(storage.name, str) and storage.name


# -- retention: every registered backend can prune (storage/base.py capabilities) --------------------


def test_prune_support_is_true_to_its_word(storage: Storage) -> None:
    """A backend that says prune works lists a set's objects and deletes them through delete_keys, leaving the rest."""
    from ncbackup.storage.base import delete_keys, prune_support

    assert prune_support(storage) is None
    old, new = "20200101T030000Z", "20200102T030000Z"
    for key in (f"{old}/files.000", f"{old}/manifest.json", f"{old}/manifest.json.minisig", f"{new}/files.000"):
        storage.put(key, io.BytesIO(b"data of " + key.encode()))
    listed = _keys(storage, f"{old}/")
    assert listed == [f"{old}/files.000", f"{old}/manifest.json", f"{old}/manifest.json.minisig"]
    assert delete_keys(storage, [*reversed(listed), f"{old}/already-gone"]) == {}
    assert _keys(storage) == [f"{new}/files.000"]


def test_parallel_list_sets_gives_what_a_sequential_one_does(storage: Storage) -> None:
    from ncbackup.setformat import list_sets
    from ncbackup.storage.base import read_workers
    from tests.support import TRUST
    from tests.unit.test_setformat_parallel import OneAtATime, fill_with_sets_of_every_state

    fill_with_sets_of_every_state(storage, count=6)
    parallel = list_sets(storage, TRUST)
    assert parallel == list_sets(OneAtATime(storage), TRUST)
    assert read_workers(storage) >= 1


def test_get_range_returns_exactly_the_asked_bytes(storage: Storage) -> None:
    """get_range (storage/base.py): native on local, S3, SFTP; read-and-skip elsewhere; same answer everywhere."""
    from ncbackup.storage.base import get_range

    data = bytes(range(256)) * 40
    storage.put(f"{SET_ID}/ranged", io.BytesIO(data))
    for start, length in ((0, 1), (0, len(data)), (255, 1000), (len(data) - 1, 1), (len(data) - 10, 100), (5000, 0)):
        assert get_range(storage, f"{SET_ID}/ranged", start, length) == data[start:start + length], (start, length)
    assert get_range(storage, f"{SET_ID}/ranged", len(data) + 5, 10) == b""
    with pytest.raises(StorageError):
        get_range(storage, f"{SET_ID}/missing", 0, 10)
