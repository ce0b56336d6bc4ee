"""MySQL/MariaDB source against real throwaway MariaDB servers: dump, drop, restore, compare."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from ncbackup.errors import BackupError, SourceError
from ncbackup.process import run
from ncbackup.sources.base import RestoreRequest
from ncbackup.sources.mysql import MysqlOptions, MysqlSource, restore_mysql, restore_mysql_binlogs
from ncbackup.sources.registry import RESTORERS, SOURCES
from tests.integration.servers.mariadb import BACKUP_PASSWORD, MariaDB
from tests.integration.sources.dumping import backup_through_pipeline, dump_streams

pytestmark = pytest.mark.integration

SHOP_DEFINITIONS = [
    "SHOW CREATE TABLE customers", "SHOW CREATE TABLE orders", "SHOW CREATE TABLE audit",
    "SHOW CREATE VIEW big_orders", "SHOW CREATE TRIGGER orders_audit", "SHOW CREATE PROCEDURE customer_count",
    "SHOW CREATE EVENT nightly_cleanup",
]
SHOP_CONTENTS = [
    "SELECT id, name, HEX(photo) FROM customers ORDER BY id",
    "SELECT id, customer_id, total FROM orders ORDER BY id",
    "SELECT id, note FROM audit ORDER BY id",
    "SELECT * FROM big_orders ORDER BY name",
]


def source_for(server: MariaDB, tmp_path: Path, **parameters: str) -> MysqlSource:
    values = {"CREDENTIAL_PATH": str(server.credential_path), "MY_INSTANCES": str(server.port)}
    values.update(parameters)
    return MysqlSource(MysqlOptions.model_validate(values), work_folder=tmp_path)


def snapshot(server: MariaDB, database: str, statements: list[str]) -> list[str]:
    # Definitions carry the creation-time sql_mode and definer; both are dumped, so they must match exactly.
    # Only a trigger's "Created" timestamp (the last column) is the restore time.
    outputs = []
    for statement in statements:
        text = server.sql(statement, database=database)
        outputs.append(text.rsplit("\t", 1)[0] if "TRIGGER" in statement else text)
    return outputs


def restore_request(outcome, server: MariaDB, **extra) -> RestoreRequest:
    return RestoreRequest(
        stream_name=outcome.stream.name, kind=outcome.stream.kind, metadata=outcome.report.metadata,
        to_database=True, options={"CREDENTIAL_PATH": str(server.credential_path), "MY_INSTANCES": str(server.port)},
        **extra,
    )


def test_registry_knows_the_mysql_section_and_its_stream_kinds():
    assert SOURCES["mysql_backup"].factory is MysqlSource
    assert RESTORERS["mysql"] is restore_mysql and RESTORERS["mysql-binlogs"] is restore_mysql_binlogs


def test_shop_database_round_trips_rows_blobs_and_definitions(mariadb, tmp_path):
    definitions = snapshot(mariadb, "shop", SHOP_DEFINITIONS)
    contents = snapshot(mariadb, "shop", SHOP_CONTENTS)
    outcomes = dump_streams(source_for(mariadb, tmp_path), tmp_path / "set")
    shop = outcomes[f"mysql-{mariadb.port}-shop"]
    assert shop.error is None
    assert shop.report.metadata["locking"] == "single-transaction"
    assert shop.report.metadata["server_flavour"] == "mariadb"
    assert BACKUP_PASSWORD not in repr(shop.report.metadata) and BACKUP_PASSWORD not in " ".join(shop.stream.argv)
    assert shop.stream.argv[1] == f"--defaults-extra-file={mariadb.credential_path}"

    mariadb.sql("DROP DATABASE shop")
    with open(shop.path, "rb") as reader:
        assert restore_mysql(reader, restore_request(shop, mariadb)) == []

    assert snapshot(mariadb, "shop", SHOP_CONTENTS) == contents
    assert snapshot(mariadb, "shop", SHOP_DEFINITIONS) == definitions
    assert "Zoë Ångström" in contents[0] and "山田太郎" in contents[0]


def test_system_schemas_are_skipped_and_exclude_db_is_honoured(mariadb, tmp_path):
    outcomes = dump_streams(source_for(mariadb, tmp_path, EXCLUDE_DB="legacy"), tmp_path / "set")
    databases = {name.split("-", 2)[2] for name in outcomes}
    assert "shop" in databases and "mysql" in databases
    assert not databases & {"legacy", "information_schema", "performance_schema", "sys"}


def test_mixed_engine_database_is_dumped_under_table_locks_and_restores_under_a_new_name(mariadb, tmp_path):
    outcomes = dump_streams(source_for(mariadb, tmp_path), tmp_path / "set")
    legacy = outcomes[f"mysql-{mariadb.port}-legacy"]
    assert legacy.error is None
    assert legacy.report.metadata["locking"] == "lock-tables"
    assert "--lock-tables" in legacy.stream.argv and "--single-transaction" not in legacy.stream.argv
    assert any("legacy: lock-tables" in note for note in legacy.report.notes)

    with open(legacy.path, "rb") as reader:
        restore_mysql(reader, restore_request(legacy, mariadb, database="legacy_copy"))
    for query in ("SELECT * FROM visits ORDER BY id", "SELECT * FROM users ORDER BY id"):
        assert mariadb.sql(query, database="legacy_copy") == mariadb.sql(query, database="legacy")
    engines = mariadb.sql("SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA='legacy_copy' ORDER BY 1")
    assert engines == "users\tInnoDB\nvisits\tMyISAM\n"
    mariadb.sql("DROP DATABASE legacy_copy")


def test_restore_refuses_to_load_over_a_database_that_has_tables(mariadb, tmp_path):
    outcomes = dump_streams(source_for(mariadb, tmp_path, EXCLUDE_DB="mysql shop"), tmp_path / "set")
    legacy = outcomes[f"mysql-{mariadb.port}-legacy"]
    with open(legacy.path, "rb") as reader, pytest.raises(BackupError, match="already has tables.*--force"):
        restore_mysql(reader, restore_request(legacy, mariadb))


def test_exclude_table_leaves_the_table_out_and_a_missing_one_is_a_warning(mariadb, tmp_path):
    source = source_for(mariadb, tmp_path, EXCLUDE_DB="mysql legacy", EXCLUDE_TABLE="shop.secrets_cache shop.no_such_table")
    outcomes = dump_streams(source, tmp_path / "set")
    shop = outcomes[f"mysql-{mariadb.port}-shop"]
    assert shop.error is None
    assert b"secrets_cache" not in shop.data and b"not for backup" not in shop.data
    assert b"CREATE TABLE `customers`" in shop.data
    assert any("shop.no_such_table" in warning and "does not exist" in warning for warning in shop.report.warnings)


def test_binary_logs_are_flushed_copied_and_the_position_recorded(mariadb, tmp_path):
    mariadb.sql("INSERT INTO shop.audit (note) VALUES ('before the binlog backup')")
    outcomes = dump_streams(source_for(mariadb, tmp_path, BINLOG_DAYS="3", EXCLUDE_DB="mysql legacy"), tmp_path / "set")
    binlogs = outcomes[f"mysql-{mariadb.port}-binlogs"]
    assert binlogs.error is None
    position = binlogs.report.metadata["binlog_position"]
    active = mariadb.sql("SHOW MASTER STATUS").split("\t")[0]
    assert position["file"] == active and position["position"] > 0

    with tarfile.open(binlogs.path) as archive:
        names = archive.getnames()
    assert names and active not in names
    assert all(name.startswith("mysql-bin.") for name in names)
    # The copied logs are real binlogs holding the insert above.
    target = tmp_path / "restored-binlogs"
    with open(binlogs.path, "rb") as reader:
        restore_mysql_binlogs(reader, RestoreRequest(binlogs.stream.name, "mysql-binlogs", binlogs.report.metadata, target=target))
    decoded = run(["mariadb-binlog", *[str(target / name) for name in names]], timeout_seconds=60).text
    assert "before the binlog backup" in decoded
    assert outcomes[f"mysql-{mariadb.port}-shop"].report.metadata["binlog_position"] == position


@pytest.mark.parametrize("binlog_days", ["3", "0"])
def test_an_instance_warning_is_reported_once_for_the_instance_not_on_a_database(mariadb, tmp_path, binlog_days):
    # A backup user without RELOAD: FLUSH BINARY LOGS fails, which concerns the instance, not one of its databases.
    user, password = "no_reload", "no-reload-Pa55"
    mariadb.sql(f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{password}';"
                f"GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, BINLOG MONITOR ON *.* TO '{user}'@'%';")
    credentials = tmp_path / "no-reload.cnf"
    credentials.write_text("".join(f"[{group}]\nuser={user}\npassword={password}\nhost=127.0.0.1\n" for group in ("mysqldump", "mysql")))
    credentials.chmod(0o600)
    port = mariadb.port
    try:
        # legacy.gone: an EXCLUDE_TABLE in a database that is not dumped is about the instance too.
        source = source_for(mariadb, tmp_path, CREDENTIAL_PATH=str(credentials), BINLOG_DAYS=binlog_days,
                            EXCLUDE_DB="mysql legacy", EXCLUDE_TABLE="legacy.gone shop.gone")
        result = backup_through_pipeline([source], tmp_path / "pipeline").result
    finally:
        mariadb.sql(f"DROP USER IF EXISTS '{user}'@'%'")
    assert result.failed_streams == [] and result.is_complete
    # Whether or not the instance has a stream of its own (binlogs), its messages are the source's, said once.
    assert all(not stream.warnings or "shop.gone" in stream.warnings[0] for stream in result.streams)
    flush = [warning for warning in result.warnings if "FLUSH BINARY LOGS failed" in warning]
    assert len(flush) == 1 and flush[0].startswith(f"FLUSH BINARY LOGS failed on instance {port} (")
    assert flush[0].endswith("grant RELOAD to the backup user")
    assert [warning for warning in result.warnings if "legacy.gone" in warning] == [
        "EXCLUDE_TABLE names legacy.gone, which does not exist; check the spelling"
    ]
    # A table of a dumped database stays that database's own warning.
    assert [warning for warning in result.warnings if "shop.gone" in warning] == [
        f"mysql-{port}-shop: EXCLUDE_TABLE names shop.gone, which does not exist; check the spelling"
    ]
    assert password not in " ".join(result.warnings)


def test_two_instances_by_port_and_socket_and_binlog_off_is_a_note(mariadb, mariadb_second, tmp_path):
    source = source_for(
        mariadb, tmp_path, MY_INSTANCES=f"{mariadb.port} {mariadb_second.socket_path}", BINLOG_DAYS="1",
        EXCLUDE_DB="mysql legacy",
    )
    outcomes = dump_streams(source, tmp_path / "set")
    second = outcomes["mysql-mysqld-inventory"]
    assert second.error is None and b"'A-1',3" in second.data
    assert second.report.metadata["instance"] == str(mariadb_second.socket_path)
    assert any("binary logging is off" in note for note in source.report.notes)
    assert "mysql-mysqld-binlogs" not in outcomes
    assert f"mysql-{mariadb.port}-shop" in outcomes and f"mysql-{mariadb.port}-binlogs" in outcomes


def test_wrong_password_fails_the_instance_in_one_sentence_without_the_password(mariadb, tmp_path):
    credentials = tmp_path / "wrong.cnf"
    credentials.write_text("[mysqldump]\nuser=backup\npassword=wrong-one\nhost=127.0.0.1\n[mysql]\nuser=backup\npassword=wrong-one\nhost=127.0.0.1\n")
    outcomes = dump_streams(source_for(mariadb, tmp_path, CREDENTIAL_PATH=str(credentials)), tmp_path / "set")
    (outcome,) = outcomes.values()
    assert outcome.stream.name == f"mysql-{mariadb.port}"
    assert isinstance(outcome.error, SourceError)
    message = str(outcome.error)
    assert "Access denied" in message and "CREDENTIAL_PATH" in message and "wrong-one" not in message
    assert "\n" not in message


def test_server_down_fails_that_instance_and_the_other_instance_is_still_dumped(mariadb, tmp_path):
    from tests.integration.servers.mariadb import free_port

    dead_port = free_port()
    source = source_for(mariadb, tmp_path, MY_INSTANCES=f"{dead_port} {mariadb.port}", EXCLUDE_DB="mysql legacy")
    outcomes = dump_streams(source, tmp_path / "set")
    assert "server is up" in str(outcomes[f"mysql-{dead_port}"].error)
    assert str(dead_port) in str(outcomes[f"mysql-{dead_port}"].error)
    assert outcomes[f"mysql-{mariadb.port}-shop"].error is None


def test_wrong_socket_path_is_named_in_the_error(mariadb, tmp_path):
    missing = tmp_path / "nowhere.sock"
    outcomes = dump_streams(source_for(mariadb, tmp_path, MY_INSTANCES=str(missing)), tmp_path / "set")
    error = outcomes["mysql-nowhere"].error
    assert isinstance(error, SourceError) and str(missing) in str(error)


def test_missing_dump_binary_fails_with_the_program_named(mariadb, tmp_path):
    outcomes = dump_streams(source_for(mariadb, tmp_path, MYSQL_DUMP_BINARY="/nonexistent/bin/mysqldump"), tmp_path / "set")
    (outcome,) = outcomes.values()
    assert "/nonexistent/bin/mysqldump" in str(outcome.error) and "not found" in str(outcome.error)


def test_legacy_dump_binary_pointing_at_the_client_uses_the_dump_tool_beside_it(mariadb, tmp_path):
    client = run(["sh", "-c", "command -v mariadb"]).text.strip()
    source = source_for(mariadb, tmp_path, MYSQL_DUMP_BINARY=client)
    assert Path(source.dump_program).name in ("mariadb-dump", "mysqldump")


def test_database_dropped_during_the_run_fails_only_its_stream(mariadb, tmp_path):
    mariadb.sql("CREATE DATABASE doomed; CREATE TABLE doomed.t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO doomed.t VALUES (1);")
    source = source_for(mariadb, tmp_path, EXCLUDE_DB="mysql legacy")
    streams = list(source.streams())
    mariadb.sql("DROP DATABASE doomed")
    from ncbackup.sources.base import StreamReport

    results = {}
    for stream in streams:
        try:
            stream.write_to(io.BytesIO(), StreamReport())
            results[stream.name] = None
        except SourceError as error:
            results[stream.name] = error
    assert "doomed" in str(results[f"mysql-{mariadb.port}-doomed"])
    assert "Unknown database" in str(results[f"mysql-{mariadb.port}-doomed"])
    assert results[f"mysql-{mariadb.port}-shop"] is None


def test_dump_that_dies_halfway_is_a_failed_stream_never_complete(mariadb, tmp_path):
    fake_dump = tmp_path / "mariadb-dump"
    fake_dump.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "mariadb-dump from 11.0 (MariaDB)"; exit 0; fi\n'
        "head -c 300000 /dev/zero\n"
        "echo 'mysqldump: Error 2013: Lost connection to server during query' >&2\n"
        "exit 2\n"
    )
    fake_dump.chmod(0o755)
    outcomes = dump_streams(source_for(mariadb, tmp_path, MYSQL_DUMP_BINARY=str(fake_dump), EXCLUDE_DB="mysql legacy"), tmp_path / "set")
    shop = outcomes[f"mysql-{mariadb.port}-shop"]
    assert len(shop.data) == 300000  # bytes were streamed before the failure...
    assert isinstance(shop.error, SourceError)  # ...yet the stream is failed, with the dump's own reason
    assert "Lost connection" in str(shop.error) and "status 2" in str(shop.error)


def test_physical_backup_streams_an_xbstream_that_mbstream_unpacks(mariadb, tmp_path):
    from tests.support import need_binary

    need_binary("mariadb-backup")
    need_binary("mbstream")
    source = source_for(mariadb, tmp_path, PHYSICAL="true", LOGICAL="false")
    assert any(line.ok and "mariadb-backup based on MariaDB" in line.text for line in source.check())
    outcomes = dump_streams(source, tmp_path / "set")
    physical = outcomes[f"mysql-{mariadb.port}-physical"]
    assert physical.error is None, physical.error
    assert list(outcomes) == [physical.stream.name]
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    with open(physical.path, "rb") as xbstream:
        run(["mbstream", "-x", "-C", str(unpacked)], input_bytes=xbstream.read(), timeout_seconds=300)
    # --prepare is the documented next step; it turns tablespaces created since the last checkpoint
    # (streamed as *.new) into .ibd files and makes the copy consistent.
    run(["mariadb-backup", "--prepare", f"--target-dir={unpacked}"], timeout_seconds=300)
    assert (unpacked / "ibdata1").is_file()
    assert (unpacked / "shop" / "customers.ibd").is_file()
    assert (unpacked / "legacy" / "visits.MYD").read_bytes().count(b"/home") == 1
    assert not list(tmp_path.glob(".ncbackup-*")), "the temporary option file and target folder are removed"


def test_check_reports_binary_connection_databases_and_exclusions(mariadb, tmp_path):
    lines = source_for(mariadb, tmp_path, EXCLUDE_DB="legacy").check()
    text = "\n".join(line.text for line in lines)
    assert all(line.ok for line in lines), text
    assert "mariadb-dump" in text or "mysqldump" in text
    assert "connected to mariadb 10." in text
    assert "will dump" in text and "shop" in text
    assert "excluded" in text and "legacy" in text and "information_schema" in text


def test_check_reports_a_server_it_cannot_reach(mariadb, tmp_path):
    from tests.integration.servers.mariadb import free_port

    lines = source_for(mariadb, tmp_path, MY_INSTANCES=str(free_port())).check()
    assert not lines[-1].ok and "cannot connect" in lines[-1].text
