"""SQL Server source against a STAND-IN ``sqlcmd`` (tests/integration/sources/fake_sqlcmd.py) on PATH.

No SQL Server can run on the test machines (not in Debian, no container runtime). The stand-in records
argv, the SQLCMD* environment variable names and the T-SQL, answers the listing queries with canned rows,
and writes a .bak where a BACKUP's ``TO DISK`` path maps to. So these tests prove the exact command lines
and T-SQL, the password's path (environment only), quoting of hostile names, the streaming of the .bak
through the real pipeline and its removal; they do not prove that a real server accepts the statements.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path

import pytest

from ncbackup.errors import BackupError, ConfigError
from ncbackup.sources.base import RestoreRequest
from ncbackup.sources.mssql import MssqlOptions, MssqlSource, restore_mssql
from ncbackup.sources.registry import RESTORERS, SOURCES
from tests.integration.sources.dumping import backup_through_pipeline, dump_streams
from tests.integration.sources.mssql_standin import (
    DEVELOPER,
    HOSTILE,
    bak_bytes,
    calls,
    install,
    statements,
    update_state,
)

PASSWORD = "Sql p@ss: 'quoted' \"double\" $(x)"
BASE_ARGV = ["-S", "localhost", "-d", "master", "-l", "10", "-b", "-r1", "-x", "-h-1", "-W", "-w", "65535",
             "-s", "|", "-U", "backup"]
SERVER_FOLDER = "D:\\Backups O'Neil"


@pytest.fixture
def fake(tmp_path, monkeypatch) -> Path:
    """A folder on PATH holding the stand-in ``sqlcmd`` and its state.json (a server with a few databases)."""
    (tmp_path / "bak").mkdir()
    folder = install(tmp_path / "bin", server_folder=SERVER_FOLDER, backup_folder=tmp_path / "bak")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    for key in [key for key in os.environ if key.startswith("SQLCMD")]:
        monkeypatch.delenv(key)
    return folder


def credentials(tmp_path: Path) -> Path:
    path = tmp_path / "mssql.pass"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def options(tmp_path: Path, **extra: str) -> dict[str, str]:
    values = {"USER": "backup", "CREDENTIALS_FILE": str(credentials(tmp_path)), "BACKUP_FOLDER": str(tmp_path / "bak"),
              "SERVER_BACKUP_FOLDER": SERVER_FOLDER, "EXCLUDE_DB": "legacy"}
    values.update(extra)
    return values


def source(tmp_path: Path, **extra: str) -> MssqlSource:
    return MssqlSource(MssqlOptions.model_validate(options(tmp_path, **extra)))


def bak_pattern(label: str, suffix: str = ".bak") -> str:
    return re.escape("N'" + SERVER_FOLDER.replace("'", "''") + "\\ncbackup-" + label + "-") + "[0-9a-f]{12}" + re.escape(suffix + "'")


def test_registry_knows_the_mssql_section():
    assert SOURCES["mssql_backup"].factory is MssqlSource and RESTORERS["mssql"] is restore_mssql
    assert SOURCES["mssql_backup"].execute_names == ("mssql_backup",)
    assert SOURCES["mssql_backup"].secret_file_keys == ("CREDENTIALS_FILE",)


def test_each_database_is_a_copy_only_backup_streamed_then_removed_with_the_password_only_in_the_environment(fake, tmp_path):
    run = backup_through_pipeline([source(tmp_path)], tmp_path)
    names = sorted(stream.name for stream in run.result.manifest.streams)
    assert names == ["mssql-1433-shop", "mssql-1433-x___DROP_DATABASE_y--"], names
    shop = run.stream("mssql-1433-shop")
    assert shop.status == "ok" and shop.kind == "mssql"
    assert shop.metadata == {"server": "localhost", "server_version": "16.0.4135.4", "edition": "Developer Edition (64-bit)",
                             "compression": True, "format": "bak", "database": "shop", "recovery_model": "FULL",
                             "copy_only": True}
    assert run.stream("mssql-1433-x___DROP_DATABASE_y--").metadata["database"] == HOSTILE

    sql = statements(fake)
    assert sql[0].startswith("SET NOCOUNT ON; SELECT CONVERT(varchar(64), SERVERPROPERTY('ProductVersion'))")
    assert sql[1] == ("SET NOCOUNT ON; SELECT CONVERT(varchar(1024), CONVERT(varbinary(512), name), 2), state_desc, "
                      "recovery_model_desc, CASE WHEN source_database_id IS NULL THEN 0 ELSE 1 END FROM sys.databases ORDER BY name")
    assert re.fullmatch(r"BACKUP DATABASE \[shop\] TO DISK = " + bak_pattern("shop") + " WITH COPY_ONLY, CHECKSUM, COMPRESSION",
                        sql[2]), sql[2]
    # The hostile name stays one bracketed identifier; in the file name only a sanitised label appears.
    assert re.fullmatch(r"BACKUP DATABASE \[x\]\]; DROP DATABASE y--\] TO DISK = " + bak_pattern("x-DROP-DATABASE-y")
                        + " WITH COPY_ONLY, CHECKSUM, COMPRESSION", sql[3]), sql[3]
    assert len(sql) == 4, "master, model, msdb, tempdb, an excluded, an offline and a snapshot database are not backed up"

    for call in calls(fake):
        assert call["argv"][:-1] == BASE_ARGV + ["-Q"]
        assert call["env_keys"] == ["SQLCMDPASSWORD"]
        assert call["password_sha256"] == hashlib.sha256(PASSWORD.encode()).hexdigest()
        assert PASSWORD not in json.dumps(call["argv"])
    assert not list((tmp_path / "bak").iterdir()), "every .bak is removed once streamed"
    manifest_text = "".join(path.read_text(errors="replace") for path in (tmp_path / "storage").rglob("*.json"))
    assert manifest_text and PASSWORD not in manifest_text and "SQLCMDPASSWORD" not in manifest_text

    # The .bak round-trips: restore writes it to BACKUP_FOLDER, and the server is handed exactly those bytes.
    run.restore("mssql-1433-shop", to_database=True, database="shop_copy", options=options(tmp_path))
    restore_call = calls(fake)[-1]
    assert restore_call["bak_sha256"] == hashlib.sha256(bak_bytes("shop")).hexdigest()
    assert not list((tmp_path / "bak").iterdir()), "the restored .bak is removed after the RESTORE"


def test_offline_databases_are_a_warning_and_system_databases_are_optional(fake, tmp_path):
    chosen = source(tmp_path, INCLUDE_SYSTEM_DBS="true", DATABASES="master model msdb tempdb shop old nowhere")
    outcomes = dump_streams(chosen, tmp_path / "set")
    assert sorted(outcomes) == ["mssql-1433-master", "mssql-1433-model", "mssql-1433-msdb", "mssql-1433-shop"]
    assert all(outcome.error is None for outcome in outcomes.values())
    assert any("old" in warning and "OFFLINE" in warning for warning in chosen.report.warnings), chosen.report.warnings
    assert any("nowhere" in note for note in chosen.report.notes), chosen.report.notes
    assert not any("tempdb" in sql for sql in statements(fake))


def test_files_an_interrupted_run_left_are_a_warning_not_touched(fake, tmp_path):
    leftover = tmp_path / "bak" / "ncbackup-shop-0123456789ab.bak"
    leftover.write_bytes(b"half a backup")
    (tmp_path / "bak" / "someone-elses.bak").write_bytes(b"not ours")
    chosen = source(tmp_path, DATABASES="shop")
    outcomes = dump_streams(chosen, tmp_path / "set")
    assert outcomes["mssql-1433-shop"].error is None
    assert chosen.report.warnings == [
        f"BACKUP_FOLDER {tmp_path / 'bak'} holds 1 file(s) an interrupted backup or restore left there "
        "(ncbackup-shop-0123456789ab.bak); remove them while no backup or restore runs"
    ]
    assert leftover.read_bytes() == b"half a backup"
    assert sorted(path.name for path in (tmp_path / "bak").iterdir()) == ["ncbackup-shop-0123456789ab.bak", "someone-elses.bak"]
    assert any("interrupted backup" in line.text and line.ok for line in source(tmp_path).check())


def test_log_backups_for_databases_in_full_recovery(fake, tmp_path):
    run = backup_through_pipeline([source(tmp_path, LOG_BACKUPS="true", COMPRESSION="off")], tmp_path)
    log_stream = run.stream("mssql-1433-shop-log")
    assert log_stream.status == "ok" and log_stream.kind == "mssql-log" and log_stream.metadata["format"] == "trn"
    assert "mssql-1433-x___DROP_DATABASE_y---log" not in [stream.name for stream in run.result.manifest.streams]
    sql = statements(fake)
    assert re.fullmatch(r"BACKUP DATABASE \[shop\] TO DISK = " + bak_pattern("shop") + " WITH COPY_ONLY, CHECKSUM", sql[2])
    assert re.fullmatch(r"BACKUP LOG \[shop\] TO DISK = " + bak_pattern("shop", ".trn") + " WITH CHECKSUM", sql[3]), sql[3]
    assert not list((tmp_path / "bak").iterdir())


def test_a_failed_backup_fails_its_stream_in_one_sentence_and_the_others_are_kept(fake, tmp_path):
    update_state(fake, fail_backup=["shop"])
    run = backup_through_pipeline([source(tmp_path)], tmp_path)
    failed = next(result for result in run.result.streams if result.name == "mssql-1433-shop")
    assert not failed.is_ok
    assert failed.error.startswith("BACKUP of database shop on SQL Server localhost failed (")
    assert "Access is denied" in failed.error and "\n" not in failed.error and PASSWORD not in failed.error
    assert run.stream("mssql-1433-shop").status == "failed"
    assert run.stream("mssql-1433-x___DROP_DATABASE_y--").status == "ok"
    assert not list((tmp_path / "bak").iterdir())


def test_a_name_with_a_line_break_fails_its_stream_and_never_reaches_sqlcmd(fake, tmp_path):
    splitting = "a\nGO\nDROP DATABASE shop"
    update_state(fake, databases=[["shop", "ONLINE", "FULL", False], [splitting, "ONLINE", "SIMPLE", False]])
    outcomes = dump_streams(source(tmp_path), tmp_path / "set")
    assert outcomes["mssql-1433-shop"].error is None
    (name,) = [name for name in outcomes if name != "mssql-1433-shop"]
    error = str(outcomes[name].error)
    assert error.startswith("database name 'a\\nGO\\nDROP DATABASE shop' holds a line break or control character"), error
    assert not any(sql.startswith("BACKUP DATABASE [a") for sql in statements(fake))


def test_a_bak_the_server_wrote_then_failed_on_is_removed(fake, tmp_path):
    update_state(fake, fail_backup=["shop"], write_before_failing=True)
    outcomes = dump_streams(source(tmp_path, DATABASES="shop"), tmp_path / "set")
    assert "Access is denied" in str(outcomes["mssql-1433-shop"].error)
    assert calls(fake)[-1]["local_path"].startswith(str(tmp_path / "bak"))
    assert not list((tmp_path / "bak").iterdir()), "the partial .bak is removed"


def test_a_server_writing_elsewhere_is_explained(fake, tmp_path):
    update_state(fake, server_writes_elsewhere=True)
    outcomes = dump_streams(source(tmp_path, DATABASES="shop"), tmp_path / "set")
    error = str(outcomes["mssql-1433-shop"].error)
    assert "BACKUP_FOLDER and SERVER_BACKUP_FOLDER must name the same folder" in error, error


def test_compression_follows_the_edition_unless_set(fake, tmp_path):
    update_state(fake, server={**DEVELOPER, "engine_edition": 4, "edition": "Express Edition (64-bit)"})
    outcomes = dump_streams(source(tmp_path, DATABASES="shop"), tmp_path / "set")
    assert outcomes["mssql-1433-shop"].error is None
    assert statements(fake)[-1].endswith("WITH COPY_ONLY, CHECKSUM")
    outcomes = dump_streams(source(tmp_path, DATABASES="shop", COMPRESSION="on"), tmp_path / "set2")
    assert "not supported on Express" in str(outcomes["mssql-1433-shop"].error)
    assert not list((tmp_path / "bak").iterdir())


def test_a_login_failure_is_one_failed_stream_naming_the_server(fake, tmp_path):
    update_state(fake, login_fails=True)
    outcomes = dump_streams(source(tmp_path), tmp_path / "set")
    assert list(outcomes) == ["mssql-1433"]
    error = str(outcomes["mssql-1433"].error)
    assert error.startswith("SQL Server localhost could not be read (") and "Login failed" in error
    assert "CREDENTIALS_FILE" in error and PASSWORD not in error


def test_integrated_auth_and_named_instance_send_no_password(fake, tmp_path):
    values = {"INTEGRATED_AUTH": "true", "HOST": "db1", "INSTANCE": "SQLEXPRESS", "PORT": "1434", "TRUST_SERVER_CERTIFICATE": "yes",
              "BACKUP_FOLDER": str(tmp_path / "bak"), "SERVER_BACKUP_FOLDER": SERVER_FOLDER, "DATABASES": "shop"}
    outcomes = dump_streams(MssqlSource(MssqlOptions.model_validate(values)), tmp_path / "set")
    assert list(outcomes) == ["mssql-SQLEXPRESS-shop"]
    call = calls(fake)[-1]
    assert call["argv"][:3] == ["-S", "db1\\SQLEXPRESS,1434", "-d"]
    assert call["argv"][-4:-1] == ["-E", "-C", "-Q"] and "-U" not in call["argv"]
    assert call["env_keys"] == [] and call["password_sha256"] is None


def test_restore_under_a_new_name_moves_every_file_to_the_server_folders(fake, tmp_path):
    request = RestoreRequest("mssql-1433-shop", "mssql", {"database": "shop"}, to_database=True, database="new'db]x",
                             options=options(tmp_path))
    assert restore_mssql(io.BytesIO(b"a .bak"), request) == []
    exists, filelist, info, restore = statements(fake)
    assert exists == "SET NOCOUNT ON; SELECT COUNT(*) FROM sys.databases WHERE name = N'new''db]x'"
    assert re.fullmatch(r"SET NOCOUNT ON; RESTORE FILELISTONLY FROM DISK = " + bak_pattern("restore-new-db-x"), filelist), filelist
    disk = filelist.split("FROM DISK = ", 1)[1]
    assert "InstanceDefaultDataPath" in info
    assert restore == (f"RESTORE DATABASE [new'db]]x] FROM DISK = {disk} WITH CHECKSUM, "
                       "MOVE N'shop' TO N'D:\\SQLData\\new-db-x_shop.mdf', "
                       "MOVE N'shop_log' TO N'L:\\SQLLogs\\new-db-x_shop_log.ldf', RECOVERY")
    assert calls(fake)[-1]["bak_sha256"] == hashlib.sha256(b"a .bak").hexdigest()
    assert not list((tmp_path / "bak").iterdir())


def test_restore_refuses_an_existing_database_without_force_and_replaces_with_it(fake, tmp_path):
    update_state(fake, existing=["shop"])
    request = RestoreRequest("mssql-1433-shop", "mssql", {"database": "shop"}, to_database=True, options=options(tmp_path))
    with pytest.raises(BackupError, match=r"'shop' already exists on localhost; restore with --database NEWNAME, or pass --force"):
        restore_mssql(io.BytesIO(b"a .bak"), request)
    assert not list((tmp_path / "bak").iterdir())
    forced = RestoreRequest("mssql-1433-shop", "mssql", {"database": "shop"}, to_database=True, force=True,
                            options=options(tmp_path, RESTORE_DATA_FOLDER="E:\\restore"))
    restore_mssql(io.BytesIO(b"a .bak"), forced)
    restore = statements(fake)[-1]
    assert restore.endswith("MOVE N'shop' TO N'E:\\restore\\shop_shop.mdf', MOVE N'shop_log' TO N'E:\\restore\\shop_shop_log.ldf', "
                            "REPLACE, RECOVERY"), restore
    assert not any("InstanceDefaultDataPath" in sql for sql in statements(fake)[-3:])


def test_a_failed_restore_is_one_sentence_and_removes_the_bak(fake, tmp_path):
    update_state(fake, fail_restore=True)
    request = RestoreRequest("mssql-1433-shop", "mssql", {"database": "shop"}, to_database=True, database="copy",
                             options=options(tmp_path))
    with pytest.raises(BackupError) as caught:
        restore_mssql(io.BytesIO(b"a .bak"), request)
    message = str(caught.value)
    assert message.startswith("restore of stream mssql-1433-shop into SQL Server database 'copy' on localhost failed (")
    assert "holds a backup of a database other" in message and "\n" not in message
    assert not list((tmp_path / "bak").iterdir())


def test_restore_needs_to_database_and_a_login(fake, tmp_path):
    request = RestoreRequest("mssql-1433-shop", "mssql", {"database": "shop"}, options=options(tmp_path))
    with pytest.raises(BackupError, match="only with --to-database"):
        restore_mssql(io.BytesIO(b""), request)
    no_login = RestoreRequest("mssql-1433-shop", "mssql", {"database": "shop"}, to_database=True,
                              options={"BACKUP_FOLDER": str(tmp_path / "bak")})
    with pytest.raises(ConfigError, match="set USER and CREDENTIALS_FILE, or INTEGRATED_AUTH"):
        restore_mssql(io.BytesIO(b""), no_login)
    assert calls(fake) == []


def test_check_reports_sqlcmd_the_credentials_mode_the_folder_and_the_databases(fake, tmp_path):
    lines = source(tmp_path).check()
    texts = [line.text for line in lines]
    assert all(line.ok for line in lines), texts
    assert texts[0] == f"sqlcmd: {fake / 'sqlcmd'}"
    assert texts[1] == f"SQL Server credentials file {tmp_path / 'mssql.pass'} is private (0600)"
    assert texts[2] == f"SQL Server BACKUP_FOLDER {tmp_path / 'bak'} is writable"
    assert texts[3] == "SQL Server localhost: connected, Developer Edition (64-bit) 16.0.4135.4, backups with COMPRESSION"
    assert texts[4] == f"SQL Server localhost: will back up shop, {HOSTILE} (COPY_ONLY, CHECKSUM)"
    assert texts[5] == "SQL Server localhost: excluded master, tempdb, model, msdb, legacy, old, shop_snapshot (tempdb always)"
    assert texts[6] == "warning: database old on SQL Server localhost is OFFLINE, not ONLINE: not backed up"

    loose = source(tmp_path)
    (tmp_path / "mssql.pass").chmod(0o644)
    lines = loose.check()
    assert [line.text for line in lines if not line.ok] == [
        f"SQL Server credentials file {tmp_path / 'mssql.pass'} is readable by other users (mode 0644); chmod 600 it"
    ]
    missing = MssqlSource(MssqlOptions.model_validate(options(tmp_path, SQLCMD=str(tmp_path / "nowhere" / "sqlcmd"))))
    assert not missing.check()[0].ok and "SQLCMD" in missing.check()[0].text
