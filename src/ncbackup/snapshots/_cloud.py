"""What every cloud snapshot method shares: its common PARAMETERS, the names ncbackup recognises, and take/rotate.

A cloud method (``aws-ebs``, ``ucloud-image``, ``ucloud-udisk``, ``aliyun-ecs``) supplies four provider
calls (create one snapshot of a source, list ncbackup's own snapshots of this host and config, delete
one, read the states of some); ``CloudSnapshotMethod`` turns them into the ``base.Snapshot`` contract:

- take: create one snapshot per source (named ``ncbackup-<host>-<config>-<timezone.utc time>-...``), wait at
  most WAIT_SECONDS for all to be ready, and delete what it made when anything fails on the way;
- release: rotation, only after a successful take: per source, keep the KEEP newest snapshots whose
  name carries this host's and config's prefix, delete the older ones, never touch any other snapshot;
- cleanup_leftovers: delete this config's snapshots the provider reports as failed (a killed run's
  failed snapshot is useless); pending ones are left alone: the provider finishes them whether or not
  ncbackup is still running, and rotation counts them like any other.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from ncbackup.config.credentials import read_credentials
from ncbackup.config.secret_values import is_secret_name
from ncbackup.config.types import DurationSeconds, LegacyInt, LegacyPath, parse_options
from ncbackup.errors import BackupError, ConfigError
from ncbackup.snapshots.base import Taken
from ncbackup.snapshots.freeze import frozen
from ncbackup.snapshots.naming import PREFIX, config_tag
from ncbackup.sources.base import CheckLine

if TYPE_CHECKING:
    from ncbackup.config.settings import SectionSettings

log = logging.getLogger(__name__)

DEFAULT_KEEP = 7
DEFAULT_WAIT_SECONDS = 1800.0
DEFAULT_POLL_SECONDS = 10.0

READY = "ready"
PENDING = "pending"
FAILED = "failed"


class CloudOptions(BaseModel):
    """The PARAMETERS every cloud method reads (secrets are refused by read_options: they go in CREDENTIALS_FILE)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    wait_seconds: float = Field(
        DEFAULT_WAIT_SECONDS, alias="WAIT_SECONDS", ge=0,
        json_schema_extra={"shown_default": "`1800`", "allowed": "seconds, or `90s`, `30m`"},
        description="how long take waits for the snapshots to be ready; past it the run fails and the snapshots "
                    "are deleted; `0` = do not wait",
    )
    poll_seconds: DurationSeconds = Field(DEFAULT_POLL_SECONDS, alias="POLL_SECONDS", gt=0,
                                          description="how often the state is asked while waiting")
    keep: LegacyInt = Field(DEFAULT_KEEP, alias="KEEP", ge=1,
                            description="how many of ncbackup's snapshots to keep per volume/disk/host")
    credentials_file: LegacyPath | None = Field(
        None, alias="CREDENTIALS_FILE",
        description="a 0600 file of KEY=value lines holding the provider's keys (see each method)",
    )
    freeze: LegacyPath | None = Field(None, alias="FREEZE",
                                      description="a mount point to `fsfreeze` while the snapshots are requested "
                                                  "(always thawed, even when a request fails)")

    @field_validator("wait_seconds", mode="before")
    @classmethod
    def _duration_or_zero(cls, value: Any) -> Any:
        # DurationSeconds wants a positive duration; here 0 means "do not wait".
        if str(value).strip() in {"0", "0s", "0.0"}:
            return 0.0
        try:
            return _DURATION.validate_python(value)
        except ValidationError as error:
            raise ValueError(error.errors()[0]["msg"].removeprefix("Value error, ")) from None


_DURATION: TypeAdapter[float] = TypeAdapter(DurationSeconds)


@dataclass(frozen=True)
class CloudSnapshot:
    """One snapshot (or image) as the provider lists it."""

    id: str
    name: str
    source: str                 # the volume, disk or host it was made from
    created: datetime
    state: str                  # READY, PENDING or FAILED


def safe_word(text: str) -> str:
    """text reduced to what every provider allows in a name: lower-case letters, digits and '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def name_prefix(hostname: str, config_path: Path, section_name: str) -> str:
    """``ncbackup-<host>-<tag>-``: what every snapshot of this SNAPSHOT section is named with, and only those. The
    tag is the local methods' (naming.config_tag: config path and section), so two sections never rotate each
    other's snapshots; the host is reduced to what every provider allows in a name."""
    return f"{PREFIX}-{safe_word(hostname)}-{config_tag(config_path, section_name)}-"


def utc_stamp(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def to_rotate(snapshots: list[CloudSnapshot], *, prefix: str, keep: int, protected: frozenset[str]) -> list[CloudSnapshot]:
    """Per source, ncbackup's snapshots (named with prefix) past the keep newest; never a protected id or another name."""
    by_source: dict[str, list[CloudSnapshot]] = {}
    for snapshot in snapshots:
        if snapshot.name.startswith(prefix):
            by_source.setdefault(snapshot.source, []).append(snapshot)
    doomed: list[CloudSnapshot] = []
    for own in by_source.values():
        own.sort(key=lambda snapshot: (snapshot.created, snapshot.name, snapshot.id), reverse=True)
        doomed += [snapshot for snapshot in own[keep:] if snapshot.id not in protected]
    return doomed


def wait_until_ready(states: Callable[[], Mapping[str, str]], *, ids: list[str], wait_seconds: float,
                     poll_seconds: float, what: str) -> float:
    """Poll states() until every id is READY; seconds waited. BackupError when one FAILED or wait_seconds pass."""
    started = time.monotonic()
    while True:
        current = states()
        failed = [snapshot_id for snapshot_id in ids if current.get(snapshot_id) == FAILED]
        if failed:
            raise BackupError(f"the {what} {failed[0]} failed at the provider; see its console for why, then run again")
        if all(current.get(snapshot_id) == READY for snapshot_id in ids):
            return time.monotonic() - started
        elapsed = time.monotonic() - started
        if elapsed >= wait_seconds:
            waiting = [snapshot_id for snapshot_id in ids if current.get(snapshot_id) != READY]
            raise BackupError(f"the {what} {' '.join(waiting)} was not ready after {wait_seconds:g} s "
                              "(WAIT_SECONDS); raise WAIT_SECONDS, or set it to 0 not to wait")
        time.sleep(min(poll_seconds, max(wait_seconds - elapsed, 0.01)))


OptionsT = TypeVar("OptionsT", bound=CloudOptions)


def read_options(model: type[OptionsT], section: SectionSettings, *, config_path: Path) -> OptionsT:
    """The section's PARAMETERS as model; ConfigError naming the key when invalid or holding a secret."""
    secrets = sorted(str(key) for key in section.parameters if is_secret_name(str(key)))
    if secrets:
        position = section.parameter_positions.get(secrets[0])
        raise ConfigError(f"section {section.name}: {secrets[0]} holds a secret, and secrets never go in the config "
                          "file: put it in CREDENTIALS_FILE (a 0600 file of KEY=value lines)", file=config_path,
                          line=position.line if position else None, key=f"{section.name}.{secrets[0]}")
    options = parse_options(model, section)
    return options


def credentials_from_file(options: CloudOptions, *, section_name: str, config_path: Path) -> dict[str, str]:
    """The KEY=value pairs of CREDENTIALS_FILE (0600, every value masked), or {} when the section names none."""
    if options.credentials_file is None:
        return {}
    return read_credentials(options.credentials_file.expanduser(), section_name=section_name, config_file=config_path)


class CloudSnapshotMethod:
    """take/release/cleanup_leftovers over a provider's create/list/delete/states calls (see the module docstring)."""

    method = ""                 # the METHOD name
    what = "snapshot"           # "snapshot" or "image", for messages

    def __init__(self, *, name: str, options: CloudOptions, prefix: str) -> None:
        self.name = name
        self.options = options
        self.prefix = prefix
        self._taken_ids: tuple[str, ...] = ()
        self._is_rotated = False

    # -- what a provider supplies ------------------------------------------------------------------
    def sources(self) -> list[str]:
        """The volumes, disks or hosts to snapshot."""
        raise NotImplementedError

    def create(self, source: str, *, snapshot_name: str) -> str:
        """Start one snapshot of source named snapshot_name; its id. BackupError (one sentence) when refused."""
        raise NotImplementedError

    def list_own(self) -> list[CloudSnapshot]:
        """The snapshots whose name starts with self.prefix (the provider may return more; they are filtered again)."""
        raise NotImplementedError

    def delete(self, snapshot_id: str) -> None:
        """Delete one snapshot; BackupError when refused (an already gone snapshot is no error)."""
        raise NotImplementedError

    def states(self, ids: list[str]) -> dict[str, str]:
        """READY/PENDING/FAILED of each id (an id missing from the answer is still PENDING); from list_own unless the
        provider has a cheaper query by id (EBS)."""
        return {snapshot.id: snapshot.state for snapshot in self.list_own() if snapshot.id in ids}

    def check(self) -> list[CheckLine]:
        """Read-only calls proving the credentials, region and sources; creates nothing."""
        raise NotImplementedError

    # -- the contract ------------------------------------------------------------------------------
    def snapshot_name(self, source: str) -> str:
        return f"{self.prefix}{utc_stamp(datetime.now(timezone.utc))}-{safe_word(source)}"

    def _frozen(self) -> AbstractContextManager[None]:
        """FREEZE: the file system frozen while the snapshots are requested (the shared helper always thaws)."""
        return frozen(Path(self.options.freeze) if self.options.freeze else None)

    def take(self) -> Taken:
        made: list[str] = []
        try:
            sources = self.sources()
            with self._frozen():
                for source in sources:
                    made.append(self.create(source, snapshot_name=self.snapshot_name(source)))
            notes: tuple[str, ...] = ()
            if self.options.wait_seconds > 0:
                waited = wait_until_ready(lambda: self.states(made), ids=made, wait_seconds=self.options.wait_seconds,
                                          poll_seconds=self.options.poll_seconds, what=self.what)
                notes = (f"waited {waited:.0f} s for {' '.join(made)} to be ready",)
        except BaseException:
            for snapshot_id in made:
                try:
                    self.delete(snapshot_id)
                except BackupError as error:
                    log.warning("section %s: the %s %s made by this failed take was not deleted: %s",
                                self.name, self.what, snapshot_id, error)
            raise
        self._taken_ids = tuple(made)
        return Taken(method=self.method, ids=tuple(made), notes=notes)

    def release(self) -> list[str]:
        """Rotation after a successful take (never after a failed one: the old snapshots are then all there is)."""
        if not self._taken_ids or self._is_rotated:
            return []
        self._is_rotated = True
        warnings: list[str] = []
        try:
            doomed = to_rotate(self.list_own(), prefix=self.prefix, keep=self.options.keep,
                               protected=frozenset(self._taken_ids))
        except BackupError as error:
            return [f"section {self.name}: old {self.what}s were not rotated: {error}"]
        for snapshot in doomed:
            try:
                self.delete(snapshot.id)
                log.info("section %s: deleted the old %s %s (%s), KEEP %d", self.name, self.what, snapshot.id,
                         snapshot.name, self.options.keep)
            except BackupError as error:
                warnings.append(f"section {self.name}: the old {self.what} {snapshot.id} was not deleted: {error}")
        return warnings

    def cleanup_leftovers(self) -> list[str]:
        removed: list[str] = []
        for snapshot in self.list_own():
            if snapshot.state == FAILED and snapshot.name.startswith(self.prefix):
                self.delete(snapshot.id)
                removed.append(f"deleted the failed {self.what} {snapshot.id} ({snapshot.name}) left by an earlier run")
        return removed
