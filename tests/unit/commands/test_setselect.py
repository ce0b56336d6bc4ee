"""Which set ``--latest`` means: the newest complete set in which the streams asked for are good."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ncbackup.commands.setselect import choose_set
from ncbackup.engine.backupset import NamedStorage, PipelineSpec, write_backup_set
from ncbackup.errors import BackupError, SourceError
from ncbackup.setformat import set_id_for
from ncbackup.sources.base import CheckLine, StreamReport
from ncbackup.stages.compress import NoCompression
from ncbackup.stages.registry import NoEncryption
from ncbackup.storage.local import LocalStorage
from tests.support import SIGNER, TRUST

NIGHT_ONE = datetime(2026, 11, 1, 3, 0, tzinfo=timezone.utc)


@dataclass
class _Stream:
    name: str
    fails: bool = False
    kind: str = "blob"
    suffix: str = ".bin"

    def write_to(self, sink, report: StreamReport) -> None:
        sink.write(b"data of " + self.name.encode())
        if self.fails:
            raise SourceError("the dump died halfway")


@dataclass
class _Source:
    report = StreamReport()   # what the source says about itself (sources/base.Source)

    items: list[_Stream]

    def streams(self) -> Iterator[_Stream]:
        yield from self.items

    def describe(self) -> str:
        return "test streams"

    def check(self) -> list[CheckLine]:
        return []


def _night(storage: LocalStorage, number: int, *streams: _Stream) -> str:
    """Write one set as night number would have (set ids one day apart, so their order is certain)."""
    result = write_backup_set(
        PipelineSpec(sources=[_Source(list(streams))], compression=NoCompression(), encryption=NoEncryption(),
                     part_size_bytes=None, storages=[NamedStorage("STORAGE", storage)], signer=SIGNER),
        hostname="web1", set_id=set_id_for(NIGHT_ONE + timedelta(days=number)),
    )
    assert result.manifest is not None
    return result.set_id


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "backups" / "web1")


def test_latest_skips_a_newer_set_whose_files_failed_and_says_so(storage):
    good = _night(storage, 1, _Stream("files"), _Stream("files-index", kind="files-index"))
    bad = _night(storage, 2, _Stream("files", fails=True), _Stream("files-index", kind="files-index", fails=True))
    chosen = choose_set(storage, None, TRUST)
    assert chosen.info.set_id == good
    assert chosen.notes == (f"newer set(s) skipped: {bad} (files failed)",)
    # The failed file index alone does not make a set unusable: it is not restored by default.
    index_only = _night(storage, 3, _Stream("files"), _Stream("files-index", kind="files-index", fails=True))
    assert choose_set(storage, None, TRUST).info.set_id == index_only


def test_latest_with_stream_names_looks_only_at_those(storage):
    both = _night(storage, 1, _Stream("files"), _Stream("mysql-shop"))
    files_only = _night(storage, 2, _Stream("files"), _Stream("mysql-shop", fails=True))
    assert choose_set(storage, None, TRUST, stream_names=("files",)).info.set_id == files_only
    chosen = choose_set(storage, None, TRUST, stream_names=("mysql-shop",))
    assert chosen.info.set_id == both
    assert chosen.notes == (f"newer set(s) skipped: {files_only} (mysql-shop failed)",)
    assert choose_set(storage, None, TRUST).info.set_id == both
    # --set is the user's own choice: taken as it is.
    assert choose_set(storage, files_only, TRUST).info.set_id == files_only


def test_when_no_set_has_every_stream_good_the_newest_with_some_is_taken_with_a_note(storage):
    _night(storage, 1, _Stream("files"), _Stream("mysql-broken", fails=True))
    newest = _night(storage, 2, _Stream("files"), _Stream("mysql-broken", fails=True))
    chosen = choose_set(storage, None, TRUST)
    assert chosen.info.set_id == newest
    assert chosen.notes == (f"no set has every stream good; set {newest} has mysql-broken failed: its other streams are restored",)


def test_a_stream_good_in_no_set_is_one_sentence_naming_the_newest_sets_state(storage):
    newest = _night(storage, 1, _Stream("files", fails=True))
    with pytest.raises(BackupError) as nothing:
        choose_set(storage, None, TRUST)
    assert str(nothing.value).startswith(f"no complete set on {storage.name} has a stream that can be restored: "
                                         f"the newest, {newest}, has files failed;")
    with pytest.raises(BackupError, match=f"has filez: the newest, {newest}, has no stream filez;"):
        choose_set(storage, None, TRUST, stream_names=("filez",))
