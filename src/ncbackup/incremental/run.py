"""One run's incremental files streams: decided before the set is written, their state committed after it.

``prepare`` reads each stream's state and lists each storage once, decides full or incremental and hands
the files source what its walk needs; ``finish`` renames the new state into place only when the set is
complete on at least one storage and the stream is good (recording which storages hold it), and drops it
otherwise, so a failed or stopped run leaves the last complete set's state for the next run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ncbackup.engine.setresult import SetResult
from ncbackup.engine.tee import NamedStorage
from ncbackup.errors import BackupError
from ncbackup.incremental.decide import (
    LEVEL_FULL,
    Decision,
    Policy,
    StorageListing,
    complete_sets,
    decide,
)
from ncbackup.incremental.state import (
    StateDamaged,
    StateInfo,
    StateWriter,
    ensure_folder,
    read_encoded,
    read_info,
)
from ncbackup.incremental.tracker import StateTracker
from ncbackup.setformat import set_order

log = logging.getLogger(__name__)


def fingerprint(*, includes: Sequence[str], excludes: Sequence[str], one_file_system: bool,
                snapshots: Sequence[tuple[str, str]]) -> str:
    """What decides the walk, hashed: includes, excludes, ONE_FILE_SYSTEM, (snapshot method, live mount point)."""
    text = json.dumps({"include": list(includes), "exclude": list(excludes), "one_file_system": one_file_system,
                       "snapshots": sorted(snapshots)}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]


@dataclass
class StreamState:
    """One incremental files stream in this run: the decision, and the next state being written."""

    stream_name: str
    path: Path
    decision: Decision
    fingerprint: str
    tracker: StateTracker | None = None
    _writer: StateWriter | None = field(default=None, repr=False)
    is_walk_done: bool = False

    def open_tracker(self, *, check_device: bool) -> StateTracker | None:
        """The tracker the tar walk asks (archive/changes.py); it writes the next state into a temporary file.

        None when that file cannot be created: the stream is then a full one, without a new state, and says why.
        """
        try:
            self._writer = StateWriter(self.path)
        except OSError as error:
            log.warning("%s: the state file cannot be written in %s (%s)", self.stream_name, self.path.parent,
                        error.strerror)
            self.decision = Decision(LEVEL_FULL, f"the state folder cannot be written ({error.strerror})")
            return None
        previous = self.decision.previous
        records = read_encoded(self.path, previous) if previous is not None else None
        self.tracker = StateTracker(self._writer, previous=previous, records=records, check_device=check_device)
        return self.tracker

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.discard()
            self._writer = None

    def commit(self, set_id: str, storages: tuple[str, ...]) -> None:
        if self._writer is None:
            return
        self._writer.commit(set_id=set_id, chain=self.decision.chain, fingerprint=self.fingerprint, storages=storages)
        self._writer = None


def list_storages(storages: Sequence[NamedStorage]) -> dict[str, StorageListing]:
    """One listing per storage: the sets complete there (manifest and signature), or why it could not be listed."""
    listings: dict[str, StorageListing] = {}
    for named in storages:
        name = named.storage.name
        try:
            listings[name] = StorageListing(name, complete_sets(info.key for info in named.storage.list("")))
        except BackupError as error:
            listings[name] = StorageListing(name, error=str(error))
    return listings


def read_state(path: Path) -> tuple[StateInfo | None, str | None]:
    """The state's trailer once its checksum matches, or None and why (the file name stays in the log only)."""
    try:
        return read_info(path), None
    except FileNotFoundError:
        return None, "there is no state of a previous set (the first incremental run, or STATE_FOLDER was emptied)"
    except StateDamaged as error:
        log.warning("state file %s is damaged: %s", path, error)
        return None, f"the state of the previous set is damaged ({error})"
    except OSError as error:
        log.warning("state file %s could not be read: %s", path, error.strerror)
        return None, f"the state of the previous set could not be read ({error.strerror})"


def prepare_stream(
    *,
    stream_name: str,
    path: Path,
    policy: Policy,
    stream_fingerprint: str,
    listings: dict[str, StorageListing],
    now: datetime,
) -> StreamState:
    """Decide one stream: full or incremental on top of its state."""
    state, problem = read_state(path)
    decision = decide(policy, state=state, state_problem=problem, fingerprint=stream_fingerprint, listings=listings,
                      now=now)
    return StreamState(stream_name=stream_name, path=path, decision=decision, fingerprint=stream_fingerprint)


def set_chain(states: Sequence[StreamState]) -> tuple[str, ...]:
    """The set's chain: the union of its incremental streams' chains, oldest first."""
    return tuple(sorted({set_id for state in states for set_id in state.decision.chain}, key=set_order))


def prepare_folder(folder: Path) -> None:
    """Create STATE_FOLDER (0700) before anything is written; a folder that cannot be made is one clear error."""
    try:
        ensure_folder(folder)
    except OSError as error:
        raise BackupError(f"the state folder {folder} cannot be created ({error.strerror}); create it or set "
                          "GENERAL STATE_FOLDER to a writable folder") from None


def finish(states: Sequence[StreamState], set_result: SetResult) -> list[str]:
    """Commit each stream's new state when its set is complete somewhere and the stream is good; return notes."""
    notes: list[str] = []
    storages = tuple(outcome.storage_name for outcome in set_result.storages if outcome.is_ok)
    results = {stream.name: stream for stream in set_result.streams}
    for state in states:
        result = results.get(state.stream_name)
        set_id = set_result.set_id
        try:
            if (set_id is not None and set_result.error is None and storages and state.is_walk_done
                    and result is not None and result.is_ok):
                state.commit(set_id, storages)
                log.debug("state of %s now describes set %s", state.stream_name, set_result.set_id)
            else:
                state.discard()
                notes.append(f"{state.stream_name}: the state of the last complete set was kept (this set did not "
                             "complete); the next run compares with that set")
        except OSError as error:
            state.discard()
            notes.append(f"{state.stream_name}: the new state could not be written in {state.path.parent} "
                         f"({error.strerror}); the next run compares with the previous state's set")
    return notes
