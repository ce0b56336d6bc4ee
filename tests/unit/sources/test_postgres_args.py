"""PostgreSQL source without a server: the passfile line, the connection arguments, the 0600 temp passfile."""

from __future__ import annotations

import os
import stat

from ncbackup.sources._dbsupport import secret_file
from ncbackup.sources.postgres import PostgresConnection, PostgresOptions, pgpass_line


def test_pgpass_line_escapes_colons_and_backslashes():
    assert pgpass_line("a:b\\c") == "*:*:*:*:a\\:b\\\\c\n"


def test_connection_arguments_never_prompt_and_hold_no_password(tmp_path):
    password_file = tmp_path / "pw"
    password_file.write_text("s3cret:pw\nignored second line\n")
    connection = PostgresConnection(PostgresOptions.model_validate(
        {"HOST": "/run/postgresql", "PORT": "5433", "USER": "backup", "PASSWORD_FILE": str(password_file)}
    ), work_folder=tmp_path)
    args = connection.connection_args()
    assert args == ["--host=/run/postgresql", "--port=5433", "-w", "--username=backup"]
    with connection.environment() as env:
        passfile = env["PGPASSFILE"]
        assert stat.S_IMODE(os.stat(passfile).st_mode) == 0o600
        assert open(passfile).read() == "*:*:*:*:s3cret\\:pw\n"
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
