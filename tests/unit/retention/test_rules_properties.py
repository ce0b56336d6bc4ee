"""Properties of decide() over random two-year histories and random rules (hypothesis)."""

from __future__ import annotations

import calendar
import zoneinfo
from datetime import date, datetime, timedelta, timezone, tzinfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncbackup.retention.rules import Candidate, Decision, Kind, Period, Rules, decide, removal_rounds
from ncbackup.setformat import set_id_for

UTC = timezone.utc
START = datetime(2025, 1, 1, tzinfo=UTC)
SPAN_DAYS = 2 * 365


def _zones() -> list[tzinfo]:
    zones: list[tzinfo] = [UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-5, minutes=-30))]
    for name in ("Europe/Berlin", "America/New_York", "Australia/Sydney"):
        try:
            zones.append(zoneinfo.ZoneInfo(name))
        except zoneinfo.ZoneInfoNotFoundError:
            pass  # the fixed offsets still cover the arithmetic
    return zones


KIND_WEIGHTS = [Kind.WHOLE] * 6 + [Kind.PARTIAL, Kind.INCOMPLETE, Kind.FOREIGN]


@st.composite
def histories(draw: st.DrawFn) -> list[Candidate]:
    """Runs of backups (one to three a day, sometimes skipping days) separated by gaps, over two years."""
    moments: set[datetime] = set()
    for _ in range(draw(st.integers(0, 6))):
        first_day = draw(st.integers(0, SPAN_DAYS - 1))
        length = draw(st.integers(1, 60))
        per_day = draw(st.integers(1, 3))
        skip_every = draw(st.sampled_from([0, 0, 3, 5]))
        minute = draw(st.integers(0, 24 * 60 - 1))
        for day in range(first_day, min(first_day + length, SPAN_DAYS)):
            if skip_every and day % skip_every == 0:
                continue
            for run in range(per_day):
                moments.add(START + timedelta(days=day, minutes=(minute + run * 7 * 60) % (24 * 60)))
    for offset in draw(st.lists(st.integers(0, SPAN_DAYS * 24 * 60), max_size=15)):
        moments.add(START + timedelta(minutes=offset))
    # Per-set details come from one seeded generator: drawing them one by one makes hypothesis slow.
    chance = draw(st.randoms(use_true_random=False))
    candidates: list[Candidate] = []
    chain: tuple[str, ...] = ()        # the chain the next incremental set extends (as a manifest lists it)
    for moment in sorted(moments):
        kind = chance.choice(KIND_WEIGHTS)
        depends_on: tuple[str, ...] = ()
        roll = chance.random()
        if kind is Kind.INCOMPLETE:
            pass                        # no manifest: nothing known of a chain
        elif candidates and roll < 0.05:
            depends_on = (chance.choice(candidates).set_id,)   # odd data: any older set
        elif chain and roll < 0.7 and len(chain) <= 13:
            depends_on = chain          # an incremental on the last set
        if kind is not Kind.INCOMPLETE:
            chain = (*depends_on, set_id_for(moment)) if depends_on == chain else (set_id_for(moment),)
        locked_until = None
        if chance.random() < 0.05:
            locked_until = moment + timedelta(days=chance.randint(1, 400))
        note = "made by host other" if kind is Kind.FOREIGN else None
        candidates.append(Candidate(set_id_for(moment), moment, kind, depends_on=depends_on,
                                    locked_until=locked_until, note=note))
    chance.shuffle(candidates)
    return candidates


def _maybe_period(high: int, day_high: int | None = None) -> st.SearchStrategy[Period | None]:
    day = st.none() if day_high is None else st.none() | st.integers(1, day_high)
    return st.none() | st.builds(Period, number=st.integers(0, high), day=day)


RULES = st.builds(
    Rules,
    last=st.none() | st.integers(0, 10),
    hourly=_maybe_period(30),
    daily=_maybe_period(14),
    weekly=_maybe_period(8, 7),
    monthly=_maybe_period(12, 31),
    yearly=_maybe_period(3),
    within=st.none() | st.sampled_from([timedelta(hours=12), timedelta(days=14), timedelta(days=90)]),
    incomplete_after=st.sampled_from([timedelta(hours=24), timedelta(hours=1), timedelta(days=30)]),
)

CASES = st.tuples(histories(), RULES, st.sampled_from(_zones()), st.integers(0, 24 * 60 * 40), st.booleans())
BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def case_decisions(case: tuple[list[Candidate], Rules, tzinfo, int, bool]) -> tuple[list[Decision], datetime]:
    candidates, rules, tz, minutes_after, may_remove_incomplete = case
    newest = max((item.started_at for item in candidates), default=START)
    now = newest + timedelta(minutes=minutes_after)
    return decide(candidates, rules, now=now, tz=tz, may_remove_incomplete=may_remove_incomplete), now


def _newest_whole(candidates: list[Candidate]) -> Candidate | None:
    whole = [item for item in candidates if item.kind is Kind.WHOLE]
    return max(whole, key=lambda item: (item.started_at, item.set_id), default=None)


def check_the_newest_whole_set_always_survives(case, decisions, now):
    newest = _newest_whole(case[0])
    if newest is not None:
        decision = next(item for item in decisions if item.set_id == newest.set_id)
        assert decision.keep and "newest complete" in decision.reasons


def check_every_decision_gives_its_reasons(case, decisions, now):
    assert [item.set_id for item in decisions] == [item.set_id for item in case[0]]
    for item in decisions:
        assert item.reasons
        if item.keep:
            assert not any(text.startswith("remove") for text in item.reasons), item
        else:
            assert all(text.startswith("remove") for text in item.reasons), item


def check_no_foreign_set_is_ever_removed(case, decisions, now):
    assert all(item.keep for item in decisions if item.candidate and item.candidate.kind is Kind.FOREIGN)


def check_nothing_is_removed_unless_a_whole_set_newer_than_every_removal_remains(case, decisions, now):
    gone = [item.candidate for item in decisions if not item.keep and item.candidate]
    if gone:
        newest = _newest_whole(case[0])
        assert newest is not None
        assert all(item.started_at < newest.started_at for item in gone)
        assert next(item for item in decisions if item.set_id == newest.set_id).keep


def check_a_kept_set_keeps_everything_it_depends_on(case, decisions, now):
    kept_ids = {item.set_id for item in decisions if item.keep}
    for item in decisions:
        if item.keep and item.candidate:
            assert set(item.candidate.depends_on) <= kept_ids


def check_a_kept_parent_says_whose_parent_it_is(case, decisions, now):
    by_id = {item.set_id: item for item in decisions}
    # When nothing may be removed (no complete set newer than the removals), every set says only that.
    guarded = any(reason.startswith("no complete set is newer") for item in decisions for reason in item.reasons)
    for item in decisions:
        if item.keep and item.candidate and item.candidate.depends_on and not guarded:
            parent = by_id.get(item.candidate.depends_on[-1])
            if parent is not None and parent.set_id != item.set_id:
                assert f"kept: parent of {item.set_id}" in parent.reasons, (parent, item)


def check_removal_in_rounds_never_leaves_a_set_whose_chain_lost_a_set(case, decisions, now):
    rounds = removal_rounds(decisions)
    assert sorted(set_id for chosen in rounds for set_id in chosen) == sorted(d.set_id for d in decisions if not d.keep)
    depends_on = {item.set_id: set(item.candidate.depends_on) - {item.set_id} for item in decisions if item.candidate}
    for chosen in rounds:   # one batch, deleted in any order: no set in it may need another in it
        assert not any(depends_on.get(set_id, set()) & set(chosen) for set_id in chosen), chosen
    removed: set[str] = set()
    for chosen in rounds:   # a prune interrupted after any round
        removed.update(chosen)
        for item in decisions:
            if item.set_id not in removed and item.candidate:
                assert not removed & (set(item.candidate.depends_on) - {item.set_id}), item


def check_deciding_again_on_the_survivors_removes_nothing_more(case, decisions, now):
    candidates, rules, tz, _, may_remove_incomplete = case
    survivors = [item.candidate for item in decisions if item.keep and item.candidate]
    again = decide(survivors, rules, now=now, tz=tz, may_remove_incomplete=may_remove_incomplete)
    assert [item.set_id for item in again if not item.keep] == []


def check_incomplete_sets_go_only_when_old_and_no_run_holds_the_lock(case, decisions, now):
    candidates, rules, _, _, may_remove_incomplete = case
    for item in decisions:
        if not item.keep and item.candidate and item.candidate.kind is Kind.INCOMPLETE:
            assert may_remove_incomplete and now - item.candidate.started_at > rules.incomplete_after


def check_no_locked_set_is_removed(case, decisions, now):
    for item in decisions:
        if not item.keep and item.candidate and item.candidate.locked_until is not None:
            assert item.candidate.locked_until <= now


# Every invariant is checked on the same random cases: drawing a two-year history is the slow part.
INVARIANTS = (
    check_the_newest_whole_set_always_survives,
    check_every_decision_gives_its_reasons,
    check_no_foreign_set_is_ever_removed,
    check_nothing_is_removed_unless_a_whole_set_newer_than_every_removal_remains,
    check_a_kept_set_keeps_everything_it_depends_on,
    check_a_kept_parent_says_whose_parent_it_is,
    check_removal_in_rounds_never_leaves_a_set_whose_chain_lost_a_set,
    check_deciding_again_on_the_survivors_removes_nothing_more,
    check_incomplete_sets_go_only_when_old_and_no_run_holds_the_lock,
    check_no_locked_set_is_removed,
)


@BOUNDED
@given(CASES)
def test_every_invariant_holds_on_random_histories_and_rules(case):
    decisions, now = case_decisions(case)
    for check in INVARIANTS:
        check(case, decisions, now)


# --------------------------------------------------------------------------------------------------
# Oracles: what docs/retention.md says WEEKLY and MONTHLY with DAY keep, computed the slow, plain way


def _weekly_oracle(candidates: list[Candidate], number: int, weekday: int, tz: tzinfo) -> dict[str, str]:
    """For each of the last number ISO weeks that have one: the first WHOLE set made on or after weekday."""
    firsts: dict[date, Candidate] = {}
    for item in candidates:
        if item.kind is not Kind.WHOLE:
            continue
        local_day = item.started_at.astimezone(tz).date()
        monday = local_day - timedelta(days=local_day.weekday())
        if local_day < monday + timedelta(days=weekday - 1):
            continue
        best = firsts.get(monday)
        if best is None or (item.started_at, item.set_id) < (best.started_at, best.set_id):
            firsts[monday] = item
    weeks = sorted(firsts, reverse=True)[:number]
    return {firsts[week].set_id: f"weekly {index}/{number}" for index, week in enumerate(weeks, start=1)}


def _monthly_oracle(candidates: list[Candidate], number: int, day: int, tz: tzinfo) -> dict[str, str]:
    firsts: dict[tuple[int, int], Candidate] = {}
    for item in candidates:
        if item.kind is not Kind.WHOLE:
            continue
        local = item.started_at.astimezone(tz)
        days_in_month = calendar.monthrange(local.year, local.month)[1]
        if local.day < min(day, days_in_month):
            continue
        best = firsts.get((local.year, local.month))
        if best is None or (item.started_at, item.set_id) < (best.started_at, best.set_id):
            firsts[(local.year, local.month)] = item
    months = sorted(firsts, reverse=True)[:number]
    return {firsts[month].set_id: f"monthly {index}/{number}" for index, month in enumerate(months, start=1)}


def _rule_reasons(decisions: list[Decision], name: str) -> dict[str, str]:
    return {item.set_id: text for item in decisions for text in item.reasons if text.startswith(f"{name} ")}


@BOUNDED
@given(histories(), st.integers(1, 8), st.integers(1, 7), st.sampled_from(_zones()))
def test_weekly_with_day_keeps_the_set_the_docs_describe(candidates, number, weekday, tz):
    now = max((item.started_at for item in candidates), default=START)
    decisions = decide(candidates, Rules(weekly=Period(number, day=weekday)), now=now, tz=tz)
    assert _rule_reasons(decisions, "weekly") == _weekly_oracle(candidates, number, weekday, tz)


@BOUNDED
@given(histories(), st.integers(1, 12), st.integers(1, 31), st.sampled_from(_zones()))
def test_monthly_with_day_keeps_the_set_the_docs_describe(candidates, number, day, tz):
    now = max((item.started_at for item in candidates), default=START)
    decisions = decide(candidates, Rules(monthly=Period(number, day=day)), now=now, tz=tz)
    assert _rule_reasons(decisions, "monthly") == _monthly_oracle(candidates, number, day, tz)
