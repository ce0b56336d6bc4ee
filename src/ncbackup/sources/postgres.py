"""PostgreSQL source (legacy ``load FROM postgres CLASS PostgresBackup``): pg_dump -Fc per database, plus globals.

Streams: ``postgres-<port>-globals`` (``pg_dumpall --globals-only``: roles, tablespaces) and one
``postgres-<port>-<database>`` per database in pg_dump's custom format. A password reaches the
programs only through a 0600 passfile named by PGPASSFILE in their environment, never argv or logs.
A database name is data: it reaches libpq only as a quoted value inside a connection string.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ncbackup.config.types import LegacyBool, LegacyInt, WordList, parse_options
from ncbackup.engine.logs import add_secret
from ncbackup.errors import BackupError, CommandFailed, SourceError
from ncbackup.process import child_env, run, stream_stdin, stream_stdout, which
from ncbackup.sources._dbsupport import (
    FailedStream,
    copy_stream,
    drop_blank_values,
    failure_reason,
    register_pgpass_passwords,
    require_to_database,
    restore_database_name,
    secret_file,
    shown_name,
)
from ncbackup.sources.base import CheckLine, RestoreRequest, SourceDescriptor, StreamReport

CONNECT_TIMEOUT_SECONDS = 10
QUERY_TIMEOUT_SECONDS = 120


class PostgresOptions(BaseModel):
    """The POSTGRES section's PARAMETERS; unknown legacy keys (PREFIX_FOLDER, DESTINATION) are ignored."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    pg_dump: str | None = Field(
        None, alias="PSQLDUMP", json_schema_extra={"shown_default": "`pg_dump` on PATH"}, description="`pg_dump`",
    )
    psql: str | None = Field(
        None, alias="PSQL", json_schema_extra={"shown_default": "beside `PSQLDUMP`, else on PATH"}, description="`psql`",
    )
    pg_dumpall: str | None = Field(
        None, alias="PG_DUMPALL", json_schema_extra={"shown_default": "beside `PSQLDUMP`, else on PATH"},
        description="(new) `pg_dumpall`",
    )
    pg_restore: str | None = Field(
        None, alias="PG_RESTORE", json_schema_extra={"shown_default": "beside `PSQLDUMP`, else on PATH"},
        description="(new) `pg_restore`",
    )
    host: str | None = Field(
        None, alias="HOST", json_schema_extra={"shown_default": "the local socket"},
        description="(new) the server: a host name, or a socket folder (`/run/postgresql`)",
    )
    port: LegacyInt = Field(5432, alias="PORT", description="(new) the server's port")
    user: str | None = Field(
        None, alias="USER", json_schema_extra={"shown_default": "the running user"}, description="(new) login",
    )
    password_file: Path | None = Field(
        None, alias="PASSWORD_FILE",
        description="(new) a file whose first line is the password: ncbackup writes a temporary 0600 passfile and "
                    "sets `PGPASSFILE` for the programs. Its lines match only `HOST` (each host of a list; a socket "
                    "folder also as `localhost`), `PORT` and `USER` (any user when unset), never `*:*:*:*`",
    )
    passfile: Path | None = Field(
        None, alias="PGPASSFILE",
        description="(new) an existing `.pgpass`-format file. Without either, the programs use `~/.pgpass`, "
                    "`PGPASSFILE` or peer/trust authentication as usual",
    )
    databases: WordList = Field(
        default_factory=list, alias="DATABASES", json_schema_extra={"shown_default": "every database"},
        description="(new) dump only these",
    )
    exclude_databases: WordList = Field(
        default_factory=list, alias="EXCLUDE_DB",
        description="databases not dumped. Templates (and databases that refuse connections) never are",
    )
    is_globals_on: LegacyBool = Field(
        True, alias="GLOBALS",
        description="(new) the `postgres-<port>-globals` stream: roles and tablespaces (`pg_dumpall --globals-only`), "
                    "as the original's `pg_dumpall -r`",
    )
    timeout_seconds: float | None = Field(
        None, alias="DUMP_TIMEOUT_SECONDS", json_schema_extra={"shown_default": "no limit"},
        description="(new) seconds a dump may take; a longer one is stopped and its stream fails",
    )

    @model_validator(mode="before")
    @classmethod
    def _ignore_blank_values(cls, values: Any) -> Any:
        return drop_blank_values(values)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """Return text as an SQL string literal, the same whatever standard_conforming_strings says."""
    if "\\" in text:
        return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
    return "'" + text.replace("'", "''") + "'"


def conninfo_value(text: str) -> str:
    """Return text as one libpq connection-string value: single-quoted, backslash and quote escaped."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pgpass_field(text: str) -> str:
    """Return text as one .pgpass field (``:`` and backslash escaped)."""
    return text.replace("\\", "\\\\").replace(":", "\\:")


def pgpass_lines(password: str, *, host: str | None, port: int, user: str | None) -> str:
    """.pgpass lines giving password to the configured host(s), port and user only, for any database."""
    # libpq looks a socket connection up as "localhost" when it uses the default socket folder (always
    # when HOST is unset), else under the folder's path: a socket folder gets both lines.
    hosts = [name for name in (host or "").split(",") if name] or ["localhost"]
    patterns: list[str] = []
    for name in hosts:
        patterns.append(name)
        if name.startswith(("/", "@")) and "localhost" not in patterns:
            patterns.append("localhost")
    user_field = pgpass_field(user) if user else "*"
    return "".join(f"{pgpass_field(name)}:{port}:*:{user_field}:{pgpass_field(password)}\n" for name in patterns)


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

    def conninfo(self, database: str | None = None) -> str:
        """A libpq connection string for the configured server (and database), every value quoted as data."""
        values = {"host": self.options.host, "port": str(self.options.port), "user": self.options.user, "dbname": database}
        return " ".join(f"{keyword}={conninfo_value(value)}" for keyword, value in values.items() if value is not None)

    def connection_args(self, database: str | None = None) -> list[str]:
        """-w and the whole connection as one ``--dbname`` connection string."""
        # libpq reads a --dbname holding "=" (or starting postgresql://) as a connection string: a database
        # named "host=... port=..." would pick the server. Inside a connection string a quoted dbname value
        # is only ever a name. -w: never prompt for a password (cron has no terminal); fail instead.
        return ["-w", f"--dbname={self.conninfo(database)}"]

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
            lines = pgpass_lines(password, host=self.options.host, port=self.options.port, user=self.options.user)
            with secret_file(lines, folder=folder, suffix=".pgpass") as passfile:
                yield child_env({**extra, "PGPASSFILE": str(passfile)})
            return
        if self.options.passfile is not None:
            if not self.options.passfile.is_file():
                raise SourceError(f"PostgreSQL passfile {self.options.passfile} does not exist; fix PGPASSFILE")
            extra["PGPASSFILE"] = str(self.options.passfile)
        yield child_env(extra)

    def query(self, sql: str, *, env: Mapping[str, str], database: str = "postgres") -> list[str]:
        """Run sql with psql; return its output lines (unaligned, tuples only)."""
        argv = [self.psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", *self.connection_args(database), "-c", sql]
        return [line for line in run(argv, env=env, timeout_seconds=QUERY_TIMEOUT_SECONDS).text.splitlines() if line]


def list_databases(connection: PostgresConnection, env: Mapping[str, str]) -> list[str]:
    """Every database that accepts connections, templates excluded."""
    # Hex: a name holding a newline must stay one name, not become two lines.
    lines = connection.query(
        "SELECT encode(convert_to(datname, 'UTF8'), 'hex') FROM pg_database WHERE NOT datistemplate AND datallowconn "
        "ORDER BY datname", env=env
    )
    return [bytes.fromhex(line).decode("utf-8") for line in lines]


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
        self.report = StreamReport()          # about the source as a whole (sources/base.Source)

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
                name=f"postgres-{port}", kind="postgres", suffix=".pgdump",
                error=SourceError(
                    f"PostgreSQL on {connection.where} could not be read ({failure_reason(error)}); check that the server is up, "
                    "HOST/PORT/USER and the password file"
                ),
            )
            return
        base = {"port": port, "server_version": server_version.split(" ")[0], "tool": dump_version}
        missing = sorted(set(self.options.databases) - set(databases) - set(self.options.exclude_databases))
        for name in missing:   # about the section as a whole, not one database's stream
            self.report.note(f"DATABASES names {name}, which does not exist")
        if self.options.is_globals_on:
            yield PostgresDumpStream(
                name=f"postgres-{port}-globals",
                argv=[connection.pg_dumpall, *connection.connection_args(), "--globals-only"],
                what="roles and tablespaces", connection=connection,
                metadata=dict(base, format="sql"), kind="postgres-globals", suffix=".sql",
            )
        for database in databases:
            yield PostgresDumpStream(
                name=f"postgres-{port}-{database}",   # the pipeline makes it a safe name; the name stays in metadata
                argv=[connection.pg_dump, *connection.connection_args(database), "--format=custom"],
                what=f"database {database!r}", connection=connection,
                metadata=dict(base, database=database, format="custom"),
            )

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
        chosen_text, skipped_text = ", ".join(map(shown_name, chosen)), ", ".join(map(shown_name, skipped))
        lines.append(CheckLine(True, f"PostgreSQL on {where}: will dump {chosen_text or 'no database'}"
                                     + (" and globals" if self.options.is_globals_on else "")))
        lines.append(CheckLine(True, f"PostgreSQL on {where}: excluded {skipped_text or 'nothing'} (templates always)"))
        return lines


def _restore_connection(request: RestoreRequest) -> PostgresConnection:
    # The server comes from the restoring side's config only: a manifest naming a host or port must not
    # choose where the password goes.
    return PostgresConnection(PostgresOptions.model_validate(dict(request.options or {})))


def restore_postgres(reader: BinaryIO, request: RestoreRequest) -> list[str]:
    """pg_restore a custom-format dump, creating the database (or --database NEWNAME) when it is missing."""
    require_to_database(request)
    database = restore_database_name(request)
    connection = _restore_connection(request)
    with connection.environment() as env:
        exists = connection.query(f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(database)}",  # noqa: S608 - a quoted literal
                                  env=env)
        argv = [connection.pg_restore, *connection.connection_args(database), "--exit-on-error"]
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
    require_to_database(request)
    connection = _restore_connection(request)
    with connection.environment() as env:
        argv = [connection.psql, "-X", "-q", *connection.connection_args("postgres"), "-f", "-"]
        with stream_stdin(argv, env=env) as stdin:
            copy_stream(reader, stdin)
    return ["roles that already existed were left as they are (psql reports them as errors)"]


DESCRIPTOR = SourceDescriptor(
    key="postgres", factory=PostgresSource,
    restorers={"postgres": restore_postgres, "postgres-globals": restore_postgres_globals},
    load_classes=(("postgres", "PostgresBackup"),), dump_folder="pgdump", secret_file_keys=("PASSWORD_FILE", "PGPASSFILE"),
)
