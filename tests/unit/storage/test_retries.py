"""with_retries: a transient StorageError is retried with backoff, a permanent one is raised at once."""

from __future__ import annotations

import io

import pytest

from ncbackup.errors import StorageError
from ncbackup.storage import retry as retry_module
from ncbackup.storage.base import ObjectInfo
from ncbackup.storage.local import LocalStorage
from ncbackup.storage.retry import with_retries


class FlakyStorage:
    """A storage whose operations fail with the given errors, in order, then succeed."""

    name = "flaky:test"

    def __init__(self, *errors: StorageError) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.stored: dict[str, bytes] = {}

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)

    def put(self, key, stream):
        self._maybe_fail()
        self.stored[key] = stream.read()

    def get(self, key):
        self._maybe_fail()
        return io.BytesIO(self.stored.get(key, b"data"))

    def list(self, prefix=""):
        self._maybe_fail()
        return iter([ObjectInfo("s/part", 4)])

    def delete(self, key):
        self._maybe_fail()


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The backoff waits with_retries asks for, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(retry_module.time, "sleep", recorded.append)
    return recorded


def test_storage_error_is_transient_unless_marked_permanent():
    assert StorageError("x").is_permanent is False
    assert StorageError("x", is_permanent=True).is_permanent is True
    assert str(StorageError("bucket missing", is_permanent=True)) == "bucket missing"


@pytest.mark.parametrize("operation", ["get", "list", "delete", "put"])
def test_permanent_error_is_raised_at_once_without_waiting(operation, waits):
    inner = FlakyStorage(StorageError("bucket 'nope' does not exist", is_permanent=True))
    storage = with_retries(inner, attempts=5)
    call = {
        "get": lambda: storage.get("s/part"),
        "list": lambda: list(storage.list()),
        "delete": lambda: storage.delete("s/part"),
        "put": lambda: storage.put("s/part", io.BytesIO(b"data")),
    }[operation]
    with pytest.raises(StorageError, match="does not exist"):
        call()
    assert inner.calls == 1
    assert waits == []


def test_transient_errors_are_retried_with_growing_waits(waits):
    inner = FlakyStorage(StorageError("503 SlowDown"), StorageError("connection reset"))
    storage = with_retries(inner, attempts=5, first_wait_seconds=1.0)
    assert storage.get("s/part").read() == b"data"
    assert inner.calls == 3
    assert waits == [1.0, 2.0]


def test_transient_error_that_persists_is_raised_after_the_last_attempt(waits):
    inner = FlakyStorage(*(StorageError(f"timeout {n}") for n in range(3)))
    storage = with_retries(inner, attempts=3)
    with pytest.raises(StorageError, match="timeout 2"):
        list(storage.list())
    assert inner.calls == 3
    assert len(waits) == 2


def test_a_permanent_error_after_transient_ones_stops_the_retries(waits):
    inner = FlakyStorage(StorageError("connection reset"), StorageError("access denied", is_permanent=True))
    storage = with_retries(inner, attempts=5)
    with pytest.raises(StorageError, match="access denied"):
        storage.delete("s/part")
    assert inner.calls == 2
    assert len(waits) == 1


def test_seekable_put_is_replayed_from_its_start_after_a_transient_error(waits):
    inner = FlakyStorage(StorageError("connection reset"))
    storage = with_retries(inner, attempts=3)
    stream = io.BytesIO(b"header-payload")
    stream.seek(7)
    storage.put("s/part", stream)
    assert inner.stored["s/part"] == b"payload"


def test_missing_key_on_local_storage_is_permanent(tmp_path, waits):
    inner = LocalStorage(tmp_path / "backups")
    storage = with_retries(inner, attempts=5)
    with pytest.raises(StorageError, match="does not exist") as caught:
        storage.get("20260101T000000Z/manifest.json")
    assert caught.value.is_permanent
    assert waits == []
