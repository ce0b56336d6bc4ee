"""Helpers of the packaging tests: build the wheel and the .deb, and a tiny backup and restore with what got installed."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ncbackup import __version__
from tests.support import REPO

BUILD_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class Built:
    wheel: Path
    deb: Path


def build_all(out: Path) -> Built:
    """scripts/build all into out (never the checkout's dist/)."""
    completed = subprocess.run([str(REPO / "scripts" / "build"), "--out", str(out), "all"], capture_output=True,
                               text=True, timeout=BUILD_TIMEOUT_SECONDS, cwd=REPO)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    [deb] = out.glob(f"ncbackup_{__version__}_*.deb")
    return Built(wheel=out / f"ncbackup-{__version__}-py3-none-any.whl", deb=deb)


def run(command: list[str], *, timeout_seconds: float = 300, **options) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_seconds, **options)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def backup_and_restore(ncbackup: str, folder: Path) -> None:
    """keygen, run, list and restore --latest with the installed command; the restored files equal the originals."""
    env = {"PATH": os.defpath, "LANG": "C.UTF-8", "HOME": str(folder)}   # nothing of our virtualenv leaks in
    data = folder / "data"
    (data / "etc").mkdir(parents=True)
    for index in range(5):
        (data / "etc" / f"conf-{index}.conf").write_text(f"setting {index}\n" * 40)
    (data / "blob.bin").write_bytes(os.urandom(200_000))
    key = folder / "key.txt"
    made = run([ncbackup, "keygen", "--output", str(key), "--signing-key", str(folder / "signing.key")], env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    config = folder / "conf.json"
    config.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(folder / "work"), "LOG_FOLDER": str(folder / "log"),
                    "HOME_FOLDER": str(folder), "DISK_SPACE_CHECK": "False"},
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(key)}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {
            "DESTINATION": "local", "ARGS_DICT": repr({"LOCAL_BACKUP": str(folder / "backups")})}},
    }, indent=2))
    for command in (["check", "-c", str(config)], ["run", "-c", str(config)]):
        completed = run([ncbackup, *command], env=env)
        assert completed.returncode == 0, f"ncbackup {command[0]}: " + completed.stdout + completed.stderr
    listed = run([ncbackup, "list", "-c", str(config), "--json"], env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    [entry] = json.loads(listed.stdout)
    assert entry["is_complete"] is True
    target = folder / "restored"
    restored = run([ncbackup, "restore", "-c", str(config), "--latest", "--target", str(target)], env=env)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert tree(target / str(data).lstrip("/")) == tree(data)
