"""Real incremental chains for tests, written through the real pipeline with a tracker of the tests' own.

Until the product's own tracker (``incremental/``) is what the tests use, ``ChainMaker`` keeps the previous walk in
a dict (by member name: the stat fields that decide "changed", and where the member is stored) and hands the tar
walk a ``DictTracker`` built from it, so a set of a chain holds only what changed and carries the rest, exactly
as archive/changes.py describes. Replace it by the product's tracker once that lands.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ncbackup.archive.changes import Carried
from ncbackup.archive.index import FILE, HARDLINK, IndexWriter
from ncbackup.archive.writer import TarWriter
from ncbackup.engine.backupset import NamedStorage, PipelineSpec, write_backup_set
from ncbackup.signing import SecretKey
from ncbackup.sources.base import CheckLine, StreamReport
from ncbackup.stages.age import AgeStage
from ncbackup.stages.compress import ZstdStage
from ncbackup.stages.keys import write_identity_file
from ncbackup.storage.local import LocalStorage
from tests.support import SIGNER

HOSTNAME = "web1"
PART_BYTES = 256 * 1024


@dataclass(frozen=True)
class _Seen:
    key: tuple[int, int, int, int, int, str]   # size, mtime, ctime, inode, device, kind as the walk saw them
    carried: Carried                           # where the member is stored


def _stat_key(info: os.stat_result, kind: str) -> tuple[int, int, int, int, int, str]:
    walk_kind = FILE if kind == HARDLINK else kind
    size = info.st_size if walk_kind == FILE else 0
    return (size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev, walk_kind)


class DictTracker:
    """archive/changes.ChangeTracker over the previous walk held in a dict (tests only)."""

    def __init__(self, set_id: str, previous: dict[bytes, _Seen]) -> None:
        self.set_id = set_id
        self.previous = previous
        self.current: dict[bytes, _Seen] = {}

    def unchanged(self, name: bytes, info: os.stat_result, kind: str) -> Carried | None:
        seen = self.previous.get(name)
        if seen is None or seen.key != _stat_key(info, kind):
            return None
        self.current[name] = seen
        return seen.carried

    def stored(self, name: bytes, info: os.stat_result, kind: str, offset: int, link: bytes | None) -> None:
        size = info.st_size if kind == FILE else 0
        self.current[name] = _Seen(_stat_key(info, kind), Carried(self.set_id, kind, offset, size, link))


@dataclass
class _Spool:
    data: bytes = b""


class _FilesStream:
    kind = "files"
    suffix = ".tar"
    name = "files"

    def __init__(self, root: Path, tracker: DictTracker, spool: _Spool, level: str) -> None:
        self._root, self._tracker, self._spool, self._level = root, tracker, spool, level

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:

        index_file = io.BytesIO()
        writer = TarWriter(sink, report=report, index=IndexWriter(index_file), tracker=self._tracker)
        writer.add_tree(str(self._root), name=self._root.name.encode())
        totals = writer.close()
        self._spool.data = index_file.getvalue()
        report.metadata.update({"format": "pax", "members": totals.members, "file_bytes": totals.file_bytes,
                                "level": self._level})


class _IndexStream:
    kind = "files-index"
    suffix = ".jsonl"
    name = "files-index"

    def __init__(self, spool: _Spool) -> None:
        self._spool = spool

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        sink.write(self._spool.data)
        report.metadata.update({"of_stream": "files"})


class _ChainSource:
    def __init__(self, root: Path, tracker: DictTracker, level: str) -> None:
        self.report = StreamReport()
        self._root, self._tracker, self._level = root, tracker, level

    def streams(self) -> Iterator[_FilesStream | _IndexStream]:
        spool = _Spool()
        yield _FilesStream(self._root, self._tracker, spool, self._level)
        yield _IndexStream(spool)

    def describe(self) -> str:
        return f"files {self._root} (test chain)"

    def check(self) -> list[CheckLine]:
        return []


@dataclass
class ChainMaker:
    """Backs up data (the folder's own name is the member name of its root) into storage_folder/web1, as a full
    then incrementals: ``backup()`` after each change of the tree."""

    data: Path
    storage_folder: Path
    key_file: Path
    signer: SecretKey = SIGNER
    set_ids: list[str] = field(default_factory=list)
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)   # set id -> its manifest chain
    _previous: dict[bytes, _Seen] | None = None
    _chain: tuple[str, ...] = ()

    @classmethod
    def create(cls, tmp_path: Path, data: Path, *, signer: SecretKey = SIGNER) -> ChainMaker:
        key_file = tmp_path / "key.txt"
        write_identity_file(key_file)
        return cls(data=data, storage_folder=tmp_path / "backups", key_file=key_file, signer=signer)

    @property
    def storage(self) -> LocalStorage:
        return LocalStorage(self.storage_folder / HOSTNAME)

    def set_folder(self, set_id: str) -> Path:
        return self.storage_folder / HOSTNAME / set_id

    def backup(self, *, full: bool = False) -> str:
        """One set of the tree as it is now: a full (the first, or full=True), else an incremental on the last."""
        set_id = f"20261130T01{len(self.set_ids) // 60:02d}{len(self.set_ids) % 60:02d}Z"
        # A full stores everything: its tracker has no previous walk, and only records this one.
        if full or self._previous is None:
            tracker, chain = DictTracker(set_id, {}), ()
        else:
            tracker, chain = DictTracker(set_id, self._previous), (*self._chain, self.set_ids[-1])
        recipient = self.key_file.read_text().splitlines()[1].split(": ")[1]
        result = write_backup_set(
            PipelineSpec(sources=[_ChainSource(self.data, tracker, "incremental" if chain else "full")], compression=ZstdStage(threads=0),
                         encryption=AgeStage(recipients=[recipient]), part_size_bytes=PART_BYTES,
                         storages=[NamedStorage("STORAGE", self.storage)], signer=self.signer, chain=chain),
            hostname=HOSTNAME, set_id=set_id,
        )
        assert result.manifest is not None and result.error is None, result
        assert all(stream.error is None for stream in result.streams), result.streams
        self._previous = tracker.current
        self._chain = chain
        self.set_ids.append(set_id)
        self.chains[set_id] = chain
        return set_id

