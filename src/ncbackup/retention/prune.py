"""Prune one storage: list it once, let the rule engine decide, remove what it decided, signature and manifest first.

A set goes in two deletes: its signature and manifest (the commit marker), then, only when both went,
its other objects. A prune interrupted in between leaves an incomplete set, which the rules remove
later, never a set that looks complete but lacks parts. A failed delete is a warning naming the
object; the next prune retries it. Only the storage's own base (``<HOSTNAME>/``) is listed, so only
this host's folder is touched; objects that are not part of a set are reported as unknown and left alone.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from ncbackup.errors import StorageError
from ncbackup.retention.policy import Policy
from ncbackup.retention.rules import Candidate, Decision, Kind, decide, removal_rounds
from ncbackup.setformat import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    STATE_COMPLETE,
    STATE_INCOMPLETE,
    STATE_UNSIGNED,
    STATE_UNTRUSTED,
    SetInfo,
    is_set_id,
    list_sets,
    manifest_key,
    signature_key,
)
from ncbackup.signing import Trust
from ncbackup.storage.base import (
    ObjectInfo,
    Storage,
    bucket_location,
    delete_keys,
    prune_support,
    read_workers,
    retained_until,
)
from ncbackup.storage.retry import with_retries

LIST_ATTEMPTS = 3


@dataclass
class PruneOutcome:
    """What one prune of one storage decided and did."""

    storage: str                                   # the storage's name, e.g. "local:/backups/web1"
    time_zone: str                                 # "Europe/Paris (UTC+01:00)": days and weeks are counted there
    decisions: list[Decision] = field(default_factory=list)   # one per set, oldest first; candidate has the size
    unknown_keys: list[str] = field(default_factory=list)     # objects that are not part of a set: left alone
    removed: list[str] = field(default_factory=list)          # set ids removed entirely
    freed_bytes: int = 0
    warnings: list[str] = field(default_factory=list)         # failed deletes, each naming the object
    is_dry_run: bool = False
    may_remove_incomplete: bool = True

    @property
    def kept(self) -> list[str]:
        return [decision.set_id for decision in self.decisions if decision.keep]

    def summary_dict(self) -> dict[str, Any]:
        """What a run's result records per pruned storage (docs/report-json.md, steps[].pruned)."""
        return {"storage": self.storage, "removed": list(self.removed), "freed_bytes": self.freed_bytes,
                "kept": self.kept, "warnings": list(self.warnings)}

    def summary_line(self) -> str:
        count = len(self.removed)
        return (f"pruned {self.storage}: removed {count} set{'s' * (count != 1)}, freed {self.freed_bytes} bytes, "
                f"kept {len(self.kept)} (days counted in {self.time_zone})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "storage": self.storage,
            "time_zone": self.time_zone,
            "dry_run": self.is_dry_run,
            "may_remove_incomplete": self.may_remove_incomplete,
            "sets": [_decision_dict(decision) for decision in self.decisions],
            "unknown_objects": list(self.unknown_keys),
            "removed": list(self.removed),
            "freed_bytes": self.freed_bytes,
            "warnings": list(self.warnings),
        }


def _decision_dict(decision: Decision) -> dict[str, Any]:
    candidate = decision.candidate
    return {
        "set_id": decision.set_id,
        "kind": candidate.kind.value if candidate else None,
        "keep": decision.keep,
        "reasons": list(decision.reasons),
        "size_bytes": candidate.size_bytes if candidate else 0,
        "locked_until": (candidate.locked_until.strftime("%Y-%m-%dT%H:%M:%SZ")
                         if candidate and candidate.locked_until else None),
    }


def zone_label(tz: tzinfo | None, now: datetime) -> str:
    """The zone days are counted in, with its offset at now: "Europe/Paris (UTC+01:00)", or the local zone's name."""
    local = now.astimezone(tz) if tz is not None else now.astimezone()
    name = tz.key if isinstance(tz, ZoneInfo) else (local.tzname() or "local time")
    offset = local.strftime("%z") or "+0000"
    return f"{name} (UTC{offset[:3]}:{offset[3:]})"


class _RecordingStorage:
    """A storage whose listings are remembered, so the keys of each set come from list_sets' own single listing."""

    def __init__(self, storage: Storage) -> None:
        self.inner = storage
        self.name = storage.name
        self.listed: builtins.list[ObjectInfo] = []

    def put(self, key: str, stream: BinaryIO) -> None:
        raise AssertionError("prune never writes")

    def get(self, key: str) -> BinaryIO:
        return self.inner.get(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for info in self.inner.list(prefix):
            self.listed.append(info)
            yield info

    def delete(self, key: str) -> None:
        raise AssertionError("prune deletes through delete_keys only")

    def read_workers(self) -> int:
        """As the storage's own: list_sets reads manifests in parallel where the backend allows it."""
        return read_workers(self.inner)


def matches_location(policy: Policy, storage: Storage) -> bool:
    """Whether CLEANUP's BUCKET/PREFIX (when given) select this storage; without them every storage is selected."""
    if policy.bucket is None and policy.prefix is None:
        return True
    location = bucket_location(storage)
    if location is None:
        return False
    bucket, prefix = location
    if policy.bucket is not None and bucket != policy.bucket:
        return False
    wanted = (policy.prefix or "").strip("/")
    return not wanted or f"{prefix.strip('/')}/".startswith(f"{wanted}/")


def candidate_for(info: SetInfo, *, hostname: str) -> Candidate:
    """A listed set as the rule engine sees it: WHOLE, PARTIAL, INCOMPLETE, or FOREIGN with why."""
    kind, note = Kind.FOREIGN, None
    if info.state == STATE_COMPLETE and info.manifest is not None:
        if info.manifest.host != hostname:
            note = f"made by host {info.manifest.host}, not {hostname}: left alone"
        elif info.manifest.failed_streams:
            kind = Kind.PARTIAL
        else:
            kind = Kind.WHOLE
    elif info.state == STATE_INCOMPLETE:
        kind = Kind.INCOMPLETE
    elif info.state == STATE_UNSIGNED:
        note = "unsigned (made before signing): left alone; --allow-unsigned lets prune judge it"
    elif info.state == STATE_UNTRUSTED:
        note = f"signed by key {info.signer}, not trusted: left alone; --trust-signer lets prune judge it"
    else:
        note = "damaged (its manifest or signature is invalid): left alone"
    # An incremental set needs every set of its chain: the rules keep them with it (docs/retention.md).
    depends_on = info.manifest.chain if info.manifest is not None else ()
    return Candidate(set_id=info.set_id, started_at=info.started_at, kind=kind, size_bytes=info.size_bytes, note=note,
                     depends_on=depends_on)


def prune_storage(
    storage: Storage, policy: Policy, trust: Trust, *, hostname: str, now: datetime, tz: tzinfo | None = None,
    dry_run: bool, may_remove_incomplete: bool,
) -> PruneOutcome:
    """Decide for every set on the storage and, unless dry_run, remove the sets the rules do not keep.

    StorageError when the storage cannot prune (prune_support) or cannot be listed; a failed delete is
    only a warning in the outcome.
    """
    why_not = prune_support(storage)
    if why_not is not None:
        raise StorageError(f"{storage.name} cannot be pruned: {why_not}")
    recording = _RecordingStorage(with_retries(storage, attempts=LIST_ATTEMPTS, first_wait_seconds=1.0))
    sets = list_sets(recording, trust)
    keys_of: dict[str, list[ObjectInfo]] = {}
    unknown: list[str] = []
    for info in recording.listed:
        set_id, _, rest = info.key.partition("/")
        if rest and is_set_id(set_id):
            keys_of.setdefault(set_id, []).append(info)
        else:
            unknown.append(info.key)
    outcome = PruneOutcome(storage=storage.name, time_zone=zone_label(tz, now), unknown_keys=sorted(unknown),
                           is_dry_run=dry_run, may_remove_incomplete=may_remove_incomplete)
    candidates = [candidate_for(info, hostname=hostname) for info in sets]
    decisions = decide(candidates, policy.rules, now=now, tz=tz, may_remove_incomplete=may_remove_incomplete)
    # Object Lock: asked only for the sets that would go (a HEAD each on S3), then decided again.
    locks: dict[str, datetime] = {}
    unknown_locks: set[str] = set()
    for decision in decisions:
        if decision.keep:
            continue
        lock_key = _lock_key(decision.set_id, keys_of.get(decision.set_id, []))
        try:
            until = retained_until(storage, lock_key) if lock_key else None
        except StorageError as error:
            unknown_locks.add(decision.set_id)
            outcome.warnings.append(f"cannot tell whether set {decision.set_id} is locked ({error}); it is kept "
                                    "this time, the next prune asks again")
            continue
        if until is not None:
            locks[decision.set_id] = until
    if locks:
        candidates = [dataclasses.replace(c, locked_until=locks[c.set_id]) if c.set_id in locks else c
                      for c in candidates]
        decisions = decide(candidates, policy.rules, now=now, tz=tz, may_remove_incomplete=may_remove_incomplete)
    outcome.decisions = decisions
    if dry_run:
        return outcome
    rounds = removal_rounds(decisions)
    _remove_sets(storage, rounds, {d.set_id: keys_of.get(d.set_id, []) for d in decisions if not d.keep}, outcome,
                 held=unknown_locks, depends_on={d.set_id: d.candidate.depends_on for d in decisions if d.candidate})
    return outcome


def _lock_key(set_id: str, objects: list[ObjectInfo]) -> str | None:
    """The object whose Object Lock stands for the set's: its manifest, else its first object."""
    keys = [info.key for info in objects]
    if manifest_key(set_id) in keys:
        return manifest_key(set_id)
    return keys[0] if keys else None


def _remove_sets(
    storage: Storage, rounds: list[list[str]], objects_of: dict[str, list[ObjectInfo]], outcome: PruneOutcome, *,
    held: set[str], depends_on: dict[str, tuple[str, ...]],
) -> None:
    """Every set's signature and manifest first, in rounds (removal_rounds: a set after every set that depends on
    it, one batch a round: 1000 keys a request on S3); then, for the sets whose two went, their other objects (one
    more batch). Interrupted anywhere, each set is merely incomplete, and no complete set is left without a set of
    its chain. A set held back (its lock unknown, a failed delete) holds back the sets it depends on too."""
    size_of = {info.key: info.size_bytes for objects in objects_of.values() for info in objects}
    failed_sets: set[str] = set(held)
    dependents: dict[str, list[str]] = {}
    for set_id, chain in depends_on.items():
        for needed in chain:
            dependents.setdefault(needed, []).append(set_id)

    def delete(keys_by_set: dict[str, list[str]]) -> None:
        keys = [key for keys in keys_by_set.values() for key in keys]
        failures = delete_keys(storage, keys) if keys else {}
        outcome.freed_bytes += sum(size_of[key] for key in keys if key not in failures)
        for key, why in failures.items():
            outcome.warnings.append(f"could not delete {key} on {storage.name} ({why}); the next prune retries it")
            failed_sets.add(key.partition("/")[0])

    for chosen in rounds:
        for set_id in chosen:
            if any(dependent in failed_sets for dependent in dependents.get(set_id, ())):
                failed_sets.add(set_id)   # a set of its chain stays complete: so does this one
        delete({set_id: [key for key in (signature_key(set_id), manifest_key(set_id)) if key in size_of]
                for set_id in chosen if set_id not in failed_sets})
    delete({set_id: [info.key for info in objects if info.key.partition("/")[2] not in (SIGNATURE_NAME, MANIFEST_NAME)]
            for set_id, objects in objects_of.items() if set_id not in failed_sets})
    outcome.removed.extend(set_id for set_id in objects_of if set_id not in failed_sets)
