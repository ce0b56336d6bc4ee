"""PostgreSQL source against a real throwaway PostgreSQL 15: back up through the pipeline, drop, restore, compare."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ncbackup.errors import BackupError, SourceError
from ncbackup.sources.base import StreamReport
from ncbackup.sources.postgres import PostgresOptions, PostgresSource
from ncbackup.sources.registry import RESTORERS, SOURCES
from tests.integration.servers.postgres import SUPERUSER_PASSWORD, Postgres, free_port
from tests.integration.sources.dumping import backup_through_pipeline, dump_streams

pytestmark = pytest.mark.integration

APP_STATE = [
    "SELECT id, name, encode(photo, 'hex'), invoice FROM customers ORDER BY id",
    "SELECT last_value, is_called FROM invoice_numbers",
    "SELECT pg_get_viewdef('named'::regclass)",
    "SELECT tableowner FROM pg_tables WHERE tablename = 'customers'",
    "SELECT convert_from(lo_get(424242), 'UTF8')",
    "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'customers'::regclass ORDER BY adnum",
]
REPORTS_STATE = ["SELECT day, total FROM daily ORDER BY day"]


def source_for(server: Postgres, tmp_path: Path, **parameters: str) -> PostgresSource:
    return PostgresSource(PostgresOptions.model_validate(server.options(**parameters)), work_folder=tmp_path)


def state(server: Postgres, database: str, queries: list[str]) -> list[str]:
    return [server.psql(query, database=database) for query in queries]


def test_registry_knows_the_postgres_section_and_its_stream_kinds():
    assert SOURCES["postgres"].factory is PostgresSource
    assert set(RESTORERS) >= {"postgres", "postgres-globals"}


def test_databases_roles_sequence_and_large_object_round_trip_through_the_pipeline(postgres, tmp_path):
    app_before = state(postgres, "app", APP_STATE)
    reports_before = state(postgres, "reports", REPORTS_STATE)
    assert "large object payload é" in app_before[4] and "Zoë Ångström" in app_before[0]

    run = backup_through_pipeline([source_for(postgres, tmp_path, EXCLUDE_DB="postgres")], tmp_path)
    port = postgres.port
    names = [stream.name for stream in run.result.manifest.streams]
    assert names == [f"postgres-{port}-globals", f"postgres-{port}-app", f"postgres-{port}-reports"]
    assert all(stream.is_ok for stream in run.result.streams), run.result.failed_streams
    app = run.stream(f"postgres-{port}-app")
    assert app.kind == "postgres" and app.metadata["database"] == "app" and app.metadata["format"] == "custom"
    assert app.cipher == "age" and app.codec == "zstd"
    assert SUPERUSER_PASSWORD not in repr(run.result.manifest)
    assert not list((tmp_path / "work").iterdir()), "the temporary passfile is gone"

    postgres.psql("DROP DATABASE app; DROP DATABASE reports; DROP ROLE app_owner;")
    options = postgres.options()
    run.restore(f"postgres-{port}-globals", to_database=True, options=options)
    assert postgres.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app_owner'") == "t\n"
    run.restore(f"postgres-{port}-app", to_database=True, options=options)
    run.restore(f"postgres-{port}-reports", to_database=True, options=options)

    assert state(postgres, "app", APP_STATE) == app_before
    assert state(postgres, "reports", REPORTS_STATE) == reports_before
    # The sequence carries on where it was, not from its start.
    assert int(postgres.psql("SELECT nextval('invoice_numbers')", database="app")) > int(app_before[1].split("|")[0])


def test_restore_refuses_an_existing_database_and_restores_under_a_new_name(postgres, tmp_path):
    run = backup_through_pipeline([source_for(postgres, tmp_path, DATABASES="reports", GLOBALS="false")], tmp_path)
    name = f"postgres-{postgres.port}-reports"
    assert [stream.name for stream in run.result.manifest.streams] == [name]
    with pytest.raises(BackupError, match="already exists.*--database NEWNAME"):
        run.restore(name, to_database=True, options=postgres.options())
    run.restore(name, to_database=True, database="reports_copy", options=postgres.options())
    assert state(postgres, "reports_copy", REPORTS_STATE) == state(postgres, "reports", REPORTS_STATE)
    run.restore(name, to_database=True, database="reports_copy", force=True, options=postgres.options())
    assert state(postgres, "reports_copy", REPORTS_STATE) == state(postgres, "reports", REPORTS_STATE)
    postgres.psql("DROP DATABASE reports_copy")


def test_templates_are_skipped_and_exclude_db_is_honoured(postgres, tmp_path):
    outcomes = dump_streams(source_for(postgres, tmp_path, EXCLUDE_DB="app"), tmp_path / "set")
    port = postgres.port
    assert sorted(outcomes) == sorted([f"postgres-{port}-globals", f"postgres-{port}-postgres", f"postgres-{port}-reports"])
    globals_sql = outcomes[f"postgres-{port}-globals"].data
    assert b"CREATE ROLE app_owner" in globals_sql
    assert outcomes[f"postgres-{port}-reports"].data.startswith(b"PGDMP")


def test_connection_through_the_socket_folder_works(postgres, tmp_path):
    source = PostgresSource(PostgresOptions.model_validate(
        {"HOST": str(postgres.socket_folder), "PORT": str(postgres.port), "USER": "postgres", "DATABASES": "reports", "GLOBALS": "no"}
    ), work_folder=tmp_path)
    outcomes = dump_streams(source, tmp_path / "set")
    assert outcomes[f"postgres-{postgres.port}-reports"].error is None


def test_pgpassfile_option_is_used_for_authentication(postgres, tmp_path):
    passfile = tmp_path / "pgpass"
    escaped = SUPERUSER_PASSWORD.replace("\\", "\\\\").replace(":", "\\:")
    passfile.write_text(f"127.0.0.1:{postgres.port}:*:postgres:{escaped}\n")
    passfile.chmod(0o600)
    source = source_for(postgres, tmp_path, PASSWORD_FILE="", PGPASSFILE=str(passfile), DATABASES="reports", GLOBALS="0")
    outcomes = dump_streams(source, tmp_path / "set")
    assert outcomes[f"postgres-{postgres.port}-reports"].error is None


def test_wrong_password_fails_in_one_sentence_without_the_password(postgres, tmp_path):
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    outcomes = dump_streams(source_for(postgres, tmp_path, PASSWORD_FILE=str(wrong)), tmp_path / "set")
    (outcome,) = outcomes.values()
    message = str(outcome.error)
    assert isinstance(outcome.error, SourceError)
    assert "password authentication failed" in message and "not-the-password" not in message
    assert "\n" not in message


def test_server_down_is_a_failed_stream_naming_host_and_port(postgres, tmp_path):
    dead = free_port()
    outcomes = dump_streams(source_for(postgres, tmp_path, PORT=str(dead)), tmp_path / "set")
    (outcome,) = outcomes.values()
    assert outcome.stream.name == f"postgres-{dead}"
    assert f"port {dead}" in str(outcome.error) and "server is up" in str(outcome.error)


def test_missing_pg_dump_is_named(postgres, tmp_path):
    source = source_for(postgres, tmp_path, PSQLDUMP="/nonexistent/pg_dump", PSQL="/usr/lib/postgresql/15/bin/psql")
    outcomes = dump_streams(source, tmp_path / "set")
    (outcome,) = outcomes.values()
    assert "/nonexistent/pg_dump" in str(outcome.error) and "not found" in str(outcome.error)


def test_database_dropped_during_the_run_fails_only_its_stream(postgres, tmp_path):
    postgres.psql("CREATE DATABASE doomed")
    streams = list(source_for(postgres, tmp_path, EXCLUDE_DB="app postgres").streams())
    postgres.psql("DROP DATABASE doomed")
    errors = {}
    for stream in streams:
        try:
            stream.write_to(io.BytesIO(), StreamReport())
            errors[stream.name] = None
        except SourceError as error:
            errors[stream.name] = error
    assert 'database "doomed" does not exist' in str(errors[f"postgres-{postgres.port}-doomed"])
    assert errors[f"postgres-{postgres.port}-reports"] is None


def test_pg_dump_dying_halfway_fails_the_stream_in_the_pipeline(postgres, tmp_path):
    fake = tmp_path / "bin" / "pg_dump"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 15.0"; exit 0; fi\n'
        "head -c 2500000 /dev/urandom\n"
        "echo 'pg_dump: error: connection to server was lost' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    source = source_for(postgres, tmp_path, PSQLDUMP=str(fake), PSQL="/usr/lib/postgresql/15/bin/psql",
                        PG_DUMPALL="/usr/lib/postgresql/15/bin/pg_dumpall", DATABASES="reports")
    run = backup_through_pipeline([source], tmp_path)
    results = {stream.name: stream for stream in run.result.streams}
    reports = results[f"postgres-{postgres.port}-reports"]
    assert not reports.is_ok and "connection to server was lost" in reports.error
    assert results[f"postgres-{postgres.port}-globals"].is_ok
    assert run.stream(f"postgres-{postgres.port}-reports").status == "failed"
    with pytest.raises(BackupError):
        run.restore(f"postgres-{postgres.port}-reports", to_database=True, database="never", options=postgres.options())


def test_check_reports_binary_connection_databases_and_exclusions(postgres, tmp_path):
    lines = source_for(postgres, tmp_path, EXCLUDE_DB="postgres").check()
    text = "\n".join(line.text for line in lines)
    assert all(line.ok for line in lines), text
    assert "pg_dump (PostgreSQL) 15" in text and "connected, server 15" in text
    assert "will dump app, reports and globals" in text and "excluded postgres" in text


def test_check_reports_a_server_it_cannot_reach(postgres, tmp_path):
    lines = source_for(postgres, tmp_path, PORT=str(free_port())).check()
    assert not lines[-1].ok and "cannot connect" in lines[-1].text
