"""Whether a config was written for the system it runs on: Windows paths on Linux, or POSIX paths on Windows.

A config's paths are read with the running system's rules; ``c:\\backup`` on Linux would be a folder
named ``c:\\backup`` in the current folder. ``ncbackup check`` says so instead of checking such paths,
and ``ncbackup run`` refuses to start.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ncbackup import platform
from ncbackup.config.settings import Config

# The GENERAL keys that are paths; a POSIX absolute path there on Windows would land on the current drive.
GENERAL_PATH_KEYS = ("WORK_FOLDER", "LOG_FOLDER", "LOCAL_BACKUP", "HOME_FOLDER")
SHOWN_PATHS = 3
# Keys that name a path on another machine (the database server, the SFTP server, an rclone remote): a Windows
# path there says nothing about the system ncbackup runs on.
REMOTE_PATH_KEYS = frozenset({"SERVER_BACKUP_FOLDER", "REMOTE_DIR", "REMOTE"})


def _strings(value: Any, key: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, key)
    elif isinstance(value, dict):
        for inner_key, inner in value.items():
            yield from _strings(inner, f"{key}.{inner_key}")


def windows_paths(config: Config) -> list[tuple[str, str]]:
    """(key, value) of every config value written as a Windows path (a drive or a share), GENERAL first."""
    found = [(f"GENERAL.{key}", text) for key, text in config.general.entries.items()
             if platform.looks_like_windows_path(text)]
    for section in config.sections:
        for key, value in section.raw_parameters.items():
            found += [(f"{section.name}.{where}", text) for where, text in _strings(value, key)
                      if platform.looks_like_windows_path(text) and where.rpartition(".")[2].upper() not in REMOTE_PATH_KEYS]
    return found


def _shown(found: list[tuple[str, str]]) -> str:
    text = ", ".join(f"{key} {value}" for key, value in found[:SHOWN_PATHS])
    return text + (f" and {len(found) - SHOWN_PATHS} more" if len(found) > SHOWN_PATHS else "")


def host_mismatch(config: Config) -> str | None:
    """One sentence when the config's paths are another system's (so nothing here can use them); None when they fit."""
    system = platform.host_system_name()
    if not platform.IS_WINDOWS:
        found = windows_paths(config)
        if found:
            return (f"this config is written for Windows ({_shown(found)} are Windows paths) and this host runs "
                    f"{system}, not Windows: ncbackup reads those paths only on Windows; copy the config to the "
                    "Windows server and run `ncbackup check` there")
        return None
    posix = [(f"GENERAL.{key}", config.general.entries[key]) for key in GENERAL_PATH_KEYS
             if config.general.entries.get(key, "").strip().startswith("/")]
    if posix:
        return (f"this config is written for a Linux or Unix server ({_shown(posix)} are POSIX paths) and this host "
                "runs Windows, where they would name folders on the current drive: write them as Windows paths "
                "such as c:\\backup")
    return None
