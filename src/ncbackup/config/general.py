"""The GENERAL keys ncbackup reads, as a pydantic model: the reference for docs and for error messages.

``config/load.py`` reads GENERAL without pydantic on every start (``read_general_fast``); it falls back to this
model whenever a value is not plainly valid, so every error message comes from here, and a test checks that both
ways give the same settings for the same input.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ncbackup.config.types import DurationSeconds, LegacyBool, LegacyFloat, LegacyPath
from ncbackup.config.values import to_method, to_percent


class GeneralKeys(BaseModel):
    """The GENERAL keys ncbackup itself reads; every entry is also kept as a string in ``entries``."""

    model_config = ConfigDict(extra="ignore")

    hostname: str | None = Field(
        None, alias="HOSTNAME", json_schema_extra={"shown_default": "the machine's host name"},
        description="the server's name; every storage puts this server's backups under `HOSTNAME/`, so it may "
                    "not contain `/` or `\\` or be `..`",
    )
    work_folder: LegacyPath | None = Field(
        None, alias="WORK_FOLDER",
        json_schema_extra={"shown_default": "the system temp folder + `/ncbackup` (e.g. `/tmp/ncbackup`)"},
        description="scratch space. ncbackup streams, so a pure built-in pipeline leaves it empty; it is used when "
                    "an external script sits between data sections and needs files on disk, by `rsync` and "
                    "staged `custom_command` storages (one part at a time) and by SQLite copies. A file system "
                    "root (`/`, `c:\\`) is refused",
    )
    home_folder: LegacyPath | None = Field(
        None, alias="HOME_FOLDER", json_schema_extra={"shown_default": "not set (only external scripts and plugins need it)"},
        description="the install folder of the original tool: where `execute` programs (`HOME_FOLDER/NAME/EXECUTABLE`) "
                    "and `load` plugins (`HOME_FOLDER/FROM/FILENAME.py`) are found",
    )
    log_folder: LegacyPath | None = Field(
        None, alias="LOG_FOLDER", json_schema_extra={"shown_default": "no log file (stderr only)"},
        description="the log: a **file** path (`/var/log/nc-backup-py/ncbackup.log`), or a **folder** (an existing "
                    "folder, or a path written with a trailing `/`): then `ncbackup.log` inside it. A missing log "
                    "folder is created by the first run (mode 0700, said once in the log); its parent must exist",
    )
    local_backup: LegacyPath | None = Field(
        None, alias="LOCAL_BACKUP",
        description="folder for local copies; the default base folder of a `local` storage",
    )
    is_disk_space_check_on: LegacyBool = Field(
        True, alias="DISK_SPACE_CHECK", description="the free-space guard on WORK_FOLDER's file system",
    )
    disk_space_threshold_percent: Annotated[LegacyFloat, BeforeValidator(to_percent)] = Field(
        20.0, ge=0, le=100, alias="DISK_SPACE_THRESHOLD",
        description="percent of free space on WORK_FOLDER's file system under which the guard warns (below half "
                    "of it: critical; below a tenth: the run stops); `\"20%\"` is read as 20",
    )
    report_url: str | None = Field(
        None, alias="MESSAGE_CONFIG_COMMAND", json_schema_extra={"shown_default": "no report"},
        description="URL that receives the run report (form POST: `srvname`, `result`, `bckmethod`, `size`, `log`, "
                    "`error`, `destination`)",
    )
    report_method: Annotated[str, BeforeValidator(to_method)] = Field(
        "post", alias="MESSAGE_CONFIG_METHOD", json_schema_extra={"allowed": "`post`, `email`, `sms`, `wechat`"},
        description="how the report is sent: `post` sends the form POST to MESSAGE_CONFIG_COMMAND; `email`, `sms` "
                    "and `wechat` need a NOTIFY section of that METHOD holding their settings (docs/notify.md)",
    )
    max_runtime_seconds: DurationSeconds = Field(
        24 * 3600, alias="MAX_RUNTIME", json_schema_extra={"shown_default": "`24h`"},
        description="a run that lasts longer is stopped: its running step is interrupted (programs killed), the "
                    "remaining steps are skipped, no set is marked complete, undo commands still run and the run "
                    "fails (exit 2); a run that finds the lock held by a run older than this fails naming the "
                    "holder; seconds, or `90m`, `24h`, `2d`",
    )
    alert_after_hours: LegacyFloat = Field(
        26.0, gt=0, alias="ALERT_AFTER_HOURS",
        description="when a run starts and the newest complete set on a storage is older than this many hours, "
                    "the run warns (even if it then succeeds); `ncbackup status` flags such hosts",
    )
    state_folder: LegacyPath | None = Field(
        None, alias="STATE_FOLDER",
        json_schema_extra={"shown_default": "`/var/lib/ncbackup` for root, else `~/.local/state/ncbackup`"},
        description="local state of incremental file backups (docs/incremental.md): one small file per config and "
                    "files stream, written after each complete set; created with mode 0700. A file system root is "
                    "refused",
    )
