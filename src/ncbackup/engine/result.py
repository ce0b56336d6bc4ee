"""What a run did: per-step results, a readable summary, versioned JSON and the exit status.

Every text leaving a RunResult (summary, JSON, errors) is masked of the registered secrets: an
error is often an exception's text, and that may quote a URI, a command's output or a credential.

The JSON shape is documented in docs/report-json.md; bump SCHEMA_VERSION on any incompatible change.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from ncbackup import __version__
from ncbackup.engine.logs import mask_secrets
from ncbackup.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE, EXIT_WARNINGS

SCHEMA_VERSION = 1


class Status(str, Enum):
    OK = "ok"
    WARNING = "warning"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class StepResult:
    """The outcome of one plan step."""

    name: str                       # the section name(s), e.g. "FILESET+COMPRESSION+STORAGE"
    kind: str                       # "backup-set", "to-folder", "execute", "load", "size", "qa", "commands"
    status: Status = Status.OK
    start: datetime | None = None
    duration_seconds: float = 0.0
    bytes_in: int = 0
    bytes_out: int = 0
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    set_id: str | None = None
    destinations: list[str] = field(default_factory=list)   # storage names written to, for the report
    part_count: int | None = None   # parts of the set (each storage got all of them); None: not a backup set
    pruned: list[dict] = field(default_factory=list)   # per storage pruned after the set: retention.prune.summary_dict
    snapshots: list[str] = field(default_factory=list)  # snapshots taken (SNAPSHOT) or read (FILESET): "btrfs:ncbackup-…"

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if self.status == Status.OK:
            self.status = Status.WARNING

    def fail(self, message: str) -> None:
        self.error = message if self.error is None else f"{self.error}; {message}"
        self.status = Status.FAILED

    def finalize(self) -> None:
        """Settle the status from what was recorded: an error fails, a warning warns."""
        if self.error is not None:
            self.status = Status.FAILED
        elif self.warnings and self.status == Status.OK:
            self.status = Status.WARNING


@dataclass
class RunResult:
    """The outcome of one run; feeds the summary, the exit status and every notifier."""

    config_path: str
    hostname: str
    start: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    end: datetime | None = None
    steps: list[StepResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)        # run-level: disk space, config warnings
    error: str | None = None                                  # run-level: unusable config, disk full, lock
    is_unusable: bool = False                                 # nothing could run (exit 3)
    size_human: str | None = None                             # from the SIZE step, for the report
    is_lock_held: bool = False                                # another run holds the lock: exit 0

    @property
    def status(self) -> Status:
        if self.is_lock_held:
            return Status.SKIPPED
        if self.error is not None or any(step.status == Status.FAILED for step in self.steps):
            return Status.FAILED
        if self.warnings or any(step.status == Status.WARNING for step in self.steps):
            return Status.WARNING
        return Status.OK

    @property
    def exit_status(self) -> int:
        if self.is_lock_held:
            return EXIT_OK
        if self.is_unusable:
            return EXIT_UNUSABLE
        return {Status.OK: EXIT_OK, Status.WARNING: EXIT_WARNINGS}.get(self.status, EXIT_FAILED)

    @property
    def bytes_in(self) -> int:
        return sum(step.bytes_in for step in self.steps)

    @property
    def bytes_out(self) -> int:
        return sum(step.bytes_out for step in self.steps)

    @property
    def destinations(self) -> list[str]:
        seen: list[str] = []
        for step in self.steps:
            for name in step.destinations:
                if name not in seen:
                    seen.append(name)
        return seen

    def errors(self) -> list[str]:
        """Every error text of the run, run-level first."""
        found = [self.error] if self.error else []
        found += [f"{step.name}: {step.error}" for step in self.steps if step.error]
        return [mask_secrets(text) for text in found]

    def to_json_dict(self) -> dict:
        def step_dict(step: StepResult) -> dict:
            data = asdict(step)
            data["status"] = step.status.value
            data["start"] = _iso(step.start)
            data["duration_seconds"] = round(step.duration_seconds, 3)
            return data

        return _masked({
            "schema_version": SCHEMA_VERSION,
            "ncbackup_version": __version__,
            "config": self.config_path,
            "hostname": self.hostname,
            "status": self.status.value,
            "exit_status": self.exit_status,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "duration_seconds": round(self.duration_seconds, 3),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "size": self.size_human,
            "warnings": list(self.warnings),
            "error": self.error,
            "steps": [step_dict(step) for step in self.steps],
        })

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), indent=2)

    @property
    def duration_seconds(self) -> float:
        return ((self.end or datetime.now(timezone.utc)) - self.start).total_seconds()

    def summary(self) -> str:
        """A few human lines: one per step, then the verdict."""
        lines = [f"ncbackup run of {self.config_path} on {self.hostname}:"]
        for step in self.steps:
            size = ""
            if step.bytes_in or step.bytes_out:
                size = f", {human_size(step.bytes_in)} in, {human_size(step.bytes_out)} out"
            lines.append(f"  [{step.status.value:7}] {step.name} ({step.kind}, {step.duration_seconds:.1f} s{size})")
            lines.extend(f"            warning: {text}" for text in step.warnings)
            lines.extend(f"            pruned {item['storage']}: removed {len(item['removed'])} set(s), freed "
                         f"{human_size(item['freed_bytes'])}, kept {len(item['kept'])}" for item in step.pruned)
            if step.error:
                lines.append(f"            error: {step.error}")
        lines.extend(f"  warning: {text}" for text in self.warnings)
        if self.error:
            lines.append(f"  error: {self.error}")
        if self.size_human:
            lines.append(f"  backup size: {self.size_human}")
        lines.append(f"  result: {self.status.value} (exit {self.exit_status})")
        return mask_secrets("\n".join(lines))


def _masked(value: Any) -> Any:
    """value (JSON-ready dicts, lists, strings) with every registered secret masked in every string."""
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return mask_secrets(value) if isinstance(value, str) else value


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def human_size(size_bytes: float) -> str:
    """Render a byte count the way people read it: 1.5 GiB, 12.0 KiB, 512 B."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    value = float(size_bytes)
    for unit in units:
        if abs(value) < 1024 or unit == units[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
