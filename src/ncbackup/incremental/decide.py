"""Full or incremental, per files stream, and why a stream that could be incremental is full.

Pure: it reads the previous state's trailer (or why there is none), what decides the walk now, and one
listing per storage of this run (the sets complete there), never the files themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from ncbackup.incremental.schedule import FullEvery
from ncbackup.incremental.state import StateInfo
from ncbackup.setformat import MANIFEST_NAME, SIGNATURE_NAME, is_set_id, set_time

LEVEL_FULL, LEVEL_INCREMENTAL = "full", "incremental"


@dataclass(frozen=True)
class Policy:
    """The FILESET keys that decide."""

    is_incremental: bool
    full_every: FullEvery | None = None
    max_chain: int = 13


@dataclass(frozen=True)
class Decision:
    level: str                            # LEVEL_FULL | LEVEL_INCREMENTAL
    reason: str | None = None             # why full (None when incremental)
    chain: tuple[str, ...] = ()           # the sets the new one needs, oldest first, its parent last; () when full
    previous: StateInfo | None = None     # the state an incremental compares with

    @property
    def is_incremental(self) -> bool:
        return self.level == LEVEL_INCREMENTAL


@dataclass(frozen=True)
class StorageListing:
    """What one listing of a storage showed: the sets complete there, or why it could not be listed."""

    name: str
    complete_sets: frozenset[str] = frozenset()
    error: str | None = None


def complete_sets(keys: Iterable[str]) -> frozenset[str]:
    """The set ids with both a manifest and its signature among listed keys (``<set id>/<object>``)."""
    manifests: set[str] = set()
    signatures: set[str] = set()
    for key in keys:
        set_id, _, rest = key.partition("/")
        if rest == MANIFEST_NAME:
            manifests.add(set_id)
        elif rest == SIGNATURE_NAME:
            signatures.add(set_id)
    return frozenset(set_id for set_id in manifests & signatures if is_set_id(set_id))


def decide(
    policy: Policy,
    *,
    state: StateInfo | None,
    state_problem: str | None,
    fingerprint: str,
    listings: Mapping[str, StorageListing],
    now: datetime,
) -> Decision:
    """Incremental on top of the state's set when every condition holds, else full with the first reason that failed.

    state_problem: why there is no usable state (missing, damaged) when state is None.
    """
    if not policy.is_incremental:
        return Decision(LEVEL_FULL, "INCREMENTAL is off")
    if state is None:
        return Decision(LEVEL_FULL, state_problem or "there is no state of a previous set")
    if state.fingerprint != fingerprint:
        return Decision(LEVEL_FULL, "what the stream reads changed since the last set (FILESET_INCLUDE, "
                                    "FILESET_EXCLUDE, ONE_FILE_SYSTEM or the snapshots)")
    if set_time(state.set_id) > now:
        # The new set's id would sort before its parent's: a reader would refuse the chain.
        return Decision(LEVEL_FULL, f"the clock is behind the time of the last set {state.set_id}")
    needed = state.sets
    for name, listing in listings.items():
        if listing.error is not None:
            return Decision(LEVEL_FULL, f"storage {name} could not be listed ({listing.error})")
        if name not in state.storages:
            return Decision(LEVEL_FULL, f"storage {name} does not hold set {state.set_id} (new in the config, or "
                                        "that set failed there)")
        missing = [set_id for set_id in needed if set_id not in listing.complete_sets]
        if missing:
            return Decision(LEVEL_FULL, f"set {missing[-1]} of the chain is not complete on storage {name} "
                                        "(pruned or removed there)")
    if policy.full_every is not None:
        full_at = set_time(state.full_set_id)
        if policy.full_every.is_due(full_at, now.astimezone() if now.tzinfo else now.replace(tzinfo=timezone.utc)):
            return Decision(LEVEL_FULL, f"FULL_EVERY {policy.full_every} is due (the chain's full set is "
                                        f"{state.full_set_id})")
    incrementals = len(state.chain) if state.chain else 0
    if incrementals >= policy.max_chain:
        return Decision(LEVEL_FULL, f"MAX_CHAIN {policy.max_chain} is reached (the chain has {incrementals} "
                                    "incremental set(s))")
    return Decision(LEVEL_INCREMENTAL, chain=needed, previous=state)
