"""PostgreSQL database names are data: a name shaped like a connection string never steers a client.

A role with CREATEDB can name a database ``host=127.0.0.1 port=P dbname=evil``. Were that name handed
to libpq as ``--dbname=<name>``, pg_dump would connect to port P and offer the password there. These
tests create such names on the real server, with a listening socket on P recording every connection,
back them up, restore them, and check nothing ever knocked on P.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ncbackup.engine.restore import RestoreOptions, restore_set
from ncbackup.errors import BackupError
from ncbackup.setformat import is_safe_object_name, object_name
from ncbackup.sources.base import RestoreRequest
from ncbackup.sources.postgres import PostgresOptions, PostgresSource, restore_postgres
from tests.integration.servers.postgres import Postgres
from tests.integration.sources.dumping import backup_through_pipeline, dump_streams
from tests.integration.sources.listener import RecordingListener
from tests.support import read_manifest

pytestmark = pytest.mark.integration

ROWS = "SELECT id, note FROM marker ORDER BY id"


def identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def hostile_names(port: int) -> list[str]:
    return [
        f"host=127.0.0.1 port={port} dbname=evil",
        f"postgresql://127.0.0.1:{port}/evil",
        "it's \"quoted\" = yes",
        "back\\slash\\",
        "new\nline",
        "-d evil",
        "../up/one",
    ]


def create_marked(server: Postgres, name: str, index: int) -> None:
    server.psql(f"CREATE DATABASE {identifier(name)}")
    server.psql(f"CREATE TABLE marker (id int PRIMARY KEY, note text); INSERT INTO marker VALUES (1, {literal(name)}), (2, 'row {index}')",
                database=name)


def drop_all(server: Postgres, names: list[str]) -> None:
    server.psql("".join(f"DROP DATABASE IF EXISTS {identifier(name)};\n" for name in names))


def database_names(server: Postgres) -> set[str]:
    # Hex, so a name with a newline stays one name.
    lines = server.psql("SELECT encode(convert_to(datname, 'UTF8'), 'hex') FROM pg_database").split()
    return {bytes.fromhex(line).decode("utf-8") for line in lines}


def test_hostile_names_are_backed_up_and_restored_as_those_names_and_never_reach_libpq_as_conninfo(postgres, tmp_path):
    with RecordingListener() as listener:
        names = hostile_names(listener.port)
        try:
            for index, name in enumerate(names):
                create_marked(postgres, name, index)
            source = PostgresSource(PostgresOptions.model_validate(postgres.options(EXCLUDE_DB="app reports postgres", GLOBALS="no")),
                                    work_folder=tmp_path)
            run = backup_through_pipeline([source], tmp_path)
            assert listener.connections == [], "pg_dump or psql connected to the port named inside a database name"
            manifest = read_manifest(run.storage, run.result.set_id)
            by_database = {object_name(stream.metadata, "database"): stream for stream in manifest.streams}
            # In the manifest itself a name that could read as a path (/, \\, .., a leading -, control characters) is hex.
            assert all(is_safe_object_name(stream.metadata.get("database", "x")) for stream in manifest.streams)
            for name in names:
                stream = by_database[name]
                assert stream.status == "ok", stream.error
                assert "/" not in stream.name and "\n" not in stream.name and " " not in stream.name

            drop_all(postgres, names)
            report = restore_set(run.storage, manifest, options=RestoreOptions(
                target=None, stream_names=tuple(by_database[name].name for name in names), to_database=True,
                key_file=run.key_file, options_by_kind={"postgres": postgres.options()},
            ))
            assert len(report.restored) == len(names)
            present = database_names(postgres)
            for index, name in enumerate(names):
                assert name in present
                assert postgres.psql(ROWS, database=name) == f"1|{name}\n2|row {index}\n"
            assert "evil" not in present
        finally:
            drop_all(postgres, names)
    assert listener.connections == []


def test_restore_under_a_hostile_new_name_creates_exactly_that_name(postgres, tmp_path):
    outcomes = dump_streams(PostgresSource(PostgresOptions.model_validate(postgres.options(DATABASES="reports", GLOBALS="no")),
                                           work_folder=tmp_path), tmp_path / "set")
    (outcome,) = outcomes.values()
    with RecordingListener() as listener:
        name = f"host=127.0.0.1 port={listener.port} dbname=reports"
        try:
            for force in (False, True):
                with open(outcome.path, "rb") as reader:
                    restore_postgres(reader, RestoreRequest(
                        stream_name=outcome.stream.name, kind="postgres", metadata=outcome.report.metadata,
                        to_database=True, database=name, force=force, options=postgres.options(),
                    ))
            assert name in database_names(postgres)
            assert postgres.psql("SELECT count(*) FROM daily", database=name) == "2\n"
        finally:
            drop_all(postgres, [name])
    assert listener.connections == []


def hostile_metadata(metadata: dict, listener: RecordingListener, tmp_path: Path) -> dict:
    return dict(metadata, host="127.0.0.1", port=listener.port, socket=str(tmp_path / "evil.sock"),
                instance=str(listener.port))


def test_restore_takes_the_server_from_the_config_never_from_the_manifest(postgres, tmp_path):
    outcomes = dump_streams(PostgresSource(PostgresOptions.model_validate(postgres.options(DATABASES="reports", GLOBALS="no")),
                                           work_folder=tmp_path), tmp_path / "set")
    (outcome,) = outcomes.values()
    with RecordingListener() as listener:
        metadata = hostile_metadata(outcome.report.metadata, listener, tmp_path)
        try:
            with open(outcome.path, "rb") as reader:
                restore_postgres(reader, RestoreRequest(
                    stream_name=outcome.stream.name, kind="postgres", metadata=metadata, to_database=True,
                    database="reports_config", options=postgres.options(),
                ))
            assert postgres.psql("SELECT count(*) FROM daily", database="reports_config") == "2\n"
            # A config without PORT means the default port, not the one the manifest names.
            without_port = {key: value for key, value in postgres.options().items() if key != "PORT"}
            with open(outcome.path, "rb") as reader, pytest.raises(BackupError):
                restore_postgres(reader, RestoreRequest(
                    stream_name=outcome.stream.name, kind="postgres", metadata=metadata, to_database=True,
                    database="reports_nowhere", options=without_port,
                ))
        finally:
            drop_all(postgres, ["reports_config"])
    assert listener.connections == []
