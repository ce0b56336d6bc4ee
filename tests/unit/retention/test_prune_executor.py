"""prune_storage against a real LocalStorage holding cheaply made signed sets: what it removes, in which order,
what it leaves alone, and how a failed or interrupted removal is finished by the next prune."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

import pytest

from ncbackup.errors import StorageError
from ncbackup.retention.policy import Policy
from ncbackup.retention.prune import PruneOutcome, prune_storage, zone_label
from ncbackup.retention.rules import Candidate, Kind, Rules
from ncbackup.setformat import (
    STATE_COMPLETE,
    STATE_INCOMPLETE,
    Manifest,
    PartInfo,
    StreamInfo,
    list_sets,
    manifest_key,
    part_key,
    part_name,
    set_id_for,
    signature_key,
    write_manifest,
)
from ncbackup.storage.base import ObjectInfo, Storage
from ncbackup.storage.local import LocalStorage
from tests.support import SIGNER, TRUST

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
POLICY = Policy(rules=Rules(last=1))      # keep the newest complete set only


def make_set(storage: Storage, started: datetime, *, host: str = "web1", failed: bool = False,
             signed: bool = True, format_version: int = 2, parts: int = 2, chain: tuple[str, ...] = ()) -> str:
    """A set of one stream with `parts` small parts, its manifest and (unless signed=False) its signature."""
    set_id = set_id_for(started)
    infos = []
    for index in range(parts):
        data = f"{set_id} part {index}\n".encode() * 10
        name = part_name("files.tar.zst.age", index)
        storage.put(part_key(set_id, name), io.BytesIO(data))
        infos.append(PartInfo(name=name, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest()))
    stream = StreamInfo(name="files", kind="files", file_name="files.tar.zst.age", codec="zstd", cipher="age",
                        status="failed" if failed else "ok", error="tar failed" if failed else None, parts=tuple(infos))
    manifest = Manifest(host=host, set_id=set_id, started_at=started, finished_at=started + timedelta(minutes=5),
                        streams=(stream,), format_version=format_version,
                        parent=chain[-1] if chain else None, chain=chain)
    if signed:
        write_manifest(storage, manifest, SIGNER)
    else:
        storage.put(manifest_key(set_id), io.BytesIO(manifest.to_json()))
    return set_id


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def prune(storage: Storage, **overrides) -> PruneOutcome:
    arguments = {"hostname": "web1", "now": NOW, "dry_run": False, "may_remove_incomplete": True, **overrides}
    return prune_storage(storage, POLICY, TRUST, **arguments)


class Recording:
    """A storage that records what is done to it and can refuse chosen deletes (a flaky or interrupted prune)."""

    def __init__(self, inner: Storage, *, refuse=lambda key: False) -> None:
        self.inner, self.name, self.refuse = inner, inner.name, refuse
        self.deleted: list[str] = []
        self.list_calls = 0

    def put(self, key: str, stream: BinaryIO) -> None:
        self.inner.put(key, stream)

    def get(self, key: str) -> BinaryIO:
        return self.inner.get(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self.list_calls += 1
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        if self.refuse(key):
            raise StorageError(f"{self.name}: cannot delete {key}: permission denied")
        self.deleted.append(key)
        self.inner.delete(key)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "backups" / "web1")


def states(storage: Storage) -> dict[str, str]:
    return {info.set_id: info.state for info in list_sets(storage, TRUST)}


def test_old_sets_go_signature_and_manifest_first_and_the_newest_stays(storage) -> None:
    old, newer, newest = (make_set(storage, days_ago(d)) for d in (3, 2, 1))
    recording = Recording(storage)
    outcome = prune(recording)
    assert outcome.removed == [old, newer]
    assert list(states(storage)) == [newest]
    assert recording.list_calls == 1                       # one listing for the sets and the unknown objects
    for set_id in (old, newer):
        mine = [key for key in recording.deleted if key.startswith(f"{set_id}/")]
        assert mine[:2] == [signature_key(set_id), manifest_key(set_id)]
        assert len(mine) == 4
    # Every set's commit marker goes before any set's parts: batched, an interruption leaves only incomplete sets.
    assert {key.partition("/")[2] for key in recording.deleted[:4]} == {"manifest.json.minisig", "manifest.json"}
    assert outcome.freed_bytes > 0 and not outcome.warnings
    assert [d.set_id for d in outcome.decisions if d.keep] == [newest]


def test_a_prune_interrupted_after_the_manifest_leaves_an_incomplete_set_the_next_prune_finishes(storage) -> None:
    old = make_set(storage, days_ago(3))
    newest = make_set(storage, days_ago(1))
    flaky = Recording(storage, refuse=lambda key: key.startswith(f"{old}/files"))
    outcome = prune(flaky)
    assert old not in outcome.removed
    assert any(f"{old}/files.tar.zst.age.000" in warning for warning in outcome.warnings)
    # Never a set that looks complete but lacks parts: without its manifest it is incomplete.
    assert states(storage) == {old: STATE_INCOMPLETE, newest: STATE_COMPLETE}
    again = prune(storage)
    assert again.removed == [old] and not again.warnings
    assert states(storage) == {newest: STATE_COMPLETE}


def test_a_failed_signature_delete_is_a_warning_naming_it_and_the_next_prune_retries(storage) -> None:
    old = make_set(storage, days_ago(3))
    newest = make_set(storage, days_ago(1))
    flaky = Recording(storage, refuse=lambda key: key == signature_key(old))
    outcome = prune(flaky)
    assert outcome.removed == [] and len(outcome.warnings) == 1
    assert signature_key(old) in outcome.warnings[0] and "next prune" in outcome.warnings[0]
    assert not any(key.startswith(f"{old}/files") for key in flaky.deleted)   # parts untouched while it is signed
    # Its manifest went, so it is incomplete now (never complete without parts); the next prune finishes it.
    assert states(storage) == {old: STATE_INCOMPLETE, newest: STATE_COMPLETE}
    assert prune(storage).removed == [old]
    assert list(states(storage)) == [newest]


def test_objects_that_are_not_part_of_a_set_are_listed_as_unknown_and_left_alone(storage, tmp_path) -> None:
    make_set(storage, days_ago(3))
    make_set(storage, days_ago(1))
    for key in ("notes.txt", "old-tool/backup.tar", "20261101/stray"):
        storage.put(key, io.BytesIO(b"not ours"))
    outcome = prune(storage)
    assert outcome.unknown_keys == ["20261101/stray", "notes.txt", "old-tool/backup.tar"]
    base = tmp_path / "backups" / "web1"
    assert all((base / key).read_bytes() == b"not ours" for key in outcome.unknown_keys)


def test_another_hosts_set_and_an_unsigned_set_are_never_removed(storage) -> None:
    other = make_set(storage, days_ago(5), host="web2")
    unsigned = make_set(storage, days_ago(4), signed=False, format_version=1)   # made before signing
    newest = make_set(storage, days_ago(1))
    outcome = prune(storage)
    assert outcome.removed == []
    kept = {d.set_id: d for d in outcome.decisions}
    assert kept[other].keep and "web2" in "; ".join(kept[other].reasons)
    assert kept[unsigned].keep and kept[unsigned].candidate is not None
    assert kept[unsigned].candidate.kind == Kind.FOREIGN
    assert set(states(storage)) == {other, unsigned, newest}


def test_incomplete_sets_are_kept_while_a_run_holds_the_lock_and_removed_when_none_does(storage) -> None:
    stale = make_set(storage, days_ago(3), signed=False)          # manifest without signature: incomplete
    make_set(storage, days_ago(1))
    held = prune(storage, may_remove_incomplete=False)
    assert held.removed == [] and stale in states(storage)
    (decision,) = [d for d in held.decisions if d.set_id == stale]
    assert decision.keep and "lock" in "; ".join(decision.reasons)
    assert prune(storage).removed == [stale]


def test_dry_run_decides_the_same_and_removes_nothing(storage, tmp_path) -> None:
    make_set(storage, days_ago(3))
    make_set(storage, days_ago(1))
    before = sorted(p for p in (tmp_path / "backups").rglob("*"))
    outcome = prune(storage, dry_run=True)
    assert outcome.is_dry_run and outcome.removed == [] and outcome.freed_bytes == 0
    assert [d.keep for d in outcome.decisions] == [False, True]
    assert sorted(p for p in (tmp_path / "backups").rglob("*")) == before


class Locked(Recording):
    """A storage with S3 Object Lock on one set, counting the lock queries."""

    def __init__(self, inner: Storage, locked_set: str, until: datetime) -> None:
        super().__init__(inner)
        self.locked_set, self.until = locked_set, until
        self.asked: list[str] = []

    def retained_until(self, key: str) -> datetime | None:
        self.asked.append(key)
        return self.until if key.startswith(f"{self.locked_set}/") else None


def test_locked_sets_are_kept_and_only_sets_to_remove_are_asked_about_their_lock(storage) -> None:
    locked, old = make_set(storage, days_ago(3)), make_set(storage, days_ago(2))
    newest = make_set(storage, days_ago(1))
    until = NOW + timedelta(days=10)
    lockable = Locked(storage, locked, until)
    outcome = prune(lockable)
    assert sorted(lockable.asked) == sorted([manifest_key(locked), manifest_key(old)])   # not the newest
    assert outcome.removed == [old]
    (decision,) = [d for d in outcome.decisions if d.set_id == locked]
    assert decision.keep and "object lock until 2026-12-10" in "; ".join(decision.reasons)
    assert set(states(storage)) == {locked, newest}


# --------------------------------------------------------------------------------------------------
# Incremental chains


def make_chain(storage: Storage, *days: float) -> list[str]:
    """A full made days[0] ago, then one incremental on the one before for each further day."""
    made: list[str] = []
    for day in days:
        made.append(make_set(storage, days_ago(day), chain=tuple(made)))
    return made


class Interrupted(Exception):
    """Not a StorageError: the prune dies here, as when the machine goes down."""


class DiesAfter(Recording):
    """A storage that deletes in batches like S3 (in no promised order: here the reverse) and dies after a number
    of deletes."""

    def __init__(self, inner: Storage, deletes: int) -> None:
        super().__init__(inner)
        self.left = deletes
        self.batches: list[list[str]] = []

    def delete_many(self, keys: list[str]) -> dict[str, str]:
        self.batches.append(list(keys))
        for key in reversed(keys):
            if self.left == 0:
                raise Interrupted(key)
            self.left -= 1
            self.delete(key)
        return {}


def broken_chains(storage: Storage) -> list[str]:
    """Complete sets that need a set which is no longer complete (what an interrupted prune must never leave)."""
    found = {info.set_id: info for info in list_sets(storage, TRUST)}
    return [f"{set_id} needs {needed}" for set_id, info in found.items() if info.manifest is not None
            for needed in info.manifest.chain
            if needed not in found or found[needed].manifest is None]


def test_the_manifest_chain_feeds_the_candidates_so_a_kept_incremental_keeps_its_chain(storage) -> None:
    older = make_set(storage, days_ago(9))
    full, first, second = make_chain(storage, 3, 2, 1)
    outcome = prune(storage)
    assert outcome.removed == [older]
    reasons = {d.set_id: d.reasons for d in outcome.decisions}
    assert reasons[second] == ("newest complete", "last 1/1")
    assert reasons[first] == (f"kept: parent of {second}",)
    assert reasons[full] == (f"kept: parent of {first}",)
    assert list(states(storage)) == [full, first, second]


def test_a_chain_goes_as_a_whole_newest_first(storage) -> None:
    full, first, second = make_chain(storage, 5, 4, 3)
    newest = make_set(storage, days_ago(1))
    recording = Recording(storage)
    outcome = prune(recording)
    assert outcome.removed == [full, first, second]
    markers = [key.partition("/")[0] for key in recording.deleted if key.endswith(("manifest.json", ".minisig"))]
    assert markers == [second, second, first, first, full, full]
    # Every commit marker still goes before any part.
    assert all(key.endswith(("manifest.json", ".minisig")) for key in recording.deleted[:6])
    assert list(states(storage)) == [newest]


def test_each_round_of_a_chain_is_one_batch_of_commit_markers(storage) -> None:
    full, first, second = make_chain(storage, 5, 4, 3)
    alone = make_set(storage, days_ago(4.5))
    make_set(storage, days_ago(1))
    batching = DiesAfter(storage, 1000)
    prune(batching)
    assert [sorted({key.partition("/")[0] for key in batch}) for batch in batching.batches] == [
        sorted([second, alone]), [first], [full], sorted([full, first, second, alone])]


@pytest.mark.parametrize("deletes", range(0, 9))
def test_a_prune_interrupted_anywhere_never_leaves_a_set_whose_chain_lost_a_set(storage, deletes) -> None:
    make_chain(storage, 6, 5, 4, 3)
    make_set(storage, days_ago(1))
    with pytest.raises(Interrupted):
        prune(DiesAfter(storage, deletes))
    assert broken_chains(storage) == []
    # The next prune finishes the job (the sets left incomplete are old enough to go).
    prune(storage)
    assert broken_chains(storage) == [] and len(states(storage)) == 1


def test_a_failed_delete_in_a_chain_holds_back_the_sets_it_needs(storage) -> None:
    full, first, second = make_chain(storage, 5, 4, 3)
    newest = make_set(storage, days_ago(1))
    flaky = Recording(storage, refuse=lambda key: key == signature_key(second))
    outcome = prune(flaky)
    assert outcome.removed == [] and len(outcome.warnings) == 1
    assert not any(key.startswith((f"{full}/", f"{first}/")) for key in flaky.deleted)
    assert states(storage) == {full: STATE_COMPLETE, first: STATE_COMPLETE, second: STATE_INCOMPLETE,
                               newest: STATE_COMPLETE}
    assert broken_chains(storage) == []
    assert prune(storage).removed == [full, first, second]


def test_a_set_whose_lock_is_unknown_holds_back_its_chain(storage) -> None:
    full, first = make_chain(storage, 5, 4)
    newest = make_set(storage, days_ago(1))

    class LockUnknown(Recording):
        def retained_until(self, key: str) -> datetime | None:
            if key.startswith(f"{first}/"):
                raise StorageError("HEAD failed: timeout")
            return None

    outcome = prune(LockUnknown(storage))
    assert outcome.removed == []
    assert set(states(storage)) == {full, first, newest}


def test_dry_run_shows_the_parent_reason(storage) -> None:
    from ncbackup.commands.prune import render_outcome

    full, first = make_chain(storage, 2, 1)
    text = render_outcome(prune(storage, dry_run=True), "STORAGE")
    line = next(line for line in text.splitlines() if full in line)
    assert "keep" in line and f"kept: parent of {first}" in line


class CannotDelete(Recording):
    def prune_support(self) -> str | None:
        return "its custom_command has no DELETE_COMMAND_TEMPLATE; add one"


def test_a_storage_that_cannot_delete_is_a_clear_error(storage) -> None:
    make_set(storage, days_ago(1))
    with pytest.raises(StorageError, match="cannot be pruned: its custom_command has no DELETE_COMMAND_TEMPLATE"):
        prune(CannotDelete(storage))


def test_the_time_zone_is_shown_with_its_offset() -> None:
    assert zone_label(ZoneInfo("Europe/Paris"), NOW) == "Europe/Paris (UTC+01:00)"
    assert zone_label(ZoneInfo("America/New_York"), datetime(2026, 7, 1, tzinfo=timezone.utc)) == \
        "America/New_York (UTC-04:00)"
    assert zone_label(None, NOW).endswith(")") and "(UTC" in zone_label(None, NOW)


def test_candidates_are_what_the_docs_say(storage) -> None:
    from ncbackup.retention.prune import candidate_for

    whole, partial = make_set(storage, days_ago(3)), make_set(storage, days_ago(2), failed=True)
    foreign, incomplete = make_set(storage, days_ago(1), host="db1"), make_set(storage, days_ago(0.5), signed=False)
    kinds = {info.set_id: candidate_for(info, hostname="web1") for info in list_sets(storage, TRUST)}
    assert {set_id: c.kind for set_id, c in kinds.items()} == {
        whole: Kind.WHOLE, partial: Kind.PARTIAL, foreign: Kind.FOREIGN, incomplete: Kind.INCOMPLETE}
    assert kinds[foreign].note is not None and "db1" in kinds[foreign].note
    assert isinstance(kinds[whole], Candidate) and kinds[whole].size_bytes > 0


class ParallelReads(Recording):
    """A storage that allows several readers at once and records which threads read from it."""

    def __init__(self, inner: Storage) -> None:
        super().__init__(inner)
        self.reader_threads: set[str] = set()

    def read_workers(self) -> int:
        return 4

    def get(self, key: str) -> BinaryIO:
        import threading
        import time

        self.reader_threads.add(threading.current_thread().name)
        time.sleep(0.01)   # long enough that a pool of 4 spreads the reads over its threads
        return self.inner.get(key)


def test_prune_reads_manifests_in_parallel_where_the_storage_allows_it(storage) -> None:
    for day in range(12, 0, -1):
        make_set(storage, days_ago(day))
    parallel = ParallelReads(storage)
    outcome = prune(parallel, dry_run=True)
    assert len(outcome.decisions) == 12
    assert len(parallel.reader_threads) > 1, "prune read the manifests one at a time"
