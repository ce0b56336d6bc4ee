"""Every registered storage backend, as a factory for the shared contract suite.

A factory is a context manager taking ``tmp_path`` and yielding a ready, empty Storage (starting
whatever server it needs, skipping via ``need()`` when a tool is missing). Adding a backend is one
entry here; ``test_storage_contract.py`` then runs every contract test against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from ncbackup.storage.base import Storage
from ncbackup.storage.local import LocalStorage


@contextmanager
def local_backend(tmp_path: Path) -> Iterator[Storage]:
    yield LocalStorage(tmp_path / "local-backup" / "web1")


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Storage]]] = {
    "local": local_backend,
}
