"""A seekable set (SEEK_FRAME_MB) through the CLI: stock tools still restore it whole, byte for byte, and
`ncbackup restore --path` reads only a small part of it and says how much."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tests.support import need_binary

RECIPE = 'set -euo pipefail; cat files.tar.zst.age.* | age -d -i "$KEY" | zstd -d | tar -x -C "$OUT"'


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


def test_seekable_set_restores_whole_with_stock_tools_and_one_file_by_ranges(tmp_path, ncbackup_cmd):
    for tool in ("bash", "cat", "age", "zstd", "tar"):
        need_binary(tool)
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    for index in range(6):
        (data / "logs" / f"bulk-{index}.bin").write_bytes(os.urandom(1_500_000))   # ~9 MiB: many 1 MiB frames and parts
    (data / "etc").mkdir()
    (data / "etc" / "wanted.conf").write_text("listen 8080;\n" * 2000)
    (data / "etc" / "empty").write_bytes(b"")
    os.link(data / "etc" / "wanted.conf", data / "etc" / "again.conf")

    key = tmp_path / "key.txt"
    keygen = [*ncbackup_cmd, "keygen", "--output", str(key), "--signing-key", str(key.parent / "signing.key")]
    assert subprocess.run(keygen, capture_output=True).returncode == 0
    backups = tmp_path / "backups"
    config = tmp_path / "conf.json"
    config.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log")},
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "COMPRESSION": {"ACTION": "execute", "NAME": "compression", "PARAMETERS": {"SEEK_FRAME_MB": 1}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(key), "FILE_SIZE": "1"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage",
                    "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": f"{{'LOCAL_BACKUP': '{backups}'}}"}},
    }))
    ran = subprocess.run([*ncbackup_cmd, "run", "-c", str(config)], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (set_folder,) = list((backups / "web1").iterdir())
    parts = sorted(set_folder.glob("files.tar.zst.age.[0-9]*"))
    assert len(parts) >= 8
    set_bytes = sum(path.stat().st_size for path in set_folder.iterdir() if ".age." in path.name)

    out = tmp_path / "stock-restore"
    out.mkdir()
    env = {"PATH": os.environ["PATH"], "KEY": str(key), "OUT": str(out)}
    result = subprocess.run(["bash", "-c", RECIPE], cwd=set_folder, env=env, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    assert _tree(out / str(data).lstrip("/")) == _tree(data)

    target = tmp_path / "one"
    pattern = str(data / "etc").lstrip("/")
    restored = subprocess.run([*ncbackup_cmd, "restore", "-c", str(config), "--latest", "--path", pattern, "--target", str(target)],
                              capture_output=True, text=True, timeout=300)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert _tree(target / pattern) == _tree(data / "etc")
    assert (target / pattern / "again.conf").stat().st_ino == (target / pattern / "wanted.conf").stat().st_ino
    assert not (target / str(data / "logs").lstrip("/")).exists()
    said = re.search(r"files: read (\d+) of the set's (\d+) bytes \((\d+) of (\d+) frames\) for 4 member", restored.stdout)
    assert said, restored.stdout
    assert int(said.group(2)) == set_bytes
    assert int(said.group(1)) < 2 * 1024 * 1024 < set_bytes   # under two 1 MiB parts
