"""The database sections as a user runs them: a legacy-style conf.json, `ncbackup run`, `check`, `restore --to-database`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ncbackup.process import run
from tests.integration.servers.mariadb import MariaDB, free_port
from tests.integration.servers.postgres import Postgres

pytestmark = pytest.mark.integration


def write_config(tmp_path: Path, mariadb: MariaDB, postgres: Postgres, *, instances: str) -> Path:
    config = {
        "GENERAL": {"HOSTNAME": "dbhost", "WORK_FOLDER": str(tmp_path / "work"), "HOME_FOLDER": str(tmp_path),
                    "LOG_FOLDER": str(tmp_path / "log"), "DISK_SPACE_CHECK": "False"},
        "DBSBACKUP": {"ACTION": "execute", "NAME": "mysql_backup", "EXECUTABLE": "mysql_dump.py", "EXECUTE_WITH": "python",
                      "PARAMETERS": {"CREDENTIAL_PATH": str(mariadb.credential_path), "MY_INSTANCES": instances,
                                     "EXCLUDE_DB": "mysql", "BINLOG_DAYS": "2", "PREFIX_FOLDER": "mydump",
                                     "MYSQL_DUMP_BINARY": "/usr/bin/mysql", "TAR_COMMAND": "tar czf "}},
        "POSTGRES": {"ACTION": "load", "FROM": "postgres", "CLASS": "PostgresBackup",
                     "PARAMETERS": {**postgres.options(), "EXCLUDE_DB": "postgres", "PREFIX_FOLDER": "pgdump"}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption",
                       "PARAMETERS": {"KEY_FILE": str(tmp_path / "key.txt"), "FILE_SIZE": "1"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage",
                    "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": f"{{'LOCAL_BACKUP': '{tmp_path / 'backups'}'}}"}},
    }
    (tmp_path / "work").mkdir(exist_ok=True)
    path = tmp_path / "conf.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def cli(ncbackup_cmd: list[str], *args: str) -> tuple[int, str]:
    result = run([*ncbackup_cmd, *args], timeout_seconds=600, check=False)
    return result.returncode, result.text + result.stderr.decode("utf-8", "replace")


def test_run_then_restore_to_database_under_a_new_name(mariadb, postgres, tmp_path, ncbackup_cmd):
    config = write_config(tmp_path, mariadb, postgres, instances=str(mariadb.port))
    code, output = cli(ncbackup_cmd, "run", "-c", str(config))
    assert code in (0, 1), output
    code, listing = cli(ncbackup_cmd, "list", "-c", str(config))
    assert code == 0, listing
    for name in (f"mysql-{mariadb.port}-shop", f"mysql-{mariadb.port}-legacy", f"mysql-{mariadb.port}-binlogs",
                 f"postgres-{postgres.port}-app", f"postgres-{postgres.port}-globals"):
        assert name in listing, listing

    code, output = cli(ncbackup_cmd, "restore", "-c", str(config), "--stream", f"mysql-{mariadb.port}-shop",
                       "--to-database", "--database", "shop_cli")
    assert code == 0, output
    query = "SELECT id, name, HEX(photo) FROM customers ORDER BY id"
    assert mariadb.sql(query, database="shop_cli") == mariadb.sql(query, database="shop")
    mariadb.sql("DROP DATABASE shop_cli")

    code, output = cli(ncbackup_cmd, "restore", "-c", str(config), "--stream", f"postgres-{postgres.port}-app",
                       "--to-database", "--database", "app_cli")
    assert code == 0, output
    query = "SELECT id, name, encode(photo, 'hex') FROM customers ORDER BY id"
    assert postgres.psql(query, database="app_cli") == postgres.psql(query, database="app")
    postgres.psql("DROP DATABASE app_cli")

    # Without --to-database the dump is a plain file a stock client can load.
    target = tmp_path / "plain"
    code, output = cli(ncbackup_cmd, "restore", "-c", str(config), "--stream", f"mysql-{mariadb.port}-legacy", "--target", str(target))
    assert code == 0, output
    (dump,) = target.rglob("*.sql")
    assert b"CREATE TABLE `visits`" in dump.read_bytes()


def test_an_unreachable_instance_fails_the_run_and_is_named_while_the_others_are_backed_up(mariadb, postgres, tmp_path, ncbackup_cmd):
    dead = free_port()
    config = write_config(tmp_path, mariadb, postgres, instances=f"{dead} {mariadb.port}")
    code, output = cli(ncbackup_cmd, "run", "-c", str(config))
    assert code == 2, output
    assert f"mysql-{dead}" in output and "Traceback" not in output
    code, listing = cli(ncbackup_cmd, "list", "-c", str(config))
    assert f"mysql-{mariadb.port}-shop" in listing


def test_check_lists_binaries_connections_and_databases(mariadb, postgres, tmp_path, ncbackup_cmd):
    config = write_config(tmp_path, mariadb, postgres, instances=str(mariadb.port))
    code, output = cli(ncbackup_cmd, "check", "-c", str(config))
    assert code == 0, output
    assert f"MySQL instance {mariadb.port}: will dump" in output and "shop" in output
    assert "excluded" in output and "information_schema" in output
    assert f"port {postgres.port}: will dump app, reports and globals" in output
