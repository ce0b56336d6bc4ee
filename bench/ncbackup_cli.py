"""How the benchmark starts ncbackup: the installed command, as a user runs it, with a generated config."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench.case import RunDirs

BENCH_HOSTNAME = "bench"
SUBCOMMANDS_NEEDED = ("run", "restore")


def ncbackup_command() -> list[str]:
    """The `ncbackup` console script if installed, else this interpreter's `-m ncbackup.cli`."""
    found = shutil.which("ncbackup")
    return [found] if found else [sys.executable, "-m", "ncbackup.cli"]


def unavailable_reason(command: list[str], subcommand: str) -> str | None:
    """None if `ncbackup SUBCOMMAND --help` works, else the last line of what it printed."""
    completed = subprocess.run(  # noqa: S603 - argument list, never a shell
        [*command, subcommand, "--help"], stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False,
    )
    if completed.returncode == 0:
        return None
    lines = completed.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit {completed.returncode}"]
    return f"`ncbackup {subcommand}` does not work yet ({lines[-1].strip()})"


def write_config(path: Path, *, dirs: RunDirs, sections: dict[str, dict]) -> Path:
    """Write a legacy-style conf.json: GENERAL pointing into the scratch filesystem, then the case's sections."""
    config = {
        "GENERAL": {
            "HOSTNAME": BENCH_HOSTNAME,
            "WORK_FOLDER": str(dirs.work),
            "HOME_FOLDER": str(dirs.root / "home"),
            "LOG_FOLDER": str(dirs.root / "log" / "ncbackup.log"),
            "LOCAL_BACKUP": str(dirs.local_backup),
        },
        **sections,
    }
    (dirs.root / "home").mkdir(exist_ok=True)
    (dirs.root / "log").mkdir(exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    return path
