"""PostgreSQL source without a server: the passfile lines, the quoted connection string, the 0600 temp passfile."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ncbackup.setformat import safe_stream_name
from ncbackup.sources._dbsupport import secret_file
from ncbackup.sources.postgres import PostgresConnection, PostgresOptions, conninfo_value, pgpass_lines, quote_literal


def test_pgpass_lines_match_only_the_configured_host_port_and_user_and_escape_colons_and_backslashes():
    assert pgpass_lines("a:b\\c", host="db.example", port=5433, user="back:up") == "db.example:5433:*:back\\:up:a\\:b\\\\c\n"
    # No HOST: libpq looks the default socket up as "localhost"; no USER: any user name.
    assert pgpass_lines("pw", host=None, port=5432, user=None) == "localhost:5432:*:*:pw\n"
    # A socket folder is looked up under its path, or as "localhost" when it is libpq's default folder.
    assert pgpass_lines("pw", host="/run/postgresql", port=5432, user="u") == "/run/postgresql:5432:*:u:pw\nlocalhost:5432:*:u:pw\n"
    assert pgpass_lines("pw", host="h1,h2", port=5432, user="u") == "h1:5432:*:u:pw\nh2:5432:*:u:pw\n"


def test_conninfo_values_are_quoted_so_a_database_name_is_never_syntax():
    assert conninfo_value("host=evil port=1") == "'host=evil port=1'"
    assert conninfo_value("it's a \\ name") == "'it\\'s a \\\\ name'"
    connection = PostgresConnection(PostgresOptions.model_validate({"HOST": "127.0.0.1", "PORT": "5433", "USER": "o'neil"}))
    assert connection.connection_args("host=10.0.0.9 dbname=x") == [
        "-w", "--dbname=host='127.0.0.1' port='5433' user='o\\'neil' dbname='host=10.0.0.9 dbname=x'",
    ]
    assert connection.connection_args("-d\nx")[-1].endswith(" dbname='-d\nx'")
    assert connection.connection_args() == ["-w", "--dbname=host='127.0.0.1' port='5433' user='o\\'neil'"]


def test_sql_literals_hold_quotes_and_backslashes_whatever_the_server_setting():
    assert quote_literal("O'Brien") == "'O''Brien'"
    assert quote_literal("a\\'b") == "E'a\\\\''b'"


def test_stream_labels_keep_plain_names_and_make_any_other_name_safe_for_a_file():
    assert safe_stream_name("postgres-5432-shop_2024.v1-a") == "postgres-5432-shop_2024.v1-a"
    assert safe_stream_name("postgres-5432-../up/one") == "postgres-5432-__up_one"
    assert safe_stream_name("postgres-5432-host=1 port=2\n\\x") == "postgres-5432-host_1_port_2__x"


def test_connection_arguments_never_prompt_and_hold_no_password(tmp_path):
    password_file = tmp_path / "pw"
    password_file.write_text("s3cret:pw\nignored second line\n")
    connection = PostgresConnection(PostgresOptions.model_validate(
        {"HOST": "/run/postgresql", "PORT": "5433", "USER": "backup", "PASSWORD_FILE": str(password_file)}
    ), work_folder=tmp_path)
    args = connection.connection_args("app")
    assert args == ["-w", "--dbname=host='/run/postgresql' port='5433' user='backup' dbname='app'"]
    with connection.environment() as env:
        passfile = env["PGPASSFILE"]
        assert stat.S_IMODE(os.stat(passfile).st_mode) == 0o600
        assert Path(passfile).read_text() == "/run/postgresql:5433:*:backup:s3cret\\:pw\nlocalhost:5433:*:backup:s3cret\\:pw\n"
        assert "s3cret" not in " ".join(args) and all("s3cret" not in value for key, value in env.items() if key != "PGPASSFILE")
    assert not os.path.exists(passfile)


def test_configured_pg_dump_implies_its_sibling_tools(tmp_path):
    folder = tmp_path / "15" / "bin"
    folder.mkdir(parents=True)
    for name in ("pg_dump", "pg_dumpall", "psql"):
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)
    connection = PostgresConnection(PostgresOptions.model_validate({"PSQLDUMP": str(folder / "pg_dump")}))
    assert connection.pg_dumpall == str(folder / "pg_dumpall") and connection.psql == str(folder / "psql")
    assert connection.pg_restore == "pg_restore"  # not beside it: found on PATH


def test_secret_file_is_private_from_the_start_and_removed_after(tmp_path):
    with secret_file("password", folder=tmp_path, suffix=".cnf") as path:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "password"
    assert list(tmp_path.iterdir()) == []
