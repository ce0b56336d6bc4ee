"""Install the stand-in ``sqlcmd`` (fake_sqlcmd.py) into a folder, set what its fake server holds, read what it recorded."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

FAKE = Path(__file__).with_name("fake_sqlcmd.py")
DEVELOPER = {"version": "16.0.4135.4", "engine_edition": 3, "edition": "Developer Edition (64-bit)",
             "data": "D:\\SQLData\\", "log": "L:\\SQLLogs\\"}
HOSTILE = "x]; DROP DATABASE y--"
DATABASES = [["master", "ONLINE", "SIMPLE", False], ["tempdb", "ONLINE", "SIMPLE", False],
             ["model", "ONLINE", "FULL", False], ["msdb", "ONLINE", "SIMPLE", False],
             ["shop", "ONLINE", "FULL", False], [HOSTILE, "ONLINE", "SIMPLE", False],
             ["legacy", "ONLINE", "SIMPLE", False], ["old", "OFFLINE", "FULL", False],
             ["shop_snapshot", "ONLINE", "FULL", True]]
FILE_LIST = [["shop", "C:\\Program Files\\MSSQL\\DATA\\shop.mdf", "D"],
             ["shop_log", "C:\\Program Files\\MSSQL\\DATA\\shop_log.ldf", "L"]]


def install(folder: Path, *, server_folder: str, backup_folder: Path) -> Path:
    """Write ``sqlcmd`` (this Python) and its state into folder; the server's server_folder is backup_folder here."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "sqlcmd"
    script.write_text(f"#!{sys.executable}\n" + FAKE.read_text(encoding="utf-8"), encoding="utf-8")
    script.chmod(0o755)
    write_state(folder, {"server": DEVELOPER, "databases": DATABASES, "folders": {server_folder: str(backup_folder)},
                         "file_list": FILE_LIST})
    return folder


def write_state(folder: Path, state: dict) -> None:
    (folder / "state.json").write_text(json.dumps(state), encoding="utf-8")


def update_state(folder: Path, **changes) -> None:
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    state.update(changes)
    write_state(folder, state)


def calls(folder: Path) -> list[dict]:
    path = folder / "calls.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def statements(folder: Path) -> list[str]:
    return [call["sql"] for call in calls(folder)]


def bak_bytes(database: str, kind: str = "DATABASE") -> bytes:
    """What the stand-in writes for a BACKUP of database (the same formula as fake_sqlcmd.bak_bytes)."""
    block = hashlib.sha256(f"{kind}:{database}".encode()).digest() * 2048
    return (block * 40)[: 2 * 1024 * 1024 + 5]
