"""Full or incremental: every reason a stream with INCREMENTAL on is full, and the chain of an incremental."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ncbackup.config.settings import SectionSettings
from ncbackup.config.types import parse_options
from ncbackup.errors import ConfigError
from ncbackup.incremental.decide import Policy, StorageListing, complete_sets, decide
from ncbackup.incremental.schedule import FullEvery, to_full_every
from ncbackup.incremental.state import StateInfo
from ncbackup.sources.files import FilesetOptions

FULL, INC1, INC2 = "20261101T020000Z", "20261102T020000Z", "20261103T020000Z"
NOW = datetime(2026, 11, 4, 2, 0, tzinfo=timezone.utc)
ON = Policy(is_incremental=True)


def _state(chain=(FULL, INC1), set_id=INC2, storages=("s1", "s2")) -> StateInfo:
    return StateInfo(set_id=set_id, chain=chain, fingerprint="fp", storages=storages, roots=(b"data",), records=3)


def _listings(**missing: str) -> dict[str, StorageListing]:
    every = frozenset({FULL, INC1, INC2})
    return {name: StorageListing(name, every - {missing.get(name, "")}) for name in ("s1", "s2")}


def _decide(policy=ON, state=None, *, problem=None, fingerprint="fp", listings=None, now=NOW):
    return decide(policy, state=state if state is not None else _state(), state_problem=problem,
                  fingerprint=fingerprint, listings=listings if listings is not None else _listings(), now=now)


def test_incremental_on_top_of_the_state_with_its_chain():
    decision = _decide()
    assert decision.is_incremental and decision.reason is None
    assert decision.chain == (FULL, INC1, INC2)


def test_full_when_incremental_is_off():
    decision = _decide(Policy(is_incremental=False))
    assert not decision.is_incremental and decision.reason == "INCREMENTAL is off" and decision.chain == ()


def test_full_without_state_or_with_a_damaged_one():
    missing = decide(ON, state=None, state_problem=None, fingerprint="fp", listings=_listings(), now=NOW)
    assert not missing.is_incremental and "no state" in (missing.reason or "")
    damaged = decide(ON, state=None, state_problem="the state of the previous set is damaged (checksum)",
                     fingerprint="fp", listings=_listings(), now=NOW)
    assert damaged.reason == "the state of the previous set is damaged (checksum)"


def test_full_when_what_the_walk_reads_changed():
    assert "changed" in (_decide(fingerprint="other").reason or "")


def test_full_when_a_storage_is_new_or_did_not_get_the_last_set():
    decision = _decide(state=_state(storages=("s1",)))
    assert not decision.is_incremental and "storage s2 does not hold set " + INC2 in (decision.reason or "")


@pytest.mark.parametrize("pruned", [INC2, FULL])
def test_full_when_a_set_of_the_chain_is_gone_from_one_storage(pruned):
    decision = _decide(listings=_listings(s2=pruned))
    assert not decision.is_incremental
    assert f"set {pruned} of the chain is not complete on storage s2" in (decision.reason or "")


def test_full_when_a_storage_cannot_be_listed():
    listings = _listings()
    listings["s2"] = StorageListing("s2", error="connection refused")
    assert "storage s2 could not be listed (connection refused)" in (_decide(listings=listings).reason or "")


def test_full_every_duration_counts_from_the_chains_full():
    assert _decide(Policy(True, full_every=FullEvery(seconds=5 * 86400))).is_incremental
    due = _decide(Policy(True, full_every=FullEvery(seconds=3 * 86400)))
    assert not due.is_incremental and due.reason and due.reason.startswith("FULL_EVERY 3d is due")


def test_full_every_weekday_is_due_once_that_day_began_after_the_full():
    sunday = FullEvery(weekday=6)
    full_on_friday = datetime(2026, 11, 6, 2, 0, tzinfo=timezone.utc)       # a Friday
    assert not sunday.is_due(full_on_friday, full_on_friday + timedelta(days=1))   # Saturday
    assert sunday.is_due(full_on_friday, full_on_friday + timedelta(days=2))       # Sunday
    assert sunday.is_due(full_on_friday, full_on_friday + timedelta(days=4))       # Tuesday, Sunday's run missed
    full_on_sunday = full_on_friday + timedelta(days=2)
    assert not sunday.is_due(full_on_sunday, full_on_sunday + timedelta(hours=3))  # the same Sunday, later
    assert not sunday.is_due(full_on_sunday, full_on_sunday + timedelta(days=6))   # Saturday after


def test_max_chain_counts_the_incrementals_after_the_full():
    assert _decide(Policy(True, max_chain=3)).is_incremental             # 2 incrementals so far: a third is allowed
    reached = _decide(Policy(True, max_chain=2))
    assert not reached.is_incremental and reached.reason and reached.reason.startswith("MAX_CHAIN 2 is reached")
    assert not _decide(Policy(True, max_chain=0), state=_state(chain=(), set_id=FULL)).is_incremental


def test_complete_sets_need_a_manifest_and_its_signature():
    keys = [f"{FULL}/manifest.json", f"{FULL}/manifest.json.minisig", f"{INC1}/manifest.json", f"{INC2}/files.tar.zst.age"]
    assert complete_sets(keys) == frozenset({FULL})


@pytest.mark.parametrize(("text", "expected"), [
    ("7d", FullEvery(seconds=7 * 86400)), ("36h", FullEvery(seconds=36 * 3600)), ("Sunday", FullEvery(weekday=6)),
    ("mon", FullEvery(weekday=0)), ("", None),
])
def test_full_every_values(text, expected):
    assert to_full_every(text) == expected


@pytest.mark.parametrize(("key", "value", "words"), [
    ("FULL_EVERY", "fortnightly", "weekday"), ("MAX_CHAIN", "-1", "MAX_CHAIN"), ("INCREMENTAL", "maybe", "INCREMENTAL"),
])
def test_bad_values_are_one_sentence_naming_section_and_key(tmp_path, key, value, words):
    section = SectionSettings(name="FILESET", action="execute", module="filesbackup", parameters={key: value})
    with pytest.raises(ConfigError) as raised:
        parse_options(FilesetOptions, section)
    text = str(raised.value)
    assert "FILESET" in text and key in text and words in text and "\n" not in text


def test_check_says_whether_the_state_folder_can_be_written(tmp_path):
    from ncbackup.sources.files import FilesSource

    options = FilesetOptions.model_validate({"FILESET_INCLUDE": str(tmp_path), "INCREMENTAL": "yes"})
    good = FilesSource(options, state_folder=tmp_path / "state").check()[-1]
    assert good.ok and "state folder" in good.text and "will be created" in good.text
    (tmp_path / "blocker").write_text("a file where the folder's parent should be")
    bad = FilesSource(options, state_folder=tmp_path / "blocker" / "state").check()[-1]
    assert not bad.ok and "is not a folder" in bad.text
    plain = FilesetOptions.model_validate({"FILESET_INCLUDE": str(tmp_path)})
    assert not any("state folder" in line.text for line in FilesSource(plain).check())


def test_full_when_the_clock_went_back_before_the_last_set():
    decision = _decide(now=datetime(2026, 11, 3, 1, 0, tzinfo=timezone.utc))
    assert not decision.is_incremental and "clock is behind" in (decision.reason or "")
    assert _decide(now=datetime(2026, 11, 3, 2, 0, tzinfo=timezone.utc)).is_incremental   # same second: id gets -2
