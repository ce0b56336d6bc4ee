"""MySQL/MariaDB source: options, instance names, the dump command line and its GTID-safe flags (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ncbackup.config import loads_config
from ncbackup.config.settings import GeneralSettings
from ncbackup.errors import BackupError, ConfigError
from ncbackup.setformat import safe_stream_name
from ncbackup.sources.base import RestoreRequest
from ncbackup.sources.mysql import (
    MysqlClient,
    MysqlInstance,
    MysqlOptions,
    MysqlSource,
    ServerInfo,
    backup_option_file,
    client_argv,
    dump_flavour_args,
    from_hex,
    hex_equals,
    parse_exclude_tables,
    quote_identifier,
    quote_string,
    restore_instance,
)

MARIADB = ServerInfo(flavour="mariadb", version="10.11.19", is_binlog_on=True, binlog_basename=None, datadir=None)
MYSQL = ServerInfo(flavour="mysql", version="8.0.36", is_binlog_on=True, binlog_basename=None, datadir=None)


def test_legacy_section_from_the_seed_readme_parses_and_ignores_unknown_keys(tmp_path):
    config = loads_config(
        """{"GENERAL": {"HOSTNAME": "h", "WORK_FOLDER": "%s"},
            "DBSBACKUP": {"ACTION": "execute", "NAME": "mysql_backup", "EXECUTABLE": "mysql_dump.py",
              "PARAMETERS": {"CREDENTIAL_PATH": "/etc/mysql.credentials", "CONF_PATH": "/etc/my.cnf",
                "DATA_DIR": "/usr/local/var/mysql", "MY_INSTANCES": "3306 3307", "LOG": "/var/log/x.err",
                "BINLOG_PATH": "/usr/local/var/mysql/", "BINLOG_FILE_PREFIX": "mysql-bin", "BINLOG_DAYS": "",
                "DESTINATION": "/backup", "TAR_COMMAND": "tar czf ", "MYSQL_DUMP_BINARY": "/usr/bin/mysql",
                "MYSQL_BINARY": "/usr/bin/mysql", "PREFIX_FOLDER": "mydump", "PHYSICAL": "False"}}}"""  # noqa: UP031 - JSON braces
        % tmp_path,
        path=tmp_path / "conf.json",
    )
    source = MysqlSource.from_section(config.sections[0], config.general)
    options = source.options
    assert options.instances == ["3306", "3307"]
    assert options.credential_path == Path("/etc/mysql.credentials")
    assert options.binlog_path == Path("/usr/local/var/mysql")
    assert options.binlog_days is None and options.is_physical is False


def test_bad_value_is_a_config_error_naming_the_key(tmp_path):
    config = loads_config(
        """{"GENERAL": {"HOSTNAME": "h", "WORK_FOLDER": "/tmp"},
            "DB": {"ACTION": "execute", "NAME": "mysql_backup", "PARAMETERS": {"BINLOG_DAYS": "seven"}}}""",
        path=tmp_path / "conf.json",
    )
    with pytest.raises(ConfigError, match="BINLOG_DAYS"):
        MysqlSource.from_section(config.sections[0], config.general)


def test_exclude_table_must_be_database_dot_table():
    assert parse_exclude_tables(["shop.logs", "shop.cache", "crm.tmp"]) == {"shop": {"logs", "cache"}, "crm": {"tmp"}}
    with pytest.raises(ConfigError, match="db.table"):
        parse_exclude_tables(["logs"])


@pytest.mark.parametrize(
    ("spec", "label", "args"),
    [
        ("3306", "3306", ["--protocol=TCP", "--port=3306"]),
        ("/run/mysqld/mysqld.sock", "mysqld", ["--protocol=SOCKET", "--host=localhost", "--socket=/run/mysqld/mysqld.sock"]),
        ("/var/run/mysqld/db2.sock", "db2", ["--protocol=SOCKET", "--host=localhost", "--socket=/var/run/mysqld/db2.sock"]),
    ],
)
def test_instance_is_a_port_or_a_socket_and_names_its_streams(spec, label, args):
    instance = MysqlInstance(spec)
    assert instance.label == label
    assert instance.connection_args() == args


def test_dump_command_starts_with_the_option_file_and_never_holds_a_password(tmp_path):
    credentials = tmp_path / "my.cnf"
    credentials.write_text("[mysqldump]\nuser=u\npassword=hunter2\n")
    options = MysqlOptions.model_validate({"CREDENTIAL_PATH": str(credentials), "EXCLUDE_TABLE": "shop.cache shop.logs"})
    source = MysqlSource(options, work_folder=tmp_path)
    stream = source._dump_stream(
        MysqlInstance("3306"), MARIADB, "shop", {"orders": "innodb", "cache": "myisam", "logs": "innodb"}, {},
        "mariadb-dump from 11.0 (MariaDB)", warnings=[],
    )
    argv = stream.argv
    assert argv[1] == f"--defaults-extra-file={credentials}"
    assert "hunter2" not in " ".join(argv)
    # The only MyISAM table is excluded: what is dumped is all transactional.
    assert "--single-transaction" in argv and "--lock-tables" not in argv
    assert argv[-2:] == ["--", "shop"]
    assert "--ignore-table=shop.cache" in argv and "--ignore-table=shop.logs" in argv
    assert {"--routines", "--triggers", "--events", "--hex-blob"} <= set(argv)
    assert stream.name == "mysql-3306-shop" and stream.metadata["locking"] == "single-transaction"


def test_a_non_transactional_table_switches_the_database_to_table_locks(tmp_path):
    source = MysqlSource(MysqlOptions.model_validate({}), work_folder=tmp_path)
    stream = source._dump_stream(MysqlInstance("3307"), MARIADB, "crm", {"a": "innodb", "b": "aria"}, {}, "", warnings=[])
    assert "--lock-tables" in stream.argv and stream.metadata["locking"] == "lock-tables"
    assert stream.argv[1] == "--protocol=TCP"  # no option file configured: nothing to put first


def test_gtid_safe_flags_follow_the_dump_client_flavour():
    assert dump_flavour_args("mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu", MARIADB) == []
    assert dump_flavour_args("mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)", MYSQL) == [
        "--set-gtid-purged=OFF"
    ]
    assert dump_flavour_args("mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)", MARIADB) == [
        "--set-gtid-purged=OFF", "--column-statistics=0",
    ]


def test_physical_backup_option_file_copies_connection_settings_from_legacy_groups(tmp_path):
    credentials = tmp_path / "cred.cnf"
    credentials.write_text("!includedir /etc/mysql/conf.d\n[mysqldump]\nuser=backup\npassword=\"p w\"\n[mysql]\nhost=127.0.0.1\n")
    text = backup_option_file(credentials)
    assert text.startswith("[mariadb-backup]\n")
    assert "user=backup" in text and 'password="p w"' in text and "host=127.0.0.1" in text
    assert backup_option_file(None) == "[mariadb-backup]\n"


def test_legacy_dump_binary_pointing_at_the_client_is_replaced_by_its_sibling_dump_tool(tmp_path):
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("mysql", "mysqldump"):
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)
    source = MysqlSource(MysqlOptions.model_validate({"MYSQL_DUMP_BINARY": str(folder / "mysql")}), work_folder=tmp_path)
    assert source.dump_program == str(folder / "mysqldump")


def test_sql_quoting_doubles_the_quote_characters():
    assert quote_identifier("we`ird") == "`we``ird`"
    assert quote_string("O'Brien\\") == "'O''Brien\\\\'"


def test_names_compared_and_read_back_in_hex_never_quoted():
    name = "we`ird db=x -1'q\n\\"
    assert hex_equals("TABLE_SCHEMA", name) == f"HEX(TABLE_SCHEMA) = '{name.encode().hex().upper()}'"
    assert from_hex(name.encode().hex().upper()) == name


def test_a_hostile_database_name_is_one_argument_after_double_dash_and_a_safe_stream_label(tmp_path):
    source = MysqlSource(MysqlOptions.model_validate({}), work_folder=tmp_path)
    name = "-d we`ird db=x/../1'\n"
    stream = source._dump_stream(MysqlInstance("3306"), MARIADB, name, {"t": "innodb"}, {}, "", warnings=[])
    assert stream.argv[-2:] == ["--", name] and stream.metadata["database"] == name
    # The stream name is raw here; the pipeline turns it into a safe one (setformat.safe_stream_name).
    assert safe_stream_name(stream.name) == "mysql-3306--d_we_ird_db_x___1__"


def restore_request(metadata: dict, **options: str) -> RestoreRequest:
    return RestoreRequest(stream_name="mysql-3306-shop", kind="mysql", metadata=metadata, to_database=True, options=options)


def test_restore_instance_comes_from_the_config_the_manifest_only_picks_among_configured_ones():
    def chosen(metadata: dict, **values: str) -> str:
        request = restore_request(metadata, **values)
        return restore_instance(MysqlOptions.model_validate(dict(request.options)), request).spec

    hostile = {"instance": "/tmp/evil.sock", "host": "10.6.6.6", "port": 6666, "socket": "/tmp/evil.sock"}
    assert chosen(hostile, MY_INSTANCES="3307") == "3307"
    assert chosen(hostile) == "3306"  # no MYSQL section: the default instance, never the manifest's
    assert chosen({"instance": "/run/mysqld/b.sock"}, MY_INSTANCES="3306 /run/mysqld/b.sock") == "/run/mysqld/b.sock"
    assert chosen(hostile, MY_INSTANCES="3306 3307", RESTORE_INSTANCE="3307") == "3307"
    with pytest.raises(BackupError, match="MY_INSTANCES .3306 3307. does not list; set RESTORE_INSTANCE"):
        chosen(hostile, MY_INSTANCES="3306 3307")


def test_from_section_uses_general_work_folder(tmp_path):
    from ncbackup.config.settings import SectionSettings

    section = SectionSettings(name="DB", action="execute", module="mysql_backup", parameters={"MY_INSTANCES": 3306})
    source = MysqlSource.from_section(section, GeneralSettings(hostname="h", work_folder=tmp_path))
    assert source.options.instances == ["3306"] and source.work_folder == tmp_path
    assert "3306" in source.describe()


def test_client_dump_and_physical_commands_start_with_the_same_option_file_and_connection(tmp_path):
    credentials = tmp_path / "my.cnf"
    credentials.write_text("[mysqldump]\nuser=u\npassword=hunter2\n")
    options = MysqlOptions.model_validate({"CREDENTIAL_PATH": str(credentials), "PHYSICAL": "true"})
    source = MysqlSource(options, work_folder=tmp_path)
    instance = MysqlInstance("/run/mysqld/db2.sock")
    start = client_argv("prog", credentials, instance)
    assert start == ["prog", f"--defaults-extra-file={credentials}", "--protocol=SOCKET", "--host=localhost",
                     "--socket=/run/mysqld/db2.sock"]
    dump = source._dump_stream(instance, MARIADB, "shop", {}, {}, "", warnings=[]).argv
    client = MysqlClient(options, instance).base_args()
    physical_stream = source._physical_stream(instance, MARIADB, {})
    physical = physical_stream.argv(tmp_path / "private.cnf", tmp_path / "target")
    assert dump[1:len(start)] == client[1:] == start[1:]
    # mariadb-backup gets its private copy of the connection settings, in the same place.
    assert physical[:len(start)] == client_argv(physical_stream.program, tmp_path / "private.cnf", instance)
    assert physical[len(start):] == ["--backup", "--stream=xbstream", f"--target-dir={tmp_path / 'target'}"]
    assert client_argv("prog", None, MysqlInstance("3307", "db.example")) == [
        "prog", "--protocol=TCP", "--port=3307", "--host=db.example",
    ]

