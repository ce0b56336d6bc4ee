"""The MSSQL section as a user runs it: `ncbackup check`, `run`, `list`, `restore --to-database`, with a STAND-IN sqlcmd.

No SQL Server runs here: tests/integration/sources/fake_sqlcmd.py stands in for sqlcmd on PATH (see docs/mssql.md).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ncbackup.process import child_env, run
from tests.integration.sources.mssql_standin import HOSTILE, bak_bytes, calls, install, statements, update_state

PASSWORD = "e2e-Pa55 'with' $(quotes)"
SERVER_FOLDER = "D:\\bak"


def setup(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """Config, the stand-in's folder and the environment that puts it on PATH."""
    (tmp_path / "bak").mkdir()
    (tmp_path / "work").mkdir()
    fake = install(tmp_path / "bin", server_folder=SERVER_FOLDER, backup_folder=tmp_path / "bak")
    secret = tmp_path / "mssql.pass"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    config = {
        "GENERAL": {"HOSTNAME": "sqlhost", "WORK_FOLDER": str(tmp_path / "work"), "HOME_FOLDER": str(tmp_path),
                    "LOG_FOLDER": str(tmp_path / "log"), "DISK_SPACE_CHECK": "False"},
        "MSSQL": {"ACTION": "execute", "NAME": "mssql_backup",
                  "PARAMETERS": {"USER": "backup", "CREDENTIALS_FILE": str(secret), "BACKUP_FOLDER": str(tmp_path / "bak"),
                                 "SERVER_BACKUP_FOLDER": SERVER_FOLDER, "EXCLUDE_DB": "legacy", "LOG_BACKUPS": "true"}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption",
                       "PARAMETERS": {"KEY_FILE": str(tmp_path / "key.txt"), "FILE_SIZE": "1"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage",
                    "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": f"{{'LOCAL_BACKUP': '{tmp_path / 'backups'}'}}"}},
    }
    path = tmp_path / "conf.json"
    path.write_text(json.dumps(config, indent=2))
    env = child_env({"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"})
    for key in [key for key in env if key.startswith("SQLCMD")]:
        del env[key]
    return path, fake, env


def cli(ncbackup_cmd: list[str], env: dict[str, str], *args: str) -> tuple[int, str]:
    result = run([*ncbackup_cmd, *args], timeout_seconds=300, check=False, env=env)
    return result.returncode, result.text + result.stderr.decode("utf-8", "replace")


def files_holding(folder: Path, needle: bytes, *, besides: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and path != besides and needle in path.read_bytes()]


def test_check_run_list_and_restore_with_the_password_nowhere_but_the_environment(tmp_path, ncbackup_cmd):
    config, fake, env = setup(tmp_path)
    code, output = cli(ncbackup_cmd, env, "check", "-c", str(config))
    assert code == 0, output
    assert f"ok   MSSQL: sqlcmd: {fake / 'sqlcmd'}" in output
    assert f"ok   MSSQL: SQL Server credentials file {tmp_path / 'mssql.pass'} is private (0600)" in output
    assert f"ok   MSSQL: SQL Server BACKUP_FOLDER {tmp_path / 'bak'} is writable" in output
    assert f"will back up shop, {HOSTILE} (COPY_ONLY, CHECKSUM)" in output
    assert "will back up the log of shop" in output

    code, output = cli(ncbackup_cmd, env, "run", "-c", str(config))
    assert code == 1, output      # 1: the offline database is a warning
    assert "old" in output and "OFFLINE" in output and "Traceback" not in output
    code, listing = cli(ncbackup_cmd, env, "list", "-c", str(config))
    assert code == 0, listing
    for name in ("mssql-1433-shop", "mssql-1433-shop-log", "mssql-1433-x___DROP_DATABASE_y--"):
        assert name in listing, listing
    assert not list((tmp_path / "bak").iterdir())

    code, output = cli(ncbackup_cmd, env, "restore", "-c", str(config), "--latest", "--stream", "mssql-1433-shop",
                       "--to-database", "--database", "shop_copy")
    assert code == 0, output
    restore = calls(fake)[-1]
    assert restore["sql"].startswith("RESTORE DATABASE [shop_copy] FROM DISK = N'D:\\bak\\ncbackup-restore-shop_copy-")
    assert restore["bak_sha256"] == hashlib.sha256(bak_bytes("shop")).hexdigest()
    assert not list((tmp_path / "bak").iterdir())

    target = tmp_path / "plain"
    code, output = cli(ncbackup_cmd, env, "restore", "-c", str(config), "--latest", "--stream", "mssql-1433-shop-log",
                       "--target", str(target))
    assert code == 0, output
    assert (target / "mssql-1433-shop-log.trn").read_bytes() == bak_bytes("shop", "LOG")

    assert all(PASSWORD not in " ".join(call["argv"]) for call in calls(fake))
    assert files_holding(tmp_path, PASSWORD.encode(), besides=tmp_path / "mssql.pass") == []
    assert "mssql-1433-shop" in (tmp_path / "log").read_text(), "the run's log (LOG_FOLDER is its file) was searched too"


def test_a_failed_backup_fails_the_run_in_one_sentence(tmp_path, ncbackup_cmd):
    config, fake, env = setup(tmp_path)
    update_state(fake, fail_backup=[HOSTILE])
    code, output = cli(ncbackup_cmd, env, "run", "-c", str(config))
    assert code == 2, output
    assert f"BACKUP of database {HOSTILE} on SQL Server localhost failed (sqlcmd exited with status 1: Cannot open backup device" in output
    assert "Traceback" not in output and PASSWORD not in output
    assert any(sql.startswith("BACKUP DATABASE [x]]; DROP DATABASE y--]") for sql in statements(fake))
    assert not list((tmp_path / "bak").iterdir())


def test_a_login_without_its_password_file_is_a_config_error_naming_section_and_line(tmp_path, ncbackup_cmd):
    config, _fake, env = setup(tmp_path)
    data = json.loads(config.read_text())
    data["SQLSERVER"] = data.pop("MSSQL")
    del data["SQLSERVER"]["PARAMETERS"]["CREDENTIALS_FILE"]
    config.write_text(json.dumps(data, indent=2))
    for command in ("check", "run"):
        code, output = cli(ncbackup_cmd, env, command, "-c", str(config))
        assert code == 3, output
        assert "conf.json, line " in output and "SQLSERVER.CREDENTIALS_FILE: USER needs CREDENTIALS_FILE" in output, output
        assert "Traceback" not in output
