"""A run's figures as named numbers, the same for every monitoring method (prometheus, zabbix)."""

from __future__ import annotations

from dataclasses import dataclass

from ncbackup.engine.result import RunResult, Status

# A run with warnings still stored its backup: for "when did a backup last succeed" it counts.
SUCCESS_STATUSES = (Status.OK, Status.WARNING)


@dataclass(frozen=True)
class SectionValues:
    """One plan step: its sections' names, its outcome and figures."""

    section: str                  # the step's name, e.g. "FILESET+COMPRESSION+STORAGE"
    kind: str                     # "backup-set", "to-folder", "execute", ...
    status: Status
    duration_seconds: float
    bytes_in: int
    bytes_out: int
    part_count: int | None        # None: not a backup set


@dataclass(frozen=True)
class StorageValues:
    """One storage (by its DESTINATION) written in this run: whether every step writing to it succeeded."""

    storage: str                  # "local", "s3", "sftp", ...
    is_success: bool
    bytes_out: int                # what the steps writing to it stored (each storage gets every part)


@dataclass(frozen=True)
class RunValues:
    """What monitoring is told about one run."""

    hostname: str
    status: Status
    run_timestamp_seconds: float  # when the run ended (its start while it has not)
    duration_seconds: float
    bytes_in: int
    bytes_out: int
    part_count: int | None        # the parts of every set the run wrote; None when it wrote none
    sections: tuple[SectionValues, ...]
    storages: tuple[StorageValues, ...]

    @property
    def is_success(self) -> bool:
        return self.status in SUCCESS_STATUSES


def run_values(result: RunResult, status: Status) -> RunValues:
    """The figures of result; status is the Message's (the run's own, or the framework's settled one)."""
    moment = result.end or result.start
    sections = tuple(
        SectionValues(section=step.name, kind=step.kind, status=step.status, duration_seconds=step.duration_seconds,
                      bytes_in=step.bytes_in, bytes_out=step.bytes_out, part_count=step.part_count)
        for step in result.steps
    )
    part_counts = [section.part_count for section in sections if section.part_count is not None]
    storages: dict[str, StorageValues] = {}
    for step in result.steps:
        for storage in step.destinations:
            seen = storages.get(storage, StorageValues(storage=storage, is_success=True, bytes_out=0))
            storages[storage] = StorageValues(
                storage=storage,
                is_success=seen.is_success and step.status in SUCCESS_STATUSES,
                bytes_out=seen.bytes_out + step.bytes_out,
            )
    return RunValues(
        hostname=result.hostname,
        status=status,
        run_timestamp_seconds=moment.timestamp(),
        duration_seconds=result.duration_seconds if result.end else 0.0,
        bytes_in=result.bytes_in,
        bytes_out=result.bytes_out,
        part_count=sum(part_counts) if part_counts else None,
        sections=sections,
        storages=tuple(storages.values()),
    )
