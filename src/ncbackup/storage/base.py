"""What a storage is: four operations on keys. Retries, dry-run and logging wrap it from outside.

Keys are relative, '/'-separated: ``<set-id>/<file>``. Each storage adds its own base (a folder,
a bucket prefix, a remote dir) which defaults to ``<HOSTNAME>/``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol, TypeVar

from ncbackup.errors import StorageError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ncbackup.config.settings import SectionSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound="BaseModel")


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


def retry(
    call: Callable[[], T], *, what: str, attempts: int, first_wait_seconds: float,
    can_retry: Callable[[], bool] = lambda: True,
) -> T:
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
