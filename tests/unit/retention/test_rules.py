"""The rule engine on small, hand-made histories: each rule family, each safety rule, the calendar corners."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta, timezone

import pytest

from ncbackup.retention.rules import (
    Candidate,
    Decision,
    Kind,
    Period,
    Rules,
    decide,
    format_within,
    parse_within,
)
from ncbackup.setformat import set_id_for
from tests.support import need

UTC = timezone.utc
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(year: int, month: int, day: int, hour: int = 2, minute: int = 0, tz: object = UTC) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz).astimezone(UTC)  # type: ignore[arg-type]


def whole(moment: datetime, **fields: object) -> Candidate:
    return Candidate(set_id_for(moment), moment, Kind.WHOLE, **fields)  # type: ignore[arg-type]


def of(kind: Kind, moment: datetime, **fields: object) -> Candidate:
    return Candidate(set_id_for(moment), moment, kind, **fields)  # type: ignore[arg-type]


def daily_history(first: datetime, days: int) -> list[Candidate]:
    return [whole(first + timedelta(days=index)) for index in range(days)]


def by_id(decisions: list[Decision]) -> dict[str, Decision]:
    return {item.set_id: item for item in decisions}


def kept(decisions: list[Decision]) -> list[str]:
    return [item.set_id for item in decisions if item.keep]


def removed(decisions: list[Decision]) -> list[str]:
    return [item.set_id for item in decisions if not item.keep]


def reasons_of(decisions: list[Decision], moment: datetime) -> tuple[str, ...]:
    return by_id(decisions)[set_id_for(moment)].reasons


# --------------------------------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize(("text", "span"), [
    ("14d", timedelta(days=14)), ("6w", timedelta(weeks=6)), ("1y", timedelta(days=365)),
    ("12h", timedelta(hours=12)), ("3m", timedelta(days=90)), ("1y6m", timedelta(days=545)), (" 2D ", timedelta(days=2)),
])
def test_parse_within_reads_the_documented_units(text, span):
    assert parse_within(text) == span


@pytest.mark.parametrize("text", ["", "14", "d", "14x", "-1d", "0d", "1.5d", "14d junk", "99999999999y"])
def test_parse_within_rejects_anything_else_with_a_sentence_naming_the_units(text):
    with pytest.raises(ValueError, match=r"duration"):
        parse_within(text)


@pytest.mark.parametrize(("text", "shown"), [("14d", "14d"), ("6w", "42d"), ("1y", "1y"), ("12h", "12h"), ("36h", "36h"),
                                             ("3m", "90d"), ("2y", "2y")])
def test_format_within_shows_days_and_reads_back(text, shown):
    assert format_within(parse_within(text)) == shown
    assert parse_within(shown) == parse_within(text)


# --------------------------------------------------------------------------------------------------
# The rule families


def test_decisions_come_one_per_candidate_in_the_given_order():
    history = daily_history(at(2026, 11, 1), 10)
    shuffled = history[3:] + history[:3]
    decisions = decide(shuffled, Rules(daily=Period(3)), now=NOW, tz=UTC)
    assert [item.set_id for item in decisions] == [item.set_id for item in shuffled]
    assert all(item.candidate is source for item, source in zip(decisions, shuffled, strict=True))


def test_last_keeps_the_n_newest_whole_sets():
    history = daily_history(at(2026, 11, 1), 10)
    decisions = decide(history, Rules(last=3), now=NOW, tz=UTC)
    assert kept(decisions) == [item.set_id for item in history[-3:]]
    assert by_id(decisions)[history[-1].set_id].reasons == ("newest complete", "last 1/3")
    assert by_id(decisions)[history[-3].set_id].reasons == ("last 3/3",)
    assert by_id(decisions)[history[0].set_id].reasons == ("remove: no rule keeps it",)


def test_daily_keeps_the_newest_set_of_each_of_the_last_n_days_that_have_one():
    history = [whole(at(2026, 11, day, hour)) for day in (20, 21, 23, 24) for hour in (2, 14)]
    decisions = decide(history, Rules(daily=Period(3)), now=NOW, tz=UTC)
    # The 22nd has no set: it does not count, so the 21st is the third day.
    assert kept(decisions) == [set_id_for(at(2026, 11, day, 14)) for day in (21, 23, 24)]
    assert reasons_of(decisions, at(2026, 11, 21, 14)) == ("daily 3/3",)


def test_hourly_keeps_the_newest_set_of_each_hour():
    history = [whole(at(2026, 11, 29, hour, minute)) for hour in (8, 9, 10) for minute in (0, 30)]
    decisions = decide(history, Rules(hourly=Period(2)), now=NOW, tz=UTC)
    assert kept(decisions) == [set_id_for(at(2026, 11, 29, 9, 30)), set_id_for(at(2026, 11, 29, 10, 30))]
    assert reasons_of(decisions, at(2026, 11, 29, 9, 30)) == ("hourly 2/2",)


def test_yearly_keeps_the_newest_set_of_each_year():
    history = [whole(at(year, month, 1)) for year in (2023, 2024, 2025, 2026) for month in (1, 6, 11)]
    decisions = decide(history, Rules(yearly=Period(3)), now=NOW, tz=UTC)
    assert kept(decisions) == [set_id_for(at(year, 11, 1)) for year in (2024, 2025, 2026)]
    assert reasons_of(decisions, at(2024, 11, 1)) == ("yearly 3/3",)


def test_weekly_with_day_keeps_the_first_set_on_or_after_that_weekday():
    # 2026-11-02 and 2026-11-09 are Mondays.
    history = daily_history(at(2026, 11, 2), 14)
    decisions = decide(history, Rules(weekly=Period(2, day=3)), now=NOW, tz=UTC)
    assert reasons_of(decisions, at(2026, 11, 4)) == ("weekly 2/2",)      # Wednesday
    assert reasons_of(decisions, at(2026, 11, 11)) == ("weekly 1/2",)
    assert kept(decisions) == [set_id_for(at(2026, 11, day)) for day in (4, 11, 15)]


def test_weekly_with_day_covers_a_failed_monday_by_tuesdays_set():
    history = daily_history(at(2026, 11, 2), 14)
    failed_monday = at(2026, 11, 9)
    history = [of(Kind.PARTIAL, failed_monday) if item.started_at == failed_monday else item for item in history]
    decisions = decide(history, Rules(weekly=Period(2, day=1)), now=NOW, tz=UTC)
    assert reasons_of(decisions, at(2026, 11, 10)) == ("weekly 1/2",)     # Tuesday stands in
    assert reasons_of(decisions, at(2026, 11, 2)) == ("weekly 2/2",)
    assert reasons_of(decisions, failed_monday) == ("remove: partial, older than the newest complete set",)


def test_weekly_without_day_keeps_the_newest_set_of_the_week():
    history = daily_history(at(2026, 11, 2), 13)                          # up to Saturday the 14th
    decisions = decide(history, Rules(weekly=Period(2)), now=NOW, tz=UTC)
    assert reasons_of(decisions, at(2026, 11, 8)) == ("weekly 2/2",)      # Sunday
    assert reasons_of(decisions, at(2026, 11, 14)) == ("newest complete", "weekly 1/2")


def test_a_week_with_no_set_on_or_after_day_does_not_count():
    # Week of the 9th: only Monday and Tuesday; DAY 5 (Friday) finds nothing there.
    history = daily_history(at(2026, 11, 2), 9)
    decisions = decide(history, Rules(weekly=Period(2, day=5)), now=NOW, tz=UTC)
    assert reasons_of(decisions, at(2026, 11, 6)) == ("weekly 1/2",)
    assert [item.reasons for item in decisions if any(text.startswith("weekly") for text in item.reasons)] == [
        ("weekly 1/2",)]


def test_monthly_day_31_means_the_last_day_of_february():
    history = [whole(at(2026, month, day)) for month in (1, 2, 3) for day in (1, 15, 27, 28)]
    history += [whole(at(2026, 1, 31)), whole(at(2026, 3, 31))]
    decisions = decide(history, Rules(monthly=Period(3, day=31)), now=NOW, tz=UTC)
    assert reasons_of(decisions, at(2026, 1, 31)) == ("monthly 3/3",)
    assert reasons_of(decisions, at(2026, 2, 28)) == ("monthly 2/3",)     # 2026 is no leap year
    assert reasons_of(decisions, at(2026, 3, 31)) == ("newest complete", "monthly 1/3")


def test_monthly_with_day_keeps_the_first_set_on_or_after_that_day():
    history = [whole(at(2026, month, day)) for month in (9, 10, 11) for day in (1, 3, 10, 20)]
    decisions = decide(history, Rules(monthly=Period(2, day=2)), now=NOW, tz=UTC)
    assert reasons_of(decisions, at(2026, 10, 3)) == ("monthly 2/2",)
    assert reasons_of(decisions, at(2026, 11, 3)) == ("monthly 1/2",)


def test_within_counts_back_from_the_newest_whole_set_not_from_now():
    history = daily_history(at(2025, 1, 1), 30)                            # backups stopped long ago
    decisions = decide(history, Rules(within=timedelta(days=7)), now=NOW, tz=UTC)
    assert kept(decisions) == [item.set_id for item in history[-8:]]
    assert reasons_of(decisions, at(2025, 1, 23)) == ("within 7d",)


def test_a_set_kept_by_several_rules_names_them_all():
    history = daily_history(at(2026, 11, 2), 14)
    decisions = decide(history, Rules(last=1, daily=Period(2), weekly=Period(1, day=7)), now=NOW, tz=UTC)
    assert reasons_of(decisions, at(2026, 11, 15)) == ("newest complete", "last 1/1", "daily 1/2", "weekly 1/1")


def test_days_are_counted_in_the_given_zone():
    tokyo = timezone(timedelta(hours=9))
    # 16:00 UTC on the 28th is 01:00 on the 29th in Tokyo.
    history = [whole(at(2026, 11, 28, 10)), whole(at(2026, 11, 28, 16))]
    assert kept(decide(history, Rules(daily=Period(2)), now=NOW, tz=UTC)) == [history[1].set_id]
    assert kept(decide(history, Rules(daily=Period(2)), now=NOW, tz=tokyo)) == [item.set_id for item in history]


def test_daily_follows_local_days_across_a_daylight_saving_change():
    try:
        berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    except zoneinfo.ZoneInfoNotFoundError:
        need(False, "the time zone database (tzdata) is not installed")
    # Clocks go back on 2026-10-25 at 03:00 CEST. Sets at 00:30, 01:30 and 23:30 local each day: the first
    # two fall on the day before in UTC (22:30/23:30 UTC in summer, 23:30/00:30 in winter).
    history = [whole(at(2026, 10, day, hour, 30, tz=berlin)) for day in range(22, 28) for hour in (0, 1, 23)]
    decisions = decide(history, Rules(daily=Period(6)), now=NOW, tz=berlin)
    assert kept(decisions) == [set_id_for(at(2026, 10, day, 23, 30, tz=berlin)) for day in range(22, 28)]
    in_utc = kept(decide(history, Rules(daily=Period(6)), now=NOW, tz=UTC))
    assert in_utc != kept(decisions)


def test_hourly_tells_apart_the_two_hours_of_the_night_clocks_go_back():
    try:
        berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    except zoneinfo.ZoneInfoNotFoundError:
        need(False, "the time zone database (tzdata) is not installed")
    # 00:30 and 01:30 UTC on 2026-10-25 are both 02:30 local (CEST, then CET).
    history = [whole(datetime(2026, 10, 25, 0, 30, tzinfo=UTC)), whole(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))]
    assert kept(decide(history, Rules(hourly=Period(2)), now=NOW, tz=berlin)) == [item.set_id for item in history]


# --------------------------------------------------------------------------------------------------
# Safety rules


def test_the_newest_whole_set_survives_even_last_zero_and_no_rule():
    history = daily_history(at(2026, 11, 1), 5)
    for rules in (Rules(last=0), Rules(), Rules(daily=Period(0))):
        decisions = decide(history, rules, now=NOW, tz=UTC)
        assert kept(decisions) == [history[-1].set_id]
        assert by_id(decisions)[history[-1].set_id].reasons == ("newest complete",)


def test_the_newest_whole_set_survives_rules_that_pick_older_sets_only():
    history = daily_history(at(2026, 11, 1), 9)                            # the 9th is a Monday
    decisions = decide(history, Rules(weekly=Period(1, day=7)), now=NOW, tz=UTC)
    assert by_id(decisions)[history[-1].set_id].reasons == ("newest complete",)


def test_partial_sets_are_kept_only_while_newer_than_the_newest_whole_set():
    history = daily_history(at(2026, 11, 20), 3)
    older, newer = of(Kind.PARTIAL, at(2026, 11, 21, 5)), of(Kind.PARTIAL, at(2026, 11, 23))
    decisions = decide([*history, older, newer], Rules(last=5), now=NOW, tz=UTC)
    assert by_id(decisions)[newer.set_id].reasons == ("partial, newer than the newest complete set",)
    assert by_id(decisions)[older.set_id].reasons == ("remove: partial, older than the newest complete set",)
    assert not by_id(decisions)[older.set_id].keep
    # A rule never picks a partial set, even when it has room.
    assert all("last" not in text for text in by_id(decisions)[newer.set_id].reasons)


def test_incomplete_sets_go_only_when_older_than_the_limit():
    history = daily_history(at(2026, 11, 26), 4)                           # newest: the 29th 02:00
    old = of(Kind.INCOMPLETE, at(2026, 11, 27, 3))
    young = of(Kind.INCOMPLETE, at(2026, 11, 29, 1))                       # 35 h old
    rules = Rules(last=1, incomplete_after=timedelta(hours=36))
    decisions = decide([*history, old, young], rules, now=NOW, tz=UTC)
    assert by_id(decisions)[young.set_id].reasons == ("incomplete, younger than 36 h",)
    assert by_id(decisions)[old.set_id].reasons == ("remove: incomplete, older than 36 h",)
    default = decide([*history, old, young], Rules(last=1), now=NOW, tz=UTC)
    assert not by_id(default)[young.set_id].keep
    assert by_id(default)[young.set_id].reasons == ("remove: incomplete, older than 24 h",)


def test_incomplete_sets_stay_while_a_run_holds_the_lock():
    history = daily_history(at(2026, 11, 26), 4)
    old = of(Kind.INCOMPLETE, at(2026, 11, 27, 3))
    decisions = decide([*history, old], Rules(last=1), now=NOW, tz=UTC, may_remove_incomplete=False)
    assert by_id(decisions)[old.set_id].keep
    assert by_id(decisions)[old.set_id].reasons == ("incomplete, a run holds the lock",)
    assert not by_id(decisions)[history[0].set_id].keep                    # the rest is pruned as usual


def test_foreign_sets_are_never_removed_and_say_why():
    history = daily_history(at(2026, 11, 20), 5)
    alien = of(Kind.FOREIGN, at(2026, 11, 1), note="made by host db2")
    unsigned = of(Kind.FOREIGN, at(2026, 11, 2))
    decisions = decide([*history, alien, unsigned], Rules(last=1), now=NOW, tz=UTC)
    assert by_id(decisions)[alien.set_id] == Decision(alien.set_id, True, ("made by host db2",))
    assert by_id(decisions)[unsigned.set_id].reasons == ("foreign",)


def test_nothing_is_removed_without_a_whole_set_newer_than_every_removal():
    # The newest set to remove, an incomplete one, is newer than the newest whole set.
    history = daily_history(at(2026, 11, 20), 5)                           # newest whole: the 24th
    stale = of(Kind.INCOMPLETE, at(2026, 11, 25))
    decisions = decide([*history, stale], Rules(last=1), now=NOW, tz=UTC)
    assert removed(decisions) == []
    guard = f"no complete set is newer than {stale.set_id}: nothing is removed"
    assert by_id(decisions)[stale.set_id].reasons == (guard,)
    assert by_id(decisions)[history[0].set_id].reasons == (guard,)
    assert by_id(decisions)[history[-1].set_id].reasons == ("newest complete", "last 1/1")


def test_a_set_made_in_the_same_second_as_the_newest_whole_set_is_not_older():
    moment = at(2026, 11, 28)
    leftover = Candidate(set_id_for(moment), moment, Kind.INCOMPLETE)
    newest = Candidate(set_id_for(moment, taken=[leftover.set_id]), moment, Kind.WHOLE)     # "...Z-2"
    decisions = decide([whole(at(2026, 11, 20)), leftover, newest], Rules(last=1), now=NOW, tz=UTC)
    assert removed(decisions) == []
    assert by_id(decisions)[leftover.set_id].reasons == (
        f"no complete set is newer than {leftover.set_id}: nothing is removed",)


def test_nothing_is_removed_when_there_is_no_whole_set():
    sets = [of(Kind.PARTIAL, at(2026, 11, 1)), of(Kind.INCOMPLETE, at(2026, 11, 2)), of(Kind.FOREIGN, at(2026, 11, 3))]
    decisions = decide(sets, Rules(last=1), now=NOW, tz=UTC)
    assert removed(decisions) == []
    assert decisions[1].reasons == (f"no complete set is newer than {sets[1].set_id}: nothing is removed",)


def test_no_sets_no_decisions():
    assert decide([], Rules(last=1), now=NOW, tz=UTC) == []


# --------------------------------------------------------------------------------------------------
# Chains and Object Lock


def test_a_kept_set_keeps_the_sets_it_depends_on_transitively():
    full = whole(at(2026, 11, 1))
    first = whole(at(2026, 11, 2), depends_on=(full.set_id,))
    second = whole(at(2026, 11, 3), depends_on=(full.set_id, first.set_id))   # a manifest's chain: oldest first
    unrelated = whole(at(2026, 10, 30))
    decisions = decide([unrelated, full, first, second], Rules(last=1), now=NOW, tz=UTC)
    assert kept(decisions) == [full.set_id, first.set_id, second.set_id]
    assert by_id(decisions)[first.set_id].reasons == (f"kept: parent of {second.set_id}",)
    assert by_id(decisions)[full.set_id].reasons == (f"kept: parent of {first.set_id}",)
    assert by_id(decisions)[unrelated.set_id].reasons == ("remove: no rule keeps it",)


def test_a_chain_goes_only_as_a_whole_when_nothing_keeps_its_tip():
    full = whole(at(2026, 11, 1))
    increment = whole(at(2026, 11, 2), depends_on=(full.set_id,))
    newest = whole(at(2026, 11, 5))
    decisions = decide([full, increment, newest], Rules(last=1), now=NOW, tz=UTC)
    assert removed(decisions) == [full.set_id, increment.set_id]


def test_a_set_kept_by_a_rule_also_says_whose_parent_it_is():
    full = whole(at(2026, 11, 1))
    increment = whole(at(2026, 11, 2), depends_on=(full.set_id,))
    decisions = decide([full, increment], Rules(last=2), now=NOW, tz=UTC)
    assert by_id(decisions)[full.set_id].reasons == ("last 2/2", f"kept: parent of {increment.set_id}")


def test_a_set_needed_only_through_a_longer_chain_says_so():
    # The middle set of the chain is gone (pruned elsewhere, or never uploaded here): the full is still needed.
    full = whole(at(2026, 11, 1))
    second = whole(at(2026, 11, 3), depends_on=(full.set_id, set_id_for(at(2026, 11, 2))))
    decisions = decide([full, second], Rules(last=1), now=NOW, tz=UTC)
    assert by_id(decisions)[full.set_id].keep
    assert by_id(decisions)[full.set_id].reasons == (f"kept: in the chain of {second.set_id}",)


def test_a_partial_set_newer_than_the_newest_complete_keeps_its_chain():
    full = whole(at(2026, 11, 1))
    increment = whole(at(2026, 11, 2), depends_on=(full.set_id,))
    partial = of(Kind.PARTIAL, at(2026, 11, 3), depends_on=(full.set_id, increment.set_id))
    decisions = decide([whole(at(2026, 10, 1)), full, increment, partial], Rules(last=1), now=NOW, tz=UTC)
    assert kept(decisions) == [full.set_id, increment.set_id, partial.set_id]
    assert by_id(decisions)[increment.set_id].reasons == ("newest complete", "last 1/1", f"kept: parent of {partial.set_id}")


def test_a_locked_set_is_kept_until_its_lock_expires():
    history = daily_history(at(2026, 11, 20), 5)
    locked = whole(at(2026, 11, 19), locked_until=NOW + timedelta(days=3))
    expired = whole(at(2026, 11, 18), locked_until=NOW - timedelta(seconds=1))
    decisions = decide([*history, locked, expired], Rules(last=1), now=NOW, tz=UTC)
    assert by_id(decisions)[locked.set_id].reasons == ("object lock until 2026-12-03 12:00:00 UTC",)
    assert by_id(decisions)[locked.set_id].keep
    assert not by_id(decisions)[expired.set_id].keep


def test_a_locked_set_keeps_what_it_depends_on():
    full = whole(at(2026, 11, 1))
    increment = whole(at(2026, 11, 2), depends_on=(full.set_id,), locked_until=NOW + timedelta(days=1))
    decisions = decide([full, increment, whole(at(2026, 11, 5))], Rules(last=1), now=NOW, tz=UTC)
    assert by_id(decisions)[full.set_id].reasons == (f"kept: parent of {increment.set_id}",)


def test_decide_reads_no_clock():
    history = daily_history(at(2020, 1, 1), 3) + [of(Kind.INCOMPLETE, at(2020, 1, 1, 5))]
    assert decide(history, Rules(last=1), now=at(2020, 1, 1, 6), tz=UTC) == decide(
        history, Rules(last=1), now=at(2020, 1, 1, 6), tz=UTC)
    assert by_id(decide(history, Rules(last=1), now=at(2020, 1, 1, 6), tz=UTC))[history[-1].set_id].reasons == (
        "incomplete, younger than 24 h",)
