"""A throwaway PostgreSQL 15 on 127.0.0.1, run as an unprivileged user (CI runs as root; postgres refuses root).

As root the cluster belongs to ``nobody`` (every Debian system has it; no user is created): its
folder is made directly under /tmp, since pytest's own temp folders are private to root. The
superuser ``postgres`` authenticates with a password over TCP, and is trusted on the socket.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ncbackup.process import child_env, run

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "pg:Pa55\\word"
APP_PASSWORD = "app-owner-pw"

SEED_APP = r"""
CREATE ROLE app_owner LOGIN PASSWORD 'app-owner-pw';
CREATE DATABASE app OWNER app_owner;
CREATE DATABASE reports;
\connect app
SET ROLE app_owner;
CREATE SEQUENCE invoice_numbers START 1000 INCREMENT 7;
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, photo bytea, invoice bigint DEFAULT nextval('invoice_numbers'));
INSERT INTO customers (name, photo) VALUES ('Zoë Ångström', '\x00ff10e2809c0d0a5c27'), ('山田太郎', NULL),
    ('O''Brien', decode(repeat('deadbeef', 5000), 'hex'));
CREATE VIEW named AS SELECT name FROM customers WHERE name <> '';
SELECT lo_from_bytea(424242, convert_to('large object payload é', 'UTF8'));
RESET ROLE;
\connect reports
CREATE TABLE daily (day date PRIMARY KEY, total numeric(12,2));
INSERT INTO daily VALUES ('2026-11-25', 1234.56), ('2026-11-26', 0);
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Postgres:
    folder: Path
    port: int
    socket_folder: Path
    password_file: Path          # holds SUPERUSER_PASSWORD (first line), for PASSWORD_FILE
    run_as: list[str]            # prefix running a command as the cluster's owner

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        """Run SQL as the superuser over the socket (trusted); return unaligned tuples."""
        # The name as a quoted conninfo value: a bare --dbname holding "=" would be read as a connection string.
        quoted = "'" + database.replace("\\", "\\\\").replace("'", "\\'") + "'"
        argv = [str(PG_BIN / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", f"--host={self.socket_folder}",
                f"--port={self.port}", f"--username={SUPERUSER}", f"--dbname=dbname={quoted}", "-f", "-"]
        return run(argv, input_bytes=sql.encode(), timeout_seconds=60, env=child_env({"PGPASSFILE": "/dev/null"})).text

    def options(self, **extra: str) -> dict[str, str]:
        """PARAMETERS of a POSTGRES section reaching this server over TCP with the password file."""
        values = {"HOST": "127.0.0.1", "PORT": str(self.port), "USER": SUPERUSER, "PASSWORD_FILE": str(self.password_file),
                  "PSQLDUMP": str(PG_BIN / "pg_dump")}
        values.update(extra)
        return values


def start_postgres() -> Postgres:
    """initdb + pg_ctl start in a fresh folder; seed two databases, a role, a sequence and a large object."""
    from tests.support import need

    need((PG_BIN / "initdb").exists(), f"PostgreSQL 15 is not installed in {PG_BIN}")
    folder = Path(tempfile.mkdtemp(prefix="ncb-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("nobody")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        run_as = ["runuser", "-u", "nobody", "--"]
    data = folder / "data"
    superuser_pwfile = folder / "initdb.pw"
    superuser_pwfile.write_text(SUPERUSER_PASSWORD + "\n", encoding="utf-8")
    if run_as:
        os.chown(superuser_pwfile, pwd.getpwnam("nobody").pw_uid, -1)
    run([*run_as, str(PG_BIN / "initdb"), f"--pgdata={data}", f"--username={SUPERUSER}", f"--pwfile={superuser_pwfile}",
         "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync"],
        timeout_seconds=180, cwd=folder)
    superuser_pwfile.unlink()
    port = free_port()
    server_options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=16MB"
    run([*run_as, str(PG_BIN / "pg_ctl"), f"--pgdata={data}", f"--log={folder}/server.log", "-w", "-t", "60",
         "-o", server_options, "start"], timeout_seconds=120, cwd=folder)
    password_file = Path(tempfile.mkdtemp(prefix="ncb-pgpw-")) / "password"
    password_file.write_text(SUPERUSER_PASSWORD + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    server = Postgres(folder, port, folder, password_file, run_as)
    server.psql(SEED_APP)
    return server


def stop_postgres(server: Postgres) -> None:
    run([*server.run_as, str(PG_BIN / "pg_ctl"), f"--pgdata={server.folder / 'data'}", "-m", "immediate", "-w", "stop"],
        timeout_seconds=60, cwd=server.folder, check=False)
    shutil.rmtree(server.folder, ignore_errors=True)
    shutil.rmtree(server.password_file.parent, ignore_errors=True)
