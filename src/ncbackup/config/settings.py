"""Typed settings: the GENERAL section and the envelope of every other section.

Legacy spellings are normalised in ``config/legacy.py`` before anything here is built; every later
module sees these objects, never the raw JSON. Each plugin parses its own PARAMETERS into its own
typed options with ``parse_options`` (config/types.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Position:
    """Where something stands in the config file (1-based)."""

    file: Path
    line: int
    column: int = 1


@dataclass(frozen=True)
class GeneralSettings:
    hostname: str
    work_folder: Path
    home_folder: Path | None = None
    log_file: Path | None = None            # LOG_FOLDER resolved: a file, or <folder>/ncbackup.log
    local_backup: Path | None = None
    is_disk_space_check_on: bool = True
    disk_space_threshold_percent: float = 20.0
    report_url: str | None = None           # MESSAGE_CONFIG_COMMAND
    report_method: str = "post"             # MESSAGE_CONFIG_METHOD
    max_runtime_seconds: float = 24 * 3600  # MAX_RUNTIME: a run is stopped past it; a lock held longer means a hung run
    alert_after_hours: float = 26.0         # ALERT_AFTER_HOURS: the newest complete set older than this is a warning
    state_folder: Path | None = None        # STATE_FOLDER: local state (incremental backups); None = platform default
    entries: dict[str, str] = field(default_factory=dict)  # GENERAL as written (strings), for execute sections
    position: Position | None = None


@dataclass(frozen=True)
class SectionSettings:
    """One non-GENERAL section, normalised (aliases applied, ARGS_DICT parsed to a dict)."""

    name: str                               # the section's key, e.g. "FILESET"
    action: str | None                      # "execute" | "load" | None (configuration read by others)
    module: str | None                      # NAME for execute, FROM for load
    executable: str | None = None           # EXECUTABLE (execute)
    execute_with: str | None = None         # EXECUTE_WITH (execute)
    filename: str | None = None             # FILENAME (load; defaults to FROM)
    class_name: str | None = None           # CLASS (load)
    parameters: dict[str, Any] = field(default_factory=dict)      # normalised PARAMETERS
    raw_parameters: dict[str, Any] = field(default_factory=dict)  # PARAMETERS as written, for external scripts
    parameters_mode: str = "named"          # "named" (--KEY value) | "flat" (values only)
    timeout_seconds: float | None = None    # TIMEOUT: per-section limit; None = no limit
    extra: dict[str, Any] = field(default_factory=dict)           # other top-level keys (e.g. CLEANUP's KEEP)
    position: Position | None = None
    parameter_positions: dict[str, Position] = field(default_factory=dict)
    key_positions: dict[str, Position] = field(default_factory=dict)  # the section's own keys (PARAMETERS, KEEP, ...)


@dataclass(frozen=True)
class Config:
    path: Path
    general: GeneralSettings
    sections: list[SectionSettings]
    warnings: list[str] = field(default_factory=list)   # duplicate keys, ignored keys, ...
