"""The disk space guard of COMPAT.md section 5, checked before each step."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ncbackup import platform
from ncbackup.config.settings import GeneralSettings


class Level(str, Enum):
    OK = "ok"
    WARNING = "warning"      # below the threshold
    CRITICAL = "critical"    # below half of it: logged as critical, the run goes on
    STOP = "stop"            # below a tenth of it: the run stops and reports failure


@dataclass(frozen=True)
class SpaceVerdict:
    level: Level
    free_percent: float
    message: str


def check_space(general: GeneralSettings) -> SpaceVerdict:
    """Judge the free space of the filesystem holding WORK_FOLDER against DISK_SPACE_THRESHOLD."""
    if not general.is_disk_space_check_on:
        return SpaceVerdict(Level.OK, 100.0, "disk space check is off (DISK_SPACE_CHECK)")
    usage = platform.disk_usage(Path(general.work_folder))
    return judge(usage.free_percent, general.disk_space_threshold_percent, where=general.work_folder)


def judge(free_percent: float, threshold_percent: float, *, where: Path) -> SpaceVerdict:
    """Map a free-space percentage to a level; pure, so the thresholds are testable without filling a disk."""
    # Rounded down: 19.99% free below a 20% threshold must not read "20.0% free".
    shown_percent = math.floor(round(free_percent * 10, 6)) / 10
    text = f"{shown_percent:.1f}% free on the filesystem of WORK_FOLDER {where} (threshold {threshold_percent:g}%)"
    fix = "; free some space or raise DISK_SPACE_THRESHOLD/DISK_SPACE_CHECK in GENERAL"
    if free_percent < threshold_percent / 10:
        return SpaceVerdict(Level.STOP, free_percent, f"only {text}: the run stops{fix}")
    if free_percent < threshold_percent / 2:
        return SpaceVerdict(Level.CRITICAL, free_percent, f"critically low disk space: {text}{fix}")
    if free_percent < threshold_percent:
        return SpaceVerdict(Level.WARNING, free_percent, f"low disk space: {text}{fix}")
    return SpaceVerdict(Level.OK, free_percent, text)
