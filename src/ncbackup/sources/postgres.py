"""PostgreSQL source (legacy ``load FROM postgres CLASS PostgresBackup``): pg_dump -Fc per database, plus globals.

Streams: ``postgres-<port>-globals`` (``pg_dumpall --globals-only``: roles, tablespaces) and one
``postgres-<port>-<database>`` per database in pg_dump's custom format. A password reaches the
programs only through a 0600 passfile named by PGPASSFILE in their environment, never argv or logs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ncbackup.config.types import LegacyBool, LegacyInt, WordList, parse_options
from ncbackup.errors import BackupError, CommandFailed, SourceError
from ncbackup.process import child_env, run, stream_stdin, stream_stdout, which
from ncbackup.engine.logs import add_secret
from ncbackup.sources._dbsupport import (
    copy_stream, drop_blank_values, failure_reason, register_pgpass_passwords, secret_file,
)
from ncbackup.sources.base import CheckLine, RestoreRequest, StreamReport

CONNECT_TIMEOUT_SECONDS = 10
QUERY_TIMEOUT_SECONDS = 120


class PostgresOptions(BaseModel):
    """The POSTGRES section's PARAMETERS; unknown legacy keys (PREFIX_FOLDER, DESTINATION) are ignored."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    pg_dump: str | None = Field(None, alias="PSQLDUMP")
    psql: str | None = Field(None, alias="PSQL")
    pg_dumpall: str | None = Field(None, alias="PG_DUMPALL")
    pg_restore: str | None = Field(None, alias="PG_RESTORE")
    host: str | None = Field(None, alias="HOST")                 # a host name, or a socket folder (/run/postgresql)
    port: LegacyInt = Field(5432, alias="PORT")
    user: str | None = Field(None, alias="USER")
    password_file: Path | None = Field(None, alias="PASSWORD_FILE")   # first line = the password
    passfile: Path | None = Field(None, alias="PGPASSFILE")           # a .pgpass-format file
    databases: WordList = Field(default_factory=list, alias="DATABASES")  # empty: every database
    exclude_databases: WordList = Field(default_factory=list, alias="EXCLUDE_DB")
    is_globals_on: LegacyBool = Field(True, alias="GLOBALS")
    timeout_seconds: float | None = Field(None, alias="DUMP_TIMEOUT_SECONDS")

    @model_validator(mode="before")
    @classmethod
    def _ignore_blank_values(cls, values: Any) -> Any:
        return drop_blank_values(values)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def pgpass_line(password: str) -> str:
    """A .pgpass line matching any server, database and user, for password."""
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    return f"*:*:*:*:{escaped}\n"


def _sibling_or_path(configured: str | None, reference: str | None, name: str) -> str:
    # A configured PSQLDUMP=/usr/lib/postgresql/15/bin/pg_dump implies the same version's pg_dumpall and psql.
    if configured:
        return configured
    if reference and Path(reference).parent != Path("."):
        sibling = Path(reference).with_name(name)
        if which(sibling):
            return str(sibling)
    return name


class PostgresConnection:
    """How to reach one server: programs, connection arguments, and the environment carrying the password."""

    def __init__(self, options: PostgresOptions, *, work_folder: Path | None = None) -> None:
        self.options = options
        self.work_folder = work_folder
        self.pg_dump = options.pg_dump or "pg_dump"
        self.psql = _sibling_or_path(options.psql, options.pg_dump, "psql")
        self.pg_dumpall = _sibling_or_path(options.pg_dumpall, options.pg_dump, "pg_dumpall")
        self.pg_restore = _sibling_or_path(options.pg_restore, options.pg_dump, "pg_restore")
        register_pgpass_passwords(options.passfile, where=f"a password in PGPASSFILE {options.passfile}")

    def connection_args(self) -> list[str]:
        # -w: never prompt for a password (cron has no terminal); fail instead.
        args = [f"--port={self.options.port}", "-w"]
        if self.options.host:
            args.insert(0, f"--host={self.options.host}")
        if self.options.user:
            args.append(f"--username={self.options.user}")
        return args

    @property
    def where(self) -> str:
        return f"{self.options.host or 'the local socket'} port {self.options.port}"

    @contextmanager
    def environment(self) -> Iterator[dict[str, str]]:
        """Yield the child environment: PGPASSFILE set to the configured or a temporary 0600 passfile."""
        extra = {"PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS)}
        if self.options.password_file is not None:
            try:
                password = self.options.password_file.read_text(encoding="utf-8").splitlines()[0]
            except (OSError, IndexError):
                raise SourceError(
                    f"PostgreSQL password file {self.options.password_file} is missing or empty; fix PASSWORD_FILE"
                ) from None
            add_secret(password, where=f"the password in PASSWORD_FILE {self.options.password_file}")
            folder = self.work_folder if self.work_folder is not None and self.work_folder.is_dir() else None
            with secret_file(pgpass_line(password), folder=folder, suffix=".pgpass") as passfile:
                yield child_env({**extra, "PGPASSFILE": str(passfile)})
            return
        if self.options.passfile is not None:
            if not self.options.passfile.is_file():
                raise SourceError(f"PostgreSQL passfile {self.options.passfile} does not exist; fix PGPASSFILE")
            extra["PGPASSFILE"] = str(self.options.passfile)
        yield child_env(extra)

    def query(self, sql: str, *, env: Mapping[str, str], database: str = "postgres") -> list[str]:
        """Run sql with psql; return its output lines (unaligned, tuples only)."""
        argv = [self.psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", *self.connection_args(), f"--dbname={database}", "-c", sql]
        return [line for line in run(argv, env=env, timeout_seconds=QUERY_TIMEOUT_SECONDS).text.splitlines() if line]


def list_databases(connection: PostgresConnection, env: Mapping[str, str]) -> list[str]:
    """Every database that accepts connections, templates excluded."""
    return connection.query(
        "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY datname", env=env
    )


@dataclass
class FailedStream:
    """Stands for a server that could not be listed: writing it fails with the reason."""

    name: str
    error: BackupError
    kind: str = "postgres"
    suffix: str = ".pgdump"

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        raise self.error


@dataclass
class PostgresDumpStream:
    """``pg_dump -Fc`` of one database, or ``pg_dumpall --globals-only``: the program's stdout."""

    name: str
    argv: list[str]
    what: str
    connection: PostgresConnection
    metadata: dict[str, Any]
    kind: str = "postgres"
    suffix: str = ".pgdump"
    notes: list[str] = field(default_factory=list)

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        report.metadata.update(self.metadata)
        for message in self.notes:
            report.note(message)
        try:
            with self.connection.environment() as env:
                with stream_stdout(self.argv, env=env, timeout_seconds=self.connection.options.timeout_seconds) as stdout:
                    copy_stream(stdout, sink)
        except CommandFailed as error:
            raise SourceError(
                f"dump of PostgreSQL {self.what} on {self.connection.where} failed ({failure_reason(error)}); check that it still "
                "exists, the server is up and the credentials are right"
            ) from error
        except SourceError:
            raise
        except BackupError as error:
            raise SourceError(f"dump of PostgreSQL {self.what} could not start: {failure_reason(error)}") from error


class PostgresSource:
    """The POSTGRES section as a Source: globals, then one custom-format dump per database."""

    def __init__(self, options: PostgresOptions, *, work_folder: Path | None = None) -> None:
        self.options = options
        self.connection = PostgresConnection(options, work_folder=work_folder)

    @classmethod
    def from_section(cls, section, general) -> PostgresSource:
        return cls(parse_options(PostgresOptions, section), work_folder=general.work_folder)

    def describe(self) -> str:
        return f"PostgreSQL databases on {self.connection.where}"

    def selected_databases(self, env: Mapping[str, str]) -> tuple[list[str], list[str]]:
        """Return (databases to dump, databases excluded)."""
        names = list_databases(self.connection, env)
        wanted = set(self.options.databases)
        chosen, skipped = [], []
        for name in names:
            if name in self.options.exclude_databases or (wanted and name not in wanted):
                skipped.append(name)
            else:
                chosen.append(name)
        return chosen, skipped

    def streams(self) -> Iterator[Any]:
        port = self.options.port
        connection = self.connection
        try:
            with connection.environment() as env:
                server_version = connection.query("SHOW server_version", env=env)[0]
                databases, _skipped = self.selected_databases(env)
            dump_version = run([connection.pg_dump, "--version"], timeout_seconds=30).text.strip()
        except BackupError as error:
            yield FailedStream(
                name=f"postgres-{port}",
                error=SourceError(
                    f"PostgreSQL on {connection.where} could not be read ({failure_reason(error)}); check that the server is up, "
                    "HOST/PORT/USER and the password file"
                ),
            )
            return
        base = {"port": port, "server_version": server_version.split(" ")[0], "tool": dump_version}
        missing = sorted(set(self.options.databases) - set(databases) - set(self.options.exclude_databases))
        notes = [f"DATABASES names {name}, which does not exist" for name in missing]
        if self.options.is_globals_on:
            yield PostgresDumpStream(
                name=f"postgres-{port}-globals",
                argv=[connection.pg_dumpall, *connection.connection_args(), "--globals-only"],
                what="roles and tablespaces", connection=connection,
                metadata=dict(base, format="sql"), kind="postgres-globals", suffix=".sql", notes=notes,
            )
            notes = []
        for database in databases:
            yield PostgresDumpStream(
                name=f"postgres-{port}-{database}",
                argv=[connection.pg_dump, *connection.connection_args(), "--format=custom", f"--dbname={database}"],
                what=f"database {database!r}", connection=connection,
                metadata=dict(base, database=database, format="custom"), notes=notes,
            )
            notes = []

    def check(self) -> list[CheckLine]:
        lines: list[CheckLine] = []
        for program in (self.connection.pg_dump, self.connection.psql):
            try:
                lines.append(CheckLine(True, f"{program}: {run([program, '--version'], timeout_seconds=30).text.strip()}"))
            except BackupError as error:
                lines.append(CheckLine(False, str(error)))
        try:
            with self.connection.environment() as env:
                version = self.connection.query("SHOW server_version", env=env)[0]
                chosen, skipped = self.selected_databases(env)
        except BackupError as error:
            return lines + [CheckLine(False, f"PostgreSQL on {self.connection.where}: cannot connect ({failure_reason(error)})")]
        where = self.connection.where
        lines.append(CheckLine(True, f"PostgreSQL on {where}: connected, server {version}"))
        lines.append(CheckLine(True, f"PostgreSQL on {where}: will dump {', '.join(chosen) or 'no database'}"
                                     + (" and globals" if self.options.is_globals_on else "")))
        lines.append(CheckLine(True, f"PostgreSQL on {where}: excluded {', '.join(skipped) or 'nothing'} (templates always)"))
        return lines


def _restore_connection(request: RestoreRequest) -> PostgresConnection:
    values = dict(request.options or {})
    if "PORT" not in values and request.metadata.get("port"):
        values["PORT"] = request.metadata["port"]
    return PostgresConnection(PostgresOptions.model_validate(values))


def restore_postgres(reader: BinaryIO, request: RestoreRequest) -> list[str]:
    """pg_restore a custom-format dump, creating the database (or --database NEWNAME) when it is missing."""
    if not request.to_database:
        raise BackupError(f"stream {request.stream_name} is restored to a server only with --to-database; otherwise it is written as a file")
    database = request.database or request.metadata.get("database")
    if not database:
        raise BackupError(f"stream {request.stream_name} does not name its database; pass --database NAME")
    connection = _restore_connection(request)
    with connection.environment() as env:
        exists = connection.query(f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(database)}", env=env)
        argv = [connection.pg_restore, *connection.connection_args(), f"--dbname={database}", "--exit-on-error"]
        if exists:
            if not request.force:
                raise BackupError(
                    f"PostgreSQL database {database!r} already exists on {connection.where}; drop it, restore with "
                    "--database NEWNAME, or pass --force to replace its objects"
                )
            argv += ["--clean", "--if-exists"]
        else:
            connection.query(f"CREATE DATABASE {quote_identifier(database)} TEMPLATE template0", env=env)
        with stream_stdin(argv, env=env) as stdin:
            copy_stream(reader, stdin)
    return []


def restore_postgres_globals(reader: BinaryIO, request: RestoreRequest) -> list[str]:
    """Replay roles and tablespaces with psql; roles that already exist are reported by psql and kept."""
    if not request.to_database:
        raise BackupError(f"stream {request.stream_name} is restored to a server only with --to-database; otherwise it is written as a file")
    connection = _restore_connection(request)
    with connection.environment() as env:
        argv = [connection.psql, "-X", "-q", *connection.connection_args(), "--dbname=postgres", "-f", "-"]
        with stream_stdin(argv, env=env) as stdin:
            copy_stream(reader, stdin)
    return ["roles that already existed were left as they are (psql reports them as errors)"]
