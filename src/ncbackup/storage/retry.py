"""Who retries what, in one place. A backup has four layers of retrying, each for a different failure:

1. **One request** (S3 only): botocore's "standard" retry mode retries a failed HTTP request
   (throttling, 5xx, connection resets) inside ``storage/s3.py`` (MAX_ATTEMPTS), invisible to the rest.
2. **One operation on a storage** (``with_retries`` below): list, get, delete, and put of a *rewindable*
   stream are retried with waits that double. ``list``/``verify``/``restore`` read through it. A streamed
   part (the backup's own parts) cannot be rewound, so its put is never retried here.
3. **One storage during a backup set** (``engine/tee.py``): a put that fails for a passing reason is
   recorded as missing while the other storages go on; a permanent error, a lone storage, or two
   failures in a row drop the storage for the rest of the set.
4. **One missing part after the set** (``engine/repair.py``): each part a storage missed is copied from a
   sibling storage that holds it (``retry`` below, a fresh read each try), checked against the manifest.

A ``StorageError`` with ``is_permanent`` (missing bucket or key, refused credentials, host key
mismatch, permission denied) is never retried at any layer: the same request would fail the same way.
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import BinaryIO, TypeVar

from ncbackup.errors import StorageError
from ncbackup.storage import base
from ncbackup.storage.base import ObjectInfo, Storage

log = logging.getLogger(__name__)

T = TypeVar("T")


def retry(call: Callable[[], T], *, what: str, attempts: int, first_wait_seconds: float,
          can_retry: Callable[[], bool] = lambda: True) -> T:
    """Return call(), retried on a passing StorageError with waits that double; a permanent one is raised at once."""
    wait = first_wait_seconds
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except StorageError as error:
            if error.is_permanent or attempt == attempts or not can_retry():
                raise
            log.warning("%s failed (%s); retrying in %.0f s", what, error, wait)
            time.sleep(wait)
            wait *= 2
    raise AssertionError("unreachable")


class with_retries:  # noqa: N801 - reads as a wrapper function at the call site
    """Retry put/get/list/delete on StorageError with exponential backoff.

    A permanent StorageError (``is_permanent``: missing bucket or key, refused credentials...) is
    raised at once. put is only retried when its stream can be rewound (seekable); a streamed part
    that failed halfway cannot be replayed and the failure is final for that storage.
    """

    def __init__(self, storage: Storage, *, attempts: int = 5, first_wait_seconds: float = 1.0) -> None:
        self.inner = storage
        self.name = storage.name
        self.attempts = attempts
        self.first_wait_seconds = first_wait_seconds

    def _retry(self, what: str, call: Callable[[], T], *, can_retry: Callable[[], bool] = lambda: True) -> T:
        return retry(call, what=f"{self.name}: {what}", attempts=self.attempts,
                     first_wait_seconds=self.first_wait_seconds, can_retry=can_retry)

    def put(self, key: str, stream: BinaryIO) -> None:
        seekable = getattr(stream, "seekable", lambda: False)()
        start = stream.tell() if seekable else 0

        def attempt() -> None:
            if seekable:
                stream.seek(start)
            return self.inner.put(key, stream)

        return self._retry(f"upload of {key}", attempt, can_retry=lambda: seekable)

    def get(self, key: str) -> BinaryIO:
        return self._retry(f"download of {key}", lambda: self.inner.get(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return iter(self._retry(f"listing of {prefix or '/'}", lambda: list(self.inner.list(prefix))))

    def delete(self, key: str) -> None:
        return self._retry(f"removal of {key}", lambda: self.inner.delete(key))

    # The optional capabilities of storage/base.py, passed through so a wrapped storage keeps them.

    def delete_many(self, keys: builtins.list[str]) -> dict[str, str]:
        if hasattr(self.inner, "delete_many"):   # a batch delete (S3) retries its requests itself
            return base.delete_keys(self.inner, keys)
        failures: dict[str, str] = {}
        for key in keys:
            try:
                self.delete(key)
            except StorageError as error:
                failures[key] = str(error)
        return failures

    def retained_until(self, key: str) -> datetime | None:
        return self._retry(f"lock query of {key}", lambda: base.retained_until(self.inner, key))

    def prune_support(self) -> str | None:
        return base.prune_support(self.inner)

    def bucket_location(self) -> tuple[str, str] | None:
        return base.bucket_location(self.inner)

    def read_workers(self) -> int:
        return base.read_workers(self.inner)

    def parallel_part_reads(self) -> int:
        return base.parallel_part_reads(self.inner)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        return self._retry(f"download of {key} (bytes {start}+{length})", lambda: base.get_range(self.inner, key, start, length))

    def host_storages(self) -> builtins.list[tuple[str, Storage]] | None:
        return base.host_storages(self.inner)

