"""MYSQL ``INCREMENTAL``: where the last set's binary logs ended (a small local state file per instance) and the
decision whether this run dumps (full) or copies only the binary logs written since (incremental).

A write-only storage cannot be read back, so the position lives in GENERAL ``STATE_FOLDER``: one JSON file per
host, section and instance, written to a temporary file and renamed only once the set that ended there is complete
on every storage. A failed or stopped run leaves the previous state, and the next run is still a correct
incremental of the last complete set (the binary logs since then hold everything).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator

from ncbackup import platform
from ncbackup.incremental.schedule import FullEvery, to_full_every
from ncbackup.setformat import is_set_id, set_order, set_time

STATE_VERSION = 1
# A binary log's file name as the server reports it: a plain name, never a path (it becomes one on restore).
BINLOG_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,200}")


FullEverySetting = Annotated[FullEvery | None, BeforeValidator(to_full_every)]
"""FULL_EVERY in an options model: FILESET's rules (incremental/schedule.py)."""


@dataclass(frozen=True)
class BinlogPosition:
    """A point in an instance's binary logs: the log file, the byte offset in it, and the GTID state there, if any."""

    file: str
    position: int
    gtid: str | None = None

    def as_metadata(self) -> dict[str, Any]:
        data: dict[str, Any] = {"file": self.file, "position": self.position}
        if self.gtid:
            data["gtid"] = self.gtid
        return data

    @classmethod
    def from_metadata(cls, data: Any) -> BinlogPosition:
        """The position recorded by as_metadata; ValueError when it is not one."""
        if not isinstance(data, dict):
            raise ValueError("the position is not an object")
        name, offset, gtid = data.get("file"), data.get("position"), data.get("gtid")
        if not isinstance(name, str) or not BINLOG_NAME.fullmatch(name) or ".." in name:
            raise ValueError(f"the binary log name {name!r} is not a plain file name")
        if type(offset) is not int or offset < 0:
            raise ValueError(f"the binary log position {offset!r} is not a whole number >= 0")
        if gtid is not None and not isinstance(gtid, str):
            raise ValueError("the GTID is not text")
        return cls(name, offset, gtid or None)


@dataclass(frozen=True)
class ChainState:
    """What the last complete set of an instance ended at."""

    set_id: str                     # the set whose binary logs (or dumps) end at position
    chain: tuple[str, ...]          # the full first, ..., set_id last
    position: BinlogPosition        # where the next set's binary logs start
    storages: tuple[str, ...]       # the storage sections that hold set_id complete

    def to_json(self) -> str:
        body = {"version": STATE_VERSION, "set_id": self.set_id, "chain": list(self.chain),
                "position": self.position.as_metadata(), "storages": list(self.storages)}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return json.dumps({"state": body, "sha256": hashlib.sha256(text.encode()).hexdigest()}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ChainState:
        """Parse and check a state file's text; ValueError (saying what is wrong) when it is damaged."""
        try:
            outer = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not JSON ({error.msg} at line {error.lineno})") from None
        body = outer.get("state") if isinstance(outer, dict) else None
        if not isinstance(body, dict):
            raise ValueError("no state object in it")
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        if hashlib.sha256(canonical.encode()).hexdigest() != outer.get("sha256"):
            raise ValueError("its checksum does not match its content")
        if body.get("version") != STATE_VERSION:
            raise ValueError(f"version {body.get('version')!r} is not {STATE_VERSION}")
        set_id, chain, storages = body.get("set_id"), body.get("chain"), body.get("storages")
        if not isinstance(chain, list) or not chain or not all(isinstance(item, str) and is_set_id(item) for item in chain):
            raise ValueError("its chain is not a list of set ids")
        if set_id != chain[-1] or sorted(chain, key=set_order) != chain or len(set(chain)) != len(chain):
            raise ValueError("its chain is not in order or does not end at its set")
        if not isinstance(storages, list) or not all(isinstance(item, str) for item in storages):
            raise ValueError("its storages are not a list of names")
        return cls(set_id=set_id, chain=tuple(chain), position=BinlogPosition.from_metadata(body.get("position")),
                   storages=tuple(storages))


def state_path(folder: Path, *, config: str, hostname: str, section: str, instance_label: str) -> Path:
    """The state file of one instance of one MYSQL section of one config on this host: readable names, then a short
    hash of them and of the config's path (two configs never share a state)."""
    words = (hostname, section, instance_label)
    digest = hashlib.sha256("\0".join((config, *words)).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    readable = "-".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", word)[:40] for word in words)
    return Path(folder) / f"mysql-{readable}-{digest}.json"


class StateProblem(Exception):
    """Why a state file cannot be used (one sentence, shown as the reason for a full)."""


def read_state(path: Path) -> ChainState:
    """The state at path; StateProblem saying why when it is missing or damaged."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StateProblem(f"there is no state file {path} (first incremental run, or it was removed)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise StateProblem(f"the state file {path} cannot be read ({error})") from None
    try:
        return ChainState.from_json(text)
    except ValueError as error:
        raise StateProblem(f"the state file {path} is damaged ({error})") from None


def write_state(path: Path, state: ChainState) -> None:
    """Write state to path atomically (temporary file, fsync, rename); the folder is created 0700."""
    folder = path.parent
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        platform.create_private_folder(folder)
    temporary = folder / f".{path.name}.{os.getpid()}.tmp"
    try:
        with platform.open_private_file(temporary) as handle:
            handle.truncate(0)
            handle.write(state.to_json().encode("utf-8"))
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    platform.fsync_directory(folder)


@dataclass(frozen=True)
class ChainSettings:
    """The MYSQL keys that decide between a full and an incremental."""

    is_incremental: bool
    full_every: FullEvery | None
    max_chain: int


@dataclass(frozen=True)
class Decision:
    """Full (parent None, with the reason when INCREMENTAL is on) or incremental from parent's position."""

    parent: ChainState | None
    full_reason: str | None = None

    @property
    def is_incremental(self) -> bool:
        return self.parent is not None


def decide(
    settings: ChainSettings,
    state: ChainState | StateProblem,
    *,
    instance: str,
    is_binlog_on: bool,
    binlog_files: Sequence[str],
    readable_folder: Path | None,
    storages_lacking_parent: Sequence[str],
    now: datetime,
) -> Decision:
    """Full or incremental for one instance, from its state and what the server and storages say now."""
    if not settings.is_incremental:
        return Decision(None)
    if not is_binlog_on:
        return Decision(None, f"binary logging is off on instance {instance}: an incremental needs it (log_bin)")
    if isinstance(state, StateProblem):
        return Decision(None, str(state))
    if storages_lacking_parent:
        return Decision(None, f"the parent set {state.set_id} is not complete on storage "
                              f"{', '.join(storages_lacking_parent)} (new in the config, or pruned there)")
    if len(state.chain) - 1 >= settings.max_chain:
        return Decision(None, f"MAX_CHAIN {settings.max_chain} reached (the chain since full {state.chain[0]} "
                              f"has {len(state.chain) - 1} incremental(s))")
    if settings.full_every is not None and settings.full_every.is_due(set_time(state.chain[0]), now):
        return Decision(None, f"FULL_EVERY is due (the last full is {state.chain[0]})")
    if state.position.file not in binlog_files:
        return Decision(None, f"the binary log {state.position.file} where set {state.set_id} ended has been purged "
                              f"on instance {instance}; keep binary logs longer than the time between backups")
    if readable_folder is None:
        return Decision(None, f"the binary log folder of instance {instance} is unknown; set BINLOG_PATH")
    if not (readable_folder / state.position.file).is_file():
        return Decision(None, f"the binary log {state.position.file} is not readable in {readable_folder}; run "
                              "ncbackup on the database host or set BINLOG_PATH")
    return Decision(state)


def logs_since(binlog_files: Sequence[str], start: BinlogPosition, end: BinlogPosition) -> list[str]:
    """The closed binary logs from start's file up to (not including) end's file, in the server's order."""
    if start.file not in binlog_files:
        raise ValueError(f"binary log {start.file} has been purged")
    first = list(binlog_files).index(start.file)
    last = list(binlog_files).index(end.file) if end.file in binlog_files else len(binlog_files)
    return list(binlog_files[first:last])
