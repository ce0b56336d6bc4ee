"""Stand-in lvcreate, lvremove, lvs, vgs, mount, umount, fsfreeze and zfs: put first on PATH, they record their
argv (one JSON list per line in $STANDIN_LOG) and fail on demand ($STANDIN_FAIL: space-separated program names,
or `program:word` to fail only when word is an argument). Listings come from $STANDIN_<PROGRAM>_OUTPUT."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

PROGRAMS = ("lvcreate", "lvremove", "lvs", "vgs", "mount", "umount", "fsfreeze", "zfs")

SCRIPT = '''#!{python}
import json, os, sys
program = os.path.basename(sys.argv[0])
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps([program] + sys.argv[1:]) + "\\n")
for rule in os.environ.get("STANDIN_FAIL", "").split():
    name, _, word = rule.partition(":")
    if name == program and (not word or word in sys.argv[1:]):
        print(program + ": failed on demand", file=sys.stderr)
        sys.exit(5)
sys.stdout.write(os.environ.get("STANDIN_" + program.upper() + "_OUTPUT", ""))
'''


def install(folder: Path, python: str) -> Path:
    return install_programs(folder, PROGRAMS, SCRIPT.format(python=python))


def install_programs(folder: Path, programs: tuple[str, ...], script: str) -> Path:
    """Write script as each of programs in folder, executable (the stand-in modules share this)."""
    folder.mkdir(parents=True, exist_ok=True)
    for program in programs:
        path = folder / program
        path.write_text(script)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def environment(folder: Path, log: Path, **extra: str) -> dict[str, str]:
    return {"PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}", "STANDIN_LOG": str(log), **extra}
