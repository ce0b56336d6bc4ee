"""Stand-ins for the Windows programs ncbackup runs (taskkill, whoami, icacls, vssadmin, schtasks): put first on
PATH, each records its argv (one JSON list per line in $STANDIN_LOG) and fails on demand ($STANDIN_FAIL:
space-separated program names, or `program:word` to fail only when word is an argument). What they print comes
from $STANDIN_<PROGRAM>_OUTPUT. The test machines are Linux: these record what Windows would be asked to do.

vssadmin create prints what Windows Server prints, with the ids {6c8a2e35-0000-4000-8000-00000000000N}
and devices HarddiskVolumeShadowCopyN numbered from 1 in this test, unless $STANDIN_VSSADMIN_OUTPUT is set.
taskkill also does what `/T /F /PID n` asks, the Linux way (n leads its own process group here), so a
timeout test can see the program end.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

PROGRAMS = ("taskkill", "whoami", "icacls", "vssadmin", "schtasks")

SCRIPT = '''#!{python}
import json, os, signal, sys
program = os.path.basename(sys.argv[0])
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps([program] + sys.argv[1:]) + "\\n")
for rule in os.environ.get("STANDIN_FAIL", "").split():
    name, _, word = rule.partition(":")
    if name == program and (not word or word in sys.argv[1:]):
        print(program + ": failed on demand", file=sys.stderr)
        sys.exit(5)
if program == "taskkill" and "/PID" in sys.argv:
    try:
        os.killpg(int(sys.argv[sys.argv.index("/PID") + 1]), signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
output = os.environ.get("STANDIN_" + program.upper() + "_OUTPUT")
if program == "vssadmin" and sys.argv[1:2] == ["create"] and output is None:
    # As Windows Server prints it; the n-th shadow copy of this test has id {...-00000000000n}.
    with open(os.environ["STANDIN_LOG"]) as log:
        number = sum(1 for line in log if line.startswith('["vssadmin", "create"'))
    volume = sys.argv[-1].partition("=")[2]
    bs, crlf = chr(92), chr(13) + chr(10)
    output = crlf.join([
        "vssadmin 1.1 - Volume Shadow Copy Service administrative command-line tool",
        "(C) Copyright 2001-2013 Microsoft Corp.", "",
        "Successfully created shadow copy for '" + volume + bs + "'",
        "    Shadow Copy ID: {6c8a2e35-0000-4000-8000-%012d}" % number,
        "    Shadow Copy Volume Name: " + bs.join(["", "", "?", "GLOBALROOT", "Device", "HarddiskVolumeShadowCopy%d" % number]),
        ""])
sys.stdout.write(output or "")
'''


def install(folder: Path, python: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for program in PROGRAMS:
        path = folder / program
        path.write_text(SCRIPT.replace("{python}", python))
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def environment(folder: Path, log: Path, **extra: str) -> dict[str, str]:
    return {"PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}", "STANDIN_LOG": str(log), **extra}
