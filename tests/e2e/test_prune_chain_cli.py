"""``ncbackup prune`` on incremental chains as a user runs it: --dry-run says why a full stays ("kept: parent of
..."), a chain no kept set needs goes whole, and what is left still verifies."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ncbackup.signing import read_secret_key
from tests.support import ensure_signing_key
from tests.support_chains import ChainMaker


def _config(tmp_path: Path, maker: ChainMaker) -> Path:
    config = tmp_path / "conf.json"
    config.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log")},
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(maker.data)}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(maker.key_file)}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage",
                    "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": f"{{'LOCAL_BACKUP': '{maker.storage_folder}'}}"}},
        "CLEANUP": {"KEEP": {"LAST": "1"}},
    }))
    return config


def _cli(ncbackup_cmd: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ncbackup_cmd, *args], capture_output=True, text=True, timeout=300)


def test_prune_keeps_the_chain_of_the_kept_set_and_removes_an_old_chain_whole(tmp_path, ncbackup_cmd):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("a\n")
    maker = ChainMaker.create(tmp_path, data, signer=read_secret_key(ensure_signing_key(tmp_path)))
    old_full = maker.backup()
    (data / "b.txt").write_text("b\n")
    old_increment = maker.backup()
    full = maker.backup(full=True)
    (data / "c.txt").write_text("c\n")
    first = maker.backup()
    (data / "d.txt").write_text("d\n")
    newest = maker.backup()
    config = _config(tmp_path, maker)

    dry = _cli(ncbackup_cmd, "prune", "-c", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    lines = {line.split()[0]: line for line in dry.stdout.splitlines() if line.strip().startswith("2026")}
    assert "keep" in lines[full] and f"kept: parent of {first}" in lines[full]
    assert "keep" in lines[first] and f"kept: parent of {newest}" in lines[first]
    assert "would remove" in lines[old_full] and "would remove" in lines[old_increment]
    assert "would remove 2 sets" in dry.stdout

    pruned = _cli(ncbackup_cmd, "prune", "-c", str(config), "--json")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    (storage,) = json.loads(pruned.stdout)["storages"]
    assert storage["removed"] == [old_full, old_increment]
    assert sorted(path.name for path in (maker.storage_folder / "web1").iterdir()) == [full, first, newest]
    verified = _cli(ncbackup_cmd, "verify", "-c", str(config), "--latest")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"chain of set {newest} is good: {full}, {first}, {newest}" in verified.stdout
