"""A set made by ncbackup restored with ONLY Debian's cat, age, zstd and tar: the docs' "restore without ncbackup"."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support import need_binary

# The exact recipe of docs/restore.md, run by bash with pipefail so any failing tool fails the test.
RECIPE = 'set -euo pipefail; cat files.tar.zst.age.* | age -d -i "$KEY" | zstd -d | tar -x -C "$OUT"'
INDEX_RECIPE = 'set -euo pipefail; cat files-index.jsonl.zst.age.* | age -d -i "$KEY" | zstd -d'


def _tree(root: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if path.is_symlink():
            out[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            out[relative] = "dir"
        else:
            out[relative] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return out


def test_set_restores_with_cat_age_zstd_tar_only(tmp_path, ncbackup_cmd):
    for tool in ("bash", "cat", "age", "zstd", "tar"):
        need_binary(tool)
    data = tmp_path / "data"
    (data / "etc" / "nginx").mkdir(parents=True)
    for index in range(30):
        (data / "etc" / "nginx" / f"site-{index}.conf").write_text(f"server {{ listen {8000 + index}; }}\n" * 30)
    (data / "srv").mkdir()
    (data / "srv" / "big.bin").write_bytes(os.urandom(3_300_000))   # several 1 MiB parts
    (data / "srv" / "script.sh").write_text("#!/bin/sh\necho hi\n")
    (data / "srv" / "script.sh").chmod(0o750)
    (data / "srv" / "empty").mkdir()
    os.symlink("script.sh", data / "srv" / "run")

    key = tmp_path / "key.txt"
    keygen = [*ncbackup_cmd, "keygen", "--output", str(key), "--signing-key", str(key.parent / "signing.key")]
    assert subprocess.run(keygen, capture_output=True).returncode == 0
    backups = tmp_path / "backups"
    config = tmp_path / "conf.json"
    config.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log")},
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "COMPRESSION": {"ACTION": "execute", "NAME": "compression", "PARAMETERS": {}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(key), "FILE_SIZE": "1"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage",
                    "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": f"{{'LOCAL_BACKUP': '{backups}'}}"}},
    }))
    ran = subprocess.run([*ncbackup_cmd, "run", "-c", str(config)], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (set_folder,) = list((backups / "web1").iterdir())
    assert len(list(set_folder.glob("files.tar.zst.age.[0-9]*"))) >= 3

    out = tmp_path / "stock-restore"
    out.mkdir()
    env = {"PATH": os.environ["PATH"], "KEY": str(key), "OUT": str(out)}
    result = subprocess.run(["bash", "-c", RECIPE], cwd=set_folder, env=env, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    assert _tree(out / str(data).lstrip("/")) == _tree(data)

    index = subprocess.run(["bash", "-c", INDEX_RECIPE], cwd=set_folder, env=env, capture_output=True, timeout=300)
    assert index.returncode == 0, index.stderr.decode()
    assert b"big.bin" in index.stdout


def test_stock_recipe_fails_loudly_on_a_damaged_part(tmp_path, ncbackup_cmd):
    """age authenticates every chunk: a flipped byte stops the stock pipeline with an error, not silent garbage."""
    for tool in ("bash", "cat", "age", "zstd", "tar"):
        need_binary(tool)
    data = tmp_path / "data"
    data.mkdir()
    (data / "blob.bin").write_bytes(os.urandom(2_500_000))
    key = tmp_path / "key.txt"
    subprocess.run([*ncbackup_cmd, "keygen", "--output", str(key), "--signing-key", str(key.parent / "signing.key")],
                   capture_output=True, check=True)
    backups = tmp_path / "backups"
    config = tmp_path / "conf.json"
    config.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log")},
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(key), "FILE_SIZE": "1"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage",
                    "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": f"{{'LOCAL_BACKUP': '{backups}'}}"}},
    }))
    assert subprocess.run([*ncbackup_cmd, "run", "-c", str(config)], capture_output=True, timeout=300).returncode == 0
    (set_folder,) = list((backups / "web1").iterdir())
    part = sorted(set_folder.glob("files.tar.zst.age.[0-9]*"))[1]
    damaged = bytearray(part.read_bytes())
    damaged[1234] ^= 0x80
    part.write_bytes(bytes(damaged))

    out = tmp_path / "stock-restore"
    out.mkdir()
    env = {"PATH": os.environ["PATH"], "KEY": str(key), "OUT": str(out)}
    result = subprocess.run(["bash", "-c", RECIPE], cwd=set_folder, env=env, capture_output=True, timeout=300)
    assert result.returncode != 0
