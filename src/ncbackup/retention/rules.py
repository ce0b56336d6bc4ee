"""The pure retention rule engine: sets + rules + now -> a decision with reasons for every set.

Nothing here lists, reads or deletes: ``prune.py`` turns what a storage holds into ``Candidate``s
and acts on the ``Decision``s. The semantics are those of docs/retention.md; a test holds the two
together.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo


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


def decide(
    candidates: Sequence[Candidate], rules: Rules, *, now: datetime, tz: tzinfo | None = None,
    may_remove_incomplete: bool = True,
) -> list[Decision]:
    """One decision per candidate, in the candidates' order. tz: the zone days/weeks/months are counted
    in (None: the machine's local zone). may_remove_incomplete is False while a run holds the lock."""
    raise NotImplementedError
