"""Read what a storage holds for each host (manifests only, never parts) into one HostStatus per host.

Everything goes through ``setformat.list_sets`` / ``open_set``: a set counts only when its signature
verifies with a trusted key, and only when its manifest names the host whose folder holds it (a
manifest copied into another host's folder says nothing about that host).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from ncbackup.errors import BackupError, StorageError
from ncbackup.setformat import (
    MANIFEST_NAME,
    STATE_COMPLETE,
    STATE_DAMAGED,
    STATE_INCOMPLETE,
    STATE_UNSIGNED,
    STATE_UNTRUSTED,
    STATE_UNVERIFIED,
    Manifest,
    SetInfo,
    is_set_id,
    list_sets,
    open_set,
    set_time,
)
from ncbackup.signing import SignatureError, Trust
from ncbackup.storage.base import Storage, host_storages, read_workers

log = logging.getLogger(__name__)

STATE_PARTIAL = "partial"          # complete and signed, but some streams failed
STATE_WRONG_HOST = "wrong-host"    # a valid manifest of another host, found in this host's folder
STATES = (STATE_COMPLETE, STATE_PARTIAL, STATE_INCOMPLETE, STATE_UNSIGNED, STATE_UNTRUSTED, STATE_DAMAGED, STATE_WRONG_HOST,
          STATE_UNVERIFIED)
TREND_SETS = 7


@dataclass(frozen=True)
class SetPoint:
    """One complete set of a host, for the size trend and the chart."""

    set_id: str
    finished_at: datetime
    size_bytes: int


@dataclass(frozen=True)
class Problem:
    """The newest set of a host that is not wholly good: its id, state and why, in a few words."""

    set_id: str
    state: str
    reason: str


@dataclass
class HostStatus:
    host: str                                   # the host folder's name, as found on the storage
    storage_name: str
    set_count: int = 0
    states: dict[str, int] = field(default_factory=dict)
    points: list[SetPoint] = field(default_factory=list)   # complete sets (partial ones too), oldest first
    last_problem: Problem | None = None
    error: str | None = None                    # the host's sets could not be read at all
    is_stale: bool = False                      # no complete set, or the newest is older than ALERT_AFTER_HOURS

    @property
    def newest(self) -> SetPoint | None:
        return self.points[-1] if self.points else None

    def age_hours(self, now: datetime) -> float | None:
        newest = self.newest
        return (now - newest.finished_at).total_seconds() / 3600 if newest is not None else None

    @property
    def recent_sizes(self) -> list[int]:
        return [point.size_bytes for point in self.points[-TREND_SETS:]]

    @property
    def trend_percent(self) -> float | None:
        """Change in % from the oldest to the newest of the last TREND_SETS complete sets; None below two sets."""
        sizes = self.recent_sizes
        if len(sizes) < 2 or sizes[0] == 0:
            return None
        return (sizes[-1] - sizes[0]) * 100.0 / sizes[0]


def state_of(info: SetInfo, host: str) -> str:
    """A set's state as the status view counts it (setformat.STATE_* plus partial and wrong-host)."""
    if info.manifest is not None:
        if info.manifest.host != host:
            return STATE_WRONG_HOST
        return STATE_PARTIAL if info.manifest.failed_streams else STATE_COMPLETE
    return info.state


def _reason(info: SetInfo, state: str) -> str:
    if state == STATE_WRONG_HOST and info.manifest is not None:
        return f"its manifest names host {info.manifest.host}, not this folder"
    if state == STATE_PARTIAL and info.manifest is not None:
        return "failed stream(s): " + ", ".join(info.manifest.failed_streams)
    if state == STATE_UNTRUSTED:
        return f"signed by key {info.signer}, which is not trusted (TRUSTED_SIGNERS or --trust-signer)"
    if state == STATE_UNSIGNED:
        return "made before signing (--allow-unsigned to count it)"
    if state == STATE_INCOMPLETE:
        return "no manifest or no signature: the backup did not finish"
    return (info.problem or state).splitlines()[0][:300]


def host_status(host: str, storage: Storage, trust: Trust, *, now: datetime, alert_after_hours: float,
                verify_newest: int | None = TREND_SETS) -> HostStatus:
    """The status of one host folder; a storage error becomes the host's error, never an exception.

    Only the newest verify_newest sets with a manifest are opened (None: all): older ones count as unverified.
    When none of those is complete, every set is opened, so an older complete set is still found.
    """
    status = HostStatus(host=host, storage_name=storage.name)
    try:
        sets = list_sets(storage, trust, verify_newest=verify_newest)
        if verify_newest is not None and any(info.state == STATE_UNVERIFIED for info in sets) and not any(
                state_of(info, host) in (STATE_COMPLETE, STATE_PARTIAL) for info in sets):
            sets = list_sets(storage, trust)
    except BackupError as error:
        status.error, status.is_stale = str(error), True
        return status
    status.set_count = len(sets)
    for info in sets:
        state = state_of(info, host)
        status.states[state] = status.states.get(state, 0) + 1
        if state in (STATE_COMPLETE, STATE_PARTIAL) and info.manifest is not None:
            status.points.append(SetPoint(info.set_id, info.manifest.finished_at, info.manifest.total_bytes_out))
        if state not in (STATE_COMPLETE, STATE_UNVERIFIED):
            status.last_problem = Problem(info.set_id, state, _reason(info, state))
    age = status.age_hours(now)
    status.is_stale = age is None or age > alert_after_hours
    return status


def fleet_status(
    hosts: Sequence[tuple[str, Storage]], trust: Trust, *, now: datetime, alert_after_hours: float, workers: int,
    verify_newest: int | None = TREND_SETS,
) -> list[HostStatus]:
    """host_status of every host, read by up to workers threads, in the order given."""
    def one(item: tuple[str, Storage]) -> HostStatus:
        return host_status(item[0], item[1], trust, now=now, alert_after_hours=alert_after_hours,
                           verify_newest=verify_newest)

    if workers <= 1 or len(hosts) <= 1:
        return [one(item) for item in hosts]
    with ThreadPoolExecutor(max_workers=min(workers, len(hosts)), thread_name_prefix="status") as pool:
        return list(pool.map(one, hosts))


def every_host(storage: Storage) -> list[tuple[str, Storage]]:
    """The host folders beside the storage's own (--all-hosts); BackupError when the backend cannot list them."""
    found = host_storages(storage)
    if found is None:
        raise BackupError(
            f"{storage.name} cannot list other hosts (only local, s3 and sftp storages with a host folder can); "
            "drop --all-hosts, or point --storage at such a storage"
        )
    return found


def workers_for(storage: Storage) -> int:
    return read_workers(storage)


@dataclass(frozen=True)
class Freshness:
    """The newest complete set of one storage, found cheaply (for the warning at the start of a run)."""

    set_count: int
    newest_complete: Manifest | None


def newest_complete(storage: Storage, trust: Trust, host: str) -> Freshness:
    """List once, then open manifests from the newest set down until one is complete and names host.

    StorageError when the storage cannot be listed.
    """
    set_ids: set[str] = set()
    with_manifest: set[str] = set()
    for info in storage.list(""):
        set_id, _, rest = info.key.partition("/")
        if rest and is_set_id(set_id):
            set_ids.add(set_id)
            if rest == MANIFEST_NAME:
                with_manifest.add(set_id)
    for set_id in sorted(with_manifest, key=lambda s: (set_time(s), int(s.partition("-")[2] or 1)), reverse=True):
        try:
            opened = open_set(storage, set_id, trust)
        except (SignatureError, StorageError, BackupError):
            continue
        if opened.manifest.host == host:
            return Freshness(len(set_ids), opened.manifest)
    return Freshness(len(set_ids), None)
