"""METHOD vss: a Volume Shadow Copy of each volume (``vssadmin create shadow /for=C:``), read through its device
path, always deleted (``vssadmin delete shadows /shadow={id} /quiet``).

A shadow copy has no name ncbackup can choose, so the ids this section made are recorded in a state file
in WORK_FOLDER as soon as vssadmin prints them; the next run deletes those a killed run left, and never
any other shadow copy. Tested with a stand-in ``vssadmin`` only (the test machines are Linux):
docs/windows.md says what that leaves unverified.
"""

from __future__ import annotations

import json
import logging
import ntpath
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from ncbackup.config.types import WordList, parse_options
from ncbackup.errors import BackupError, ConfigError
from ncbackup.snapshots.base import Taken
from ncbackup.snapshots.local import run_command, tools_check
from ncbackup.snapshots.naming import name_prefix
from ncbackup.sources.base import CheckLine

if TYPE_CHECKING:
    from ncbackup.config.settings import GeneralSettings, SectionSettings

log = logging.getLogger(__name__)

# vssadmin's labels are translated with Windows; the id and the device path are not, so those are what is read.
_SHADOW_ID = re.compile(r"\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}")
_SHADOW_DEVICE = re.compile(r"\\\\\?\\GLOBALROOT\\Device\\HarddiskVolumeShadowCopy\d+", re.IGNORECASE)
_DRIVE = re.compile(r"[A-Za-z]:")


class VssOptions(BaseModel):
    """SNAPSHOT PARAMETERS of METHOD vss (docs/windows.md)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    method: str = Field(alias="METHOD", min_length=1, json_schema_extra={"allowed": "`vss`"},
                        description="how the snapshot is made: a Volume Shadow Copy (Windows Server)")
    source: WordList = Field(alias="SOURCE", min_length=1,
                             description="the volumes to shadow, as drive letters (`C:`, `C: D:`) or paths on them "
                                         "(`c:\\\\inetpub`: its drive); list the volume of every FILESET path that "
                                         "should be read from the shadow copy")


def drive_of(text: str) -> str | None:
    """``C:`` for "c:", "C:\\", "c:\\inetpub" or "C:/data"; None for anything not on a drive letter (a share too)."""
    drive = ntpath.splitdrive(text.strip())[0]
    return drive.upper() if _DRIVE.fullmatch(drive) else None


def parse_created(listing: str) -> tuple[str, str] | None:
    """(shadow id, device path) from what ``vssadmin create shadow`` printed; None when either is missing."""
    shadow_id, device = _SHADOW_ID.search(listing), _SHADOW_DEVICE.search(listing)
    if shadow_id is None or device is None:
        return None
    return shadow_id.group(0), device.group(0)


def create_argv(drive: str) -> list[str]:
    return ["vssadmin", "create", "shadow", f"/for={drive}"]


def delete_argv(shadow_id: str) -> list[str]:
    return ["vssadmin", "delete", "shadows", f"/shadow={shadow_id}", "/quiet"]


class VssSnapshot:
    """One shadow copy per SOURCE volume; FILESET paths on a volume are read through its shadow's device path."""

    def __init__(self, name: str, *, drives: list[str], state_file: Path) -> None:
        self.name = name
        self.drives = drives
        self.state_file = state_file
        self._made: list[str] = []        # ids created by this run and not yet deleted

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings, *, config_path: Path) -> VssSnapshot:
        options = parse_options(VssOptions, section)
        drives: list[str] = []
        for text in options.source:
            drive = drive_of(text)
            if drive is None:
                position = section.parameter_positions.get("SOURCE") or section.position
                raise ConfigError(f"section {section.name}: vss SOURCE {text!r} is not on a drive letter; write the "
                                  "volume as C: (a network share cannot be shadowed here: shadow it on its server)",
                                  file=config_path, line=position.line if position else None, key="SOURCE")
            if drive not in drives:
                drives.append(drive)
        prefix = name_prefix(general.hostname, config_path, section.name)
        return cls(section.name, drives=drives, state_file=Path(general.work_folder) / "snapshots" / f"{prefix}vss.json")

    # --- the state file: the ids made and not yet deleted -------------------------------------------------

    def _recorded(self) -> list[str]:
        try:
            ids = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as error:
            log.warning("cannot read %s (%s); shadow copies it listed are not removed", self.state_file, error)
            return []
        return [shadow_id for shadow_id in ids if isinstance(shadow_id, str) and _SHADOW_ID.fullmatch(shadow_id)] \
            if isinstance(ids, list) else []

    def _record(self, ids: list[str]) -> None:
        if not ids:
            self.state_file.unlink(missing_ok=True)
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(ids) + "\n", encoding="utf-8")
        temporary.replace(self.state_file)

    # --- the Snapshot protocol ----------------------------------------------------------------------

    def check(self) -> list[CheckLine]:
        lines = tools_check(["vssadmin"], "vss")
        lines.append(CheckLine(True, f"vss: a shadow copy of {', '.join(self.drives)} is made by each run (not by "
                                     "check); FILESET paths on " + ("it" if len(self.drives) == 1 else "them")
                                     + " are read from it, and it is deleted at the end of the run"))
        return lines

    def take(self) -> Taken:
        mapping: dict[Path, Path] = {}
        ids: list[str] = []
        try:
            for drive in self.drives:
                listing = run_command(create_argv(drive)).text
                created = parse_created(listing)
                if created is None:
                    raise BackupError(f"vssadmin create shadow /for={drive} printed no shadow copy id and device "
                                      f"path; run `vssadmin list shadows /for={drive}` and delete the newest one by "
                                      "hand if it was made")
                shadow_id, device = created
                self._made.append(shadow_id)
                self._record(self._recorded() + [shadow_id])
                ids.append(shadow_id)
                mapping[Path(f"{drive}\\")] = Path(f"{device}\\")
        except OSError as error:
            self.release()
            raise BackupError(f"cannot record the shadow copy in {self.state_file} ({error.strerror}); make "
                              "WORK_FOLDER writable") from None
        except BaseException:
            self.release()
            raise
        return Taken(method="vss", ids=tuple(ids), mapping=mapping)

    def _delete(self, shadow_id: str) -> str | None:
        """Delete one shadow copy; None when done or already gone, else why not."""
        try:
            run_command(delete_argv(shadow_id))
        except BackupError as error:
            try:
                if shadow_id.lower() not in run_command(["vssadmin", "list", "shadows"]).text.lower():
                    return None   # already gone: deleted by hand, or by Windows for lack of space
            except BackupError:
                pass
            return str(error)
        return None

    def release(self) -> list[str]:
        warnings: list[str] = []
        for shadow_id in list(self._made):
            problem = self._delete(shadow_id)
            if problem is not None:
                warnings.append(f"could not delete the shadow copy {shadow_id} ({problem}); the next run deletes it, "
                                f"or run: vssadmin delete shadows /shadow={shadow_id} /quiet")
                continue
            self._made.remove(shadow_id)
            try:
                self._record([other for other in self._recorded() if other != shadow_id])
            except OSError as error:
                warnings.append(f"deleted the shadow copy {shadow_id} but could not update {self.state_file} "
                                f"({error.strerror})")
        return warnings

    def cleanup_leftovers(self) -> list[str]:
        removed: list[str] = []
        kept: list[str] = []
        for shadow_id in self._recorded():
            problem = self._delete(shadow_id)
            if problem is None:
                removed.append(f"deleted the shadow copy {shadow_id} that an interrupted run left behind")
            else:
                kept.append(shadow_id)
                log.warning("could not delete the shadow copy %s an interrupted run left (%s)", shadow_id, problem)
        try:
            self._record(kept)
        except OSError as error:
            raise BackupError(f"cannot update {self.state_file} ({error.strerror}); make WORK_FOLDER writable") from None
        return removed
