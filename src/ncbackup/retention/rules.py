"""The pure retention rule engine: sets + rules + now -> a decision with reasons for every set.

Nothing here lists, reads or deletes: ``prune.py`` turns what a storage holds into ``Candidate``s
and acts on the ``Decision``s. The semantics are those of docs/retention.md; a test holds the two
together.
"""

from __future__ import annotations

import calendar
import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo


class Kind(str, enum.Enum):
    """What a set is, for retention."""

    WHOLE = "whole"            # complete (signature verifies, fields valid) and every stream ok: rules pick these
    PARTIAL = "partial"        # complete, but some stream failed
    INCOMPLETE = "incomplete"  # no manifest or no signature: a run that did not finish (or is still running)
    FOREIGN = "foreign"        # unsigned, untrusted, damaged, or made by another host: never removed


@dataclass(frozen=True)
class Candidate:
    set_id: str
    started_at: datetime                 # aware (UTC); the set id's time
    kind: Kind
    size_bytes: int = 0
    depends_on: tuple[str, ...] = ()     # set ids this set needs to be restored (incremental chains)
    locked_until: datetime | None = None # S3 Object Lock retain-until of the set, when known
    note: str | None = None              # why a FOREIGN set is foreign, shown as its reason


@dataclass(frozen=True)
class Period:
    number: int
    day: int | None = None               # WEEKLY: ISO weekday 1-7; MONTHLY: day of month 1-31


@dataclass(frozen=True)
class Rules:
    last: int | None = None
    hourly: Period | None = None
    daily: Period | None = None
    weekly: Period | None = None
    monthly: Period | None = None
    yearly: Period | None = None
    within: timedelta | None = None
    incomplete_after: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class Decision:
    set_id: str
    keep: bool
    reasons: tuple[str, ...]             # every rule that keeps it ("daily 3/7", "newest complete"), or why it goes
    candidate: Candidate | None = field(default=None, compare=False)


PeriodKey = Callable[[datetime], tuple[object, ...]]
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# --------------------------------------------------------------------------------------------------
# Durations ("14d", "6w", "1y6m")

# A month is 30 days and a year 365 days: WITHIN is a span of time, not a calendar rule.
_UNIT_DAYS = {"h": 1 / 24, "d": 1, "w": 7, "m": 30, "y": 365}
_UNIT_NAMES = {"h": "hours", "d": "days", "w": "weeks", "m": "months (30 days)", "y": "years (365 days)"}
_DURATION_PART = re.compile(r"(\d+)([hdwmy])")


def parse_within(text: str) -> timedelta:
    """A WITHIN duration ("14d", "6w", "1y", "12h", "3m", or combined like "1y6m") as a timedelta; ValueError if unusable."""
    cleaned = str(text).strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(cleaned)
    if not cleaned or "".join(number + unit for number, unit in parts) != cleaned:
        units = ", ".join(f"{unit} = {name}" for unit, name in _UNIT_NAMES.items())
        raise ValueError(f'expected a duration such as "14d", "6w" or "1y" ({units})')
    try:
        total = sum((timedelta(days=int(number) * _UNIT_DAYS[unit]) for number, unit in parts), timedelta())
    except OverflowError:
        raise ValueError('expected a duration shorter than a million years, such as "14d"') from None
    if total <= timedelta():
        raise ValueError('expected a duration longer than zero, such as "14d"')
    return total


def format_within(span: timedelta) -> str:
    """How a WITHIN span is shown, read back by parse_within: 14 days -> "14d", 365 days -> "1y", 36 hours -> "36h"."""
    hours, remainder = divmod(span, timedelta(hours=1))
    if remainder or hours <= 0:
        return str(span)
    days, rest_hours = divmod(hours, 24)
    if rest_hours:
        return f"{hours}h"
    if days % 365 == 0:
        return f"{days // 365}y"
    return f"{days}d"


# --------------------------------------------------------------------------------------------------
# Periods: every set's place in the calendar of the zone tz


def _local(candidate: Candidate, tz: tzinfo | None) -> datetime:
    # astimezone(None) is the machine's local zone, with its daylight saving rules.
    return candidate.started_at.astimezone(tz)


def hour_key(moment: datetime) -> tuple[object, ...]:
    # The offset tells apart the two 02:00-03:00 hours of a night when clocks go back.
    return (moment.date(), moment.hour, moment.utcoffset())


def day_key(moment: datetime) -> tuple[object, ...]:
    return (moment.date(),)


def week_key(moment: datetime) -> tuple[object, ...]:
    year, week, _ = moment.isocalendar()
    return (year, week)


def month_key(moment: datetime) -> tuple[object, ...]:
    return (moment.year, moment.month)


def year_key(moment: datetime) -> tuple[object, ...]:
    return (moment.year,)


def _is_on_or_after_weekday(moment: datetime, day: int) -> bool:
    return moment.isoweekday() >= day


def _is_on_or_after_day_of_month(moment: datetime, day: int) -> bool:
    last_day = calendar.monthrange(moment.year, moment.month)[1]
    return moment.day >= min(day, last_day)


# --------------------------------------------------------------------------------------------------
# The rule families; each returns (set, reason) pairs for the WHOLE sets it keeps.

_Keeps = list[tuple[Candidate, str]]


def _order(candidate: Candidate) -> tuple[datetime, str]:
    return (candidate.started_at, candidate.set_id)


def keep_last(whole_newest_first: Sequence[Candidate], number: int) -> _Keeps:
    """The number newest WHOLE sets."""
    return [(item, f"last {index}/{number}") for index, item in enumerate(whole_newest_first[:number], start=1)]


def keep_per_period(
    whole_newest_first: Sequence[Candidate], *, name: str, number: int, key: PeriodKey, tz: tzinfo | None,
    qualifies: Callable[[datetime], bool] | None = None,
) -> _Keeps:
    """One set for each of the number newest periods that have one: the newest set of the period, or, when
    qualifies is given (WEEKLY/MONTHLY with DAY), the first set of the period that qualifies."""
    chosen: dict[tuple[object, ...], Candidate] = {}
    for item in whole_newest_first:
        moment = _local(item, tz)
        if qualifies is None:
            chosen.setdefault(key(moment), item)   # newest first: the first one seen is the newest
        elif qualifies(moment):
            chosen[key(moment)] = item             # newest first: the last one seen is the first made
    newest_periods = sorted(chosen.values(), key=_order, reverse=True)[:number]
    return [(item, f"{name} {index}/{number}") for index, item in enumerate(newest_periods, start=1)]


def keep_within(whole_newest_first: Sequence[Candidate], span: timedelta) -> _Keeps:
    """Every WHOLE set made within span before the newest WHOLE set (not before now: a server whose
    backups stopped keeps its history)."""
    if not whole_newest_first:
        return []
    since = whole_newest_first[0].started_at - span
    label = f"within {format_within(span)}"
    return [(item, label) for item in whole_newest_first if item.started_at >= since]


def _rule_keeps(whole_newest_first: Sequence[Candidate], rules: Rules, tz: tzinfo | None) -> _Keeps:
    keeps: _Keeps = []
    if rules.last:
        keeps += keep_last(whole_newest_first, rules.last)
    simple: tuple[tuple[str, Period | None, PeriodKey], ...] = (
        ("hourly", rules.hourly, hour_key), ("daily", rules.daily, day_key), ("yearly", rules.yearly, year_key),
    )
    for name, period, key in simple:
        if period and period.number:
            keeps += keep_per_period(whole_newest_first, name=name, number=period.number, key=key, tz=tz)
    if rules.weekly and rules.weekly.number:
        weekday = rules.weekly.day
        keeps += keep_per_period(
            whole_newest_first, name="weekly", number=rules.weekly.number, key=week_key, tz=tz,
            qualifies=None if weekday is None else lambda moment: _is_on_or_after_weekday(moment, weekday),
        )
    if rules.monthly and rules.monthly.number:
        day_of_month = rules.monthly.day
        keeps += keep_per_period(
            whole_newest_first, name="monthly", number=rules.monthly.number, key=month_key, tz=tz,
            qualifies=None if day_of_month is None else lambda moment: _is_on_or_after_day_of_month(moment, day_of_month),
        )
    if rules.within:
        keeps += keep_within(whole_newest_first, rules.within)
    return keeps


# --------------------------------------------------------------------------------------------------
# The decision

NEWEST_COMPLETE = "newest complete"
NO_RULE = "remove: no rule keeps it"
PARTIAL_NEWER = "partial, newer than the newest complete set"
PARTIAL_OLDER = "remove: partial, older than the newest complete set"
INCOMPLETE_HELD = "incomplete, a run holds the lock"
FOREIGN = "foreign"


def _hours_text(span: timedelta) -> str:
    return f"{span / timedelta(hours=1):g} h"


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _own_reasons(
    item: Candidate, newest_whole: Candidate | None, rules: Rules, *, now: datetime, may_remove_incomplete: bool,
) -> tuple[bool, str]:
    """(keep, reason) for a set that is not WHOLE: its kind alone decides."""
    if item.kind is Kind.FOREIGN:
        return True, item.note or FOREIGN
    if item.kind is Kind.PARTIAL:
        if newest_whole is None or _order(item) > _order(newest_whole):
            return True, PARTIAL_NEWER
        return False, PARTIAL_OLDER
    # INCOMPLETE: maybe a run that is still writing it; give it time, and never while a run holds the lock.
    limit = _hours_text(rules.incomplete_after)
    if now - item.started_at <= rules.incomplete_after:
        return True, f"incomplete, younger than {limit}"
    if not may_remove_incomplete:
        return True, INCOMPLETE_HELD
    return False, f"remove: incomplete, older than {limit}"


def parent_reason(child: str) -> str:
    """The reason a set is kept because a kept set is an incremental change against it."""
    return f"kept: parent of {child}"


def _keep_chains(reasons: dict[str, list[str]], keep: dict[str, bool], by_id: dict[str, Candidate]) -> None:
    """Every set a kept set depends on (transitively) is kept too: a chain goes only as a whole.

    A set is told "kept: parent of <child>" for each kept set whose parent it is; one kept only through a longer
    chain (its child missing, say) is told "kept: in the chain of <set id>"."""
    pending = [set_id for set_id, is_kept in keep.items() if is_kept]
    through_chain: dict[str, str] = {}
    while pending:
        set_id = pending.pop()
        depends_on = by_id[set_id].depends_on
        for needed in depends_on:
            if needed not in by_id or needed == set_id:
                continue
            if needed == depends_on[-1]:
                reason = parent_reason(set_id)
                if reason not in reasons[needed]:
                    reasons[needed].append(reason)
            else:
                through_chain.setdefault(needed, set_id)
            if not keep[needed]:
                keep[needed] = True
                reasons[needed] = [text for text in reasons[needed] if not text.startswith("remove")]
                pending.append(needed)
    for needed, child in through_chain.items():
        if not reasons[needed]:
            reasons[needed].append(f"kept: in the chain of {child}")


def decide(
    candidates: Sequence[Candidate], rules: Rules, *, now: datetime, tz: tzinfo | None = None,
    may_remove_incomplete: bool = True,
) -> list[Decision]:
    """One decision per candidate, in the candidates' order. tz: the zone days/weeks/months are counted
    in (None: the machine's local zone). may_remove_incomplete is False while a run holds the lock."""
    by_id = {item.set_id: item for item in candidates}
    whole = sorted((item for item in by_id.values() if item.kind is Kind.WHOLE), key=_order, reverse=True)
    newest_whole = whole[0] if whole else None

    reasons: dict[str, list[str]] = {set_id: [] for set_id in by_id}
    keep: dict[str, bool] = dict.fromkeys(by_id, False)
    if newest_whole is not None:
        keep[newest_whole.set_id] = True
        reasons[newest_whole.set_id].append(NEWEST_COMPLETE)
    for item, reason in _rule_keeps(whole, rules, tz):
        keep[item.set_id] = True
        reasons[item.set_id].append(reason)
    for item in by_id.values():
        if item.kind is Kind.WHOLE:
            if not keep[item.set_id]:
                reasons[item.set_id].append(NO_RULE)
        else:
            keep[item.set_id], reason = _own_reasons(
                item, newest_whole, rules, now=now, may_remove_incomplete=may_remove_incomplete)
            reasons[item.set_id].append(reason)
    _keep_chains(reasons, keep, by_id)

    for set_id, is_kept in keep.items():
        locked_until = by_id[set_id].locked_until
        if not is_kept and locked_until is not None and locked_until > now:
            keep[set_id] = True
            reasons[set_id] = [f"object lock until {_utc_text(locked_until)}"]
    _keep_chains(reasons, keep, by_id)

    # The guard: removing is only safe while a complete set newer than everything removed remains.
    doomed = [by_id[set_id] for set_id, is_kept in keep.items() if not is_kept]
    if doomed:
        newest_doomed = max(doomed, key=_order)
        # Compared by time alone: a set made in the same second as the newest complete one is not older.
        if newest_whole is None or newest_doomed.started_at >= newest_whole.started_at:
            guard = f"no complete set is newer than {newest_doomed.set_id}: nothing is removed"
            for item in doomed:
                keep[item.set_id] = True
                reasons[item.set_id] = [guard]

    return [
        Decision(set_id=item.set_id, keep=keep[item.set_id], reasons=tuple(reasons[item.set_id]), candidate=item)
        for item in candidates
    ]


def removal_rounds(decisions: Sequence[Decision]) -> list[list[str]]:
    """The sets to remove in rounds, each round's newest first: a set is in a round only after every set to remove
    that depends on it, so a prune interrupted between rounds never leaves a set whose chain lost a set."""
    going = [decision for decision in decisions if not decision.keep]
    doomed = {decision.set_id: decision.candidate.depends_on if decision.candidate else () for decision in going}
    order = {decision.set_id: (_order(decision.candidate) if decision.candidate else (_EPOCH, decision.set_id))
             for decision in going}
    waiting_for: dict[str, set[str]] = {set_id: set() for set_id in doomed}   # set -> doomed sets depending on it
    for set_id, depends_on in doomed.items():
        for needed in depends_on:
            if needed in waiting_for and needed != set_id:
                waiting_for[needed].add(set_id)
    rounds: list[list[str]] = []
    remaining = set(doomed)
    while remaining:
        ready = [set_id for set_id in remaining if not waiting_for[set_id] & remaining]
        if not ready:   # a cycle: manifests name older sets only, so it cannot happen; never loop forever
            ready = list(remaining)
        rounds.append(sorted(ready, key=order.__getitem__, reverse=True))
        remaining.difference_update(ready)
    return rounds

