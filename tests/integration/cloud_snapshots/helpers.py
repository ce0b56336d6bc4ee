"""Building a SNAPSHOT section and the GENERAL settings the cloud methods read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ncbackup.config.settings import GeneralSettings, SectionSettings


def snapshot_section(parameters: dict[str, Any], *, name: str = "SNAPSHOT") -> SectionSettings:
    return SectionSettings(name=name, action="execute", module="snapshot", parameters=parameters)


def general(tmp_path: Path, hostname: str = "web1") -> GeneralSettings:
    return GeneralSettings(hostname=hostname, work_folder=tmp_path / "work")


def config_path(tmp_path: Path, stem: str = "nightly") -> Path:
    return tmp_path / f"{stem}.json"


def write_credentials(path: Path, values: dict[str, str], *, mode: int = 0o600) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    path.chmod(mode)
    return path


def own_prefix(tmp_path: Path, *, section: str = "SNAPSHOT", hostname: str = "web1") -> str:
    """The name prefix of the snapshots the section built by these helpers makes: ``ncbackup-web1-<tag>-``."""
    from ncbackup.snapshots._cloud import name_prefix

    return name_prefix(hostname, config_path(tmp_path), section)
