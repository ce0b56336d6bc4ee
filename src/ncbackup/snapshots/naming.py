"""How ncbackup names its snapshots, so that the next run recognises what a killed run left, and only that.

A name is ``ncbackup-<host>-<config tag>-<UTC time>``: the tag is a short hash of the config file's path
and the SNAPSHOT section's name (two SNAPSHOT sections of one config never remove each other's snapshot).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from pathlib import Path

PREFIX = "ncbackup"
TIME_FORMAT = "%Y%m%dT%H%M%SZ"
_TIME_PATTERN = re.compile(r"\d{8}T\d{6}Z")
# Characters every method accepts in a name (LVM: [A-Za-z0-9+_.-], ZFS: alphanumerics and -_.:).
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def config_tag(config_path: Path, section_name: str) -> str:
    """Eight hex digits standing for this config file and section."""
    text = f"{Path(config_path).resolve()}\0{section_name}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def name_prefix(hostname: str, config_path: Path, section_name: str) -> str:
    """``ncbackup-<host>-<tag>-``: what every snapshot of this section starts with."""
    host = _UNSAFE.sub("-", hostname).strip("-.") or "host"
    return f"{PREFIX}-{host}-{config_tag(config_path, section_name)}-"


def new_name(prefix: str, now: datetime | None = None) -> str:
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return prefix + moment.strftime(TIME_FORMAT)


def is_own_name(name: str, prefix: str) -> bool:
    """True for a name this section's runs make (the prefix, then a UTC time), never for anything else."""
    return name.startswith(prefix) and bool(_TIME_PATTERN.fullmatch(name[len(prefix):]))
