"""Microsoft SQL Server source (``NAME: mssql_backup``): one COPY_ONLY .bak per database, streamed, then removed.

Every database becomes a stream ``mssql-<instance>-<database>`` (kind ``mssql``): ``sqlcmd`` asks the
server to ``BACKUP DATABASE ... TO DISK`` into BACKUP_FOLDER (a folder the server writes and ncbackup
reads: the same host, or a share), ncbackup copies the file into the set and removes it, whatever
happened. With LOG_BACKUPS, databases in full (or bulk-logged) recovery add ``mssql-<instance>-<database>-log``
(kind ``mssql-log``). The password reaches sqlcmd only as SQLCMDPASSWORD in its environment. A database
name is data: a bracketed identifier (``]`` doubled), in file paths only as a sanitised label, and read
from the server in hex. No SQL Server runs on the test machines: see docs/mssql.md for what was verified.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ncbackup import platform
from ncbackup.config.types import LegacyBool, LegacyInt, WordList, parse_options
from ncbackup.engine.logs import add_secret
from ncbackup.errors import BackupError, CommandFailed, ConfigError, SourceError
from ncbackup.process import child_env, run, which
from ncbackup.sources._dbsupport import (
    FailedStream,
    copy_stream,
    drop_blank_values,
    failure_reason,
    require_to_database,
    restore_database_name,
    shown_name,
)
from ncbackup.sources.base import CheckLine, RestoreRequest, SourceDescriptor, StreamReport, check_writable_folder

# master, model and msdb are backed up only with INCLUDE_SYSTEM_DBS; tempdb never (the server rebuilds it at start).
SYSTEM_DATABASES = ("master", "model", "msdb")
NEVER_BACKED_UP = frozenset({"tempdb"})
LOGGED_RECOVERY_MODELS = frozenset({"FULL", "BULK_LOGGED"})
LOGIN_TIMEOUT_SECONDS = 10
QUERY_TIMEOUT_SECONDS = 120
COLUMN_SEPARATOR = "|"
# EngineEdition: 3 Enterprise/Developer/Evaluation, 8 Azure SQL Managed Instance; 2 is Standard, and Web (no compression).
COMPRESSING_ENGINE_EDITIONS = frozenset({3, 8})


class MssqlOptions(BaseModel):
    """The MSSQL section's PARAMETERS."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    sqlcmd: str = Field("sqlcmd", alias="SQLCMD", description="the `sqlcmd` client (ODBC `sqlcmd` or go-sqlcmd)")
    host: str = Field("localhost", alias="HOST", description="the server's host name")
    port: LegacyInt | None = Field(
        None, alias="PORT", json_schema_extra={"shown_default": "1433, or the named instance's"},
        description="the server's TCP port",
    )
    instance: str | None = Field(
        None, alias="INSTANCE", json_schema_extra={"shown_default": "the default instance"},
        description="a named instance (`SQLEXPRESS`): sqlcmd connects to `HOST\\INSTANCE`",
    )
    user: str | None = Field(
        None, alias="USER", description="SQL Server login (not a secret: it is on the command line as `-U`)",
    )
    credentials_file: Path | None = Field(
        None, alias="CREDENTIALS_FILE",
        description="a 0600 file whose first line is `USER`'s password; it reaches sqlcmd only as `SQLCMDPASSWORD` in "
                    "its environment, never argv",
    )
    is_integrated_auth: LegacyBool = Field(
        False, alias="INTEGRATED_AUTH",
        description="Windows integrated authentication (or Kerberos on Linux), `sqlcmd -E`, instead of `USER`",
    )
    is_trust_server_certificate: LegacyBool = Field(
        False, alias="TRUST_SERVER_CERTIFICATE",
        description="`sqlcmd -C`: accept the server's self-signed certificate (sqlcmd 18 encrypts by default)",
    )
    databases: WordList = Field(
        default_factory=list, alias="DATABASES", json_schema_extra={"shown_default": "every online database"},
        description="back up only these",
    )
    exclude_databases: WordList = Field(default_factory=list, alias="EXCLUDE_DB", description="databases not backed up")
    is_system_databases_on: LegacyBool = Field(
        False, alias="INCLUDE_SYSTEM_DBS", description="also back up `master`, `model` and `msdb` (`tempdb` never)",
    )
    backup_folder: Path = Field(
        alias="BACKUP_FOLDER",
        description="where the server writes each .bak and ncbackup reads it (the same host, or a share both "
                    "reach); each file is removed once streamed, also after a failure. Needs room for the largest database",
    )
    server_backup_folder: str | None = Field(
        None, alias="SERVER_BACKUP_FOLDER", json_schema_extra={"shown_default": "`BACKUP_FOLDER`"},
        description="the same folder as the server names it, when it differs (`D:\\bak` on the server, "
                    "`/mnt/bak` here)",
    )
    compression: Literal["auto", "on", "off"] = Field(
        "auto", alias="COMPRESSION",
        description="`WITH COMPRESSION`: `auto` uses it where the edition has it (Enterprise, Developer, Standard "
                    "but not Web or Express); smaller files in `BACKUP_FOLDER`, but then zstd gains little",
    )
    is_log_backups_on: LegacyBool = Field(
        False, alias="LOG_BACKUPS",
        description="also `BACKUP LOG` each database in full or bulk-logged recovery (a normal log backup: it truncates "
                    "the log, so no other tool should take log backups of these databases)",
    )
    restore_data_folder: str | None = Field(
        None, alias="RESTORE_DATA_FOLDER",
        json_schema_extra={"shown_default": "the server's default data and log folders"},
        description="(restore) the server folder `RESTORE ... WITH MOVE` puts every file of a restored database in",
    )
    timeout_seconds: float | None = Field(
        None, alias="DUMP_TIMEOUT_SECONDS", json_schema_extra={"shown_default": "no limit"},
        description="seconds one BACKUP or RESTORE may take; a longer one is stopped and its stream fails",
    )

    @model_validator(mode="before")
    @classmethod
    def _ignore_blank_values(cls, values: Any) -> Any:
        return drop_blank_values(values)


def check_authentication(options: MssqlOptions) -> None:
    """Raise ConfigError unless exactly one way to log in is configured: USER with CREDENTIALS_FILE, or INTEGRATED_AUTH."""
    if options.is_integrated_auth and options.user:
        raise ConfigError("USER and INTEGRATED_AUTH exclude each other; keep one", key="USER")
    if not options.is_integrated_auth and not options.user:
        raise ConfigError("set USER and CREDENTIALS_FILE, or INTEGRATED_AUTH true", key="USER")
    if options.user and options.credentials_file is None:
        raise ConfigError("USER needs CREDENTIALS_FILE (a 0600 file holding the password); add it", key="CREDENTIALS_FILE")


def quote_identifier(name: str) -> str:
    """Return name as a bracketed T-SQL identifier (``]`` doubled)."""
    return "[" + name.replace("]", "]]") + "]"


def quote_string(text: str) -> str:
    """Return text as a T-SQL Unicode string literal (``'`` doubled)."""
    return "N'" + text.replace("'", "''") + "'"


def sql_safe_name(name: str) -> str:
    """The name, when sqlcmd can carry it as data; a line break or other control character it would not."""
    # sqlcmd reads its input line by line (a line "GO" ends a batch, ":" starts a command): a name holding
    # a newline could split the statement whatever the quoting.
    if not name.isprintable():
        raise SourceError(f"database name {shown_name(name)} holds a line break or control character, which sqlcmd "
                          "cannot carry safely; rename the database or add it to EXCLUDE_DB")
    return name


def file_label(name: str) -> str:
    """A name as it may appear in a file name: letters, digits, ``.``, ``_`` and ``-`` only, at most 60 characters."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:60] or "db"


def from_hex_utf16(text: str) -> str:
    """A name the server sent as CONVERT(varchar, CONVERT(varbinary, name), 2): UTF-16LE in hex."""
    return bytes.fromhex(text.strip()).decode("utf-16-le", "replace")


def hex_of(column: str, width: int = 512) -> str:
    """T-SQL printing column as the hex of its UTF-16LE bytes: no separator, space or newline in a name can split a row."""
    return f"CONVERT(varchar({width * 2}), CONVERT(varbinary({width}), {column}), 2)"


def server_folder_path(folder: str) -> PurePath:
    """The server's folder as the server spells it: a Windows path (``D:\\bak``, ``\\\\nas\\bak``) or a Linux one."""
    if re.match(r"^[A-Za-z]:[\\/]", folder) or folder.startswith("\\\\"):
        return PureWindowsPath(folder)
    return PurePosixPath(folder)


def backup_sql(kind: str, database: str, server_path: str, *, compress: bool) -> str:
    """The BACKUP statement of one database (kind ``DATABASE``: COPY_ONLY full; ``LOG``: a log backup)."""
    options = ["COPY_ONLY", "CHECKSUM"] if kind == "DATABASE" else ["CHECKSUM"]
    if compress:
        options.append("COMPRESSION")
    return (f"BACKUP {kind} {quote_identifier(sql_safe_name(database))} TO DISK = {quote_string(server_path)} "
            f"WITH {', '.join(options)}")


@dataclass(frozen=True)
class DatabaseRow:
    """One row of sys.databases."""

    name: str
    state: str               # ONLINE, OFFLINE, RESTORING, ...
    recovery_model: str      # FULL, BULK_LOGGED, SIMPLE
    is_snapshot: bool


@dataclass(frozen=True)
class ServerInfo:
    version: str
    engine_edition: int
    edition: str
    data_folder: str | None
    log_folder: str | None

    @property
    def has_compression(self) -> bool:
        return self.engine_edition in COMPRESSING_ENGINE_EDITIONS or (
            self.engine_edition == 2 and "web" not in self.edition.lower()
        )


SERVER_INFO_SQL = (
    "SET NOCOUNT ON; SELECT CONVERT(varchar(64), SERVERPROPERTY('ProductVersion')), "
    "CONVERT(int, SERVERPROPERTY('EngineEdition')), CONVERT(varchar(128), SERVERPROPERTY('Edition')), "
    + hex_of("CONVERT(nvarchar(256), SERVERPROPERTY('InstanceDefaultDataPath'))") + ", "
    + hex_of("CONVERT(nvarchar(256), SERVERPROPERTY('InstanceDefaultLogPath'))")
)
LIST_DATABASES_SQL = (
    f"SET NOCOUNT ON; SELECT {hex_of('name')}, state_desc, recovery_model_desc, "  # noqa: S608 - constant text
    "CASE WHEN source_database_id IS NULL THEN 0 ELSE 1 END FROM sys.databases ORDER BY name"
)


class SqlcmdClient:
    """Runs sqlcmd against the configured server; the password only in SQLCMDPASSWORD."""

    def __init__(self, options: MssqlOptions) -> None:
        self.options = options

    @property
    def server(self) -> str:
        server = self.options.host
        if self.options.instance:
            server += "\\" + self.options.instance
        if self.options.port is not None:
            server += f",{self.options.port}"
        return server

    def argv(self, sql: str) -> list[str]:
        """sqlcmd's command line for one batch: fail on error (-b), errors to stderr, no variables (-x), bare rows."""
        # -r1 and -h-1 attached: ODBC sqlcmd takes -r's value only when attached, and go-sqlcmd's parser could read
        # a separate "-1" as an option.
        argv = [self.options.sqlcmd, "-S", self.server, "-d", "master", "-l", str(LOGIN_TIMEOUT_SECONDS), "-b", "-r1",
                "-x", "-h-1", "-W", "-w", "65535", "-s", COLUMN_SEPARATOR]
        argv += ["-E"] if self.options.is_integrated_auth else ["-U", str(self.options.user)]
        if self.options.is_trust_server_certificate:
            argv.append("-C")
        return argv + ["-Q", sql]

    def environment(self) -> dict[str, str]:
        """The child environment: SQLCMDPASSWORD from CREDENTIALS_FILE (masked in every log from now on)."""
        if self.options.is_integrated_auth or self.options.credentials_file is None:
            return child_env()
        path = self.options.credentials_file
        try:
            password = path.read_text(encoding="utf-8").splitlines()[0]
        except (OSError, UnicodeDecodeError, IndexError):
            raise SourceError(f"SQL Server credentials file {path} is missing, unreadable or empty; fix CREDENTIALS_FILE") from None
        add_secret(password, where=f"the password in CREDENTIALS_FILE {path}")
        return child_env({"SQLCMDPASSWORD": password})

    def query(self, sql: str, *, timeout_seconds: float | None = QUERY_TIMEOUT_SECONDS) -> list[list[str]]:
        """Run sql; return its output rows split on the column separator (blank lines dropped)."""
        result = run(self.argv(sql), env=self.environment(), timeout_seconds=timeout_seconds)
        return [line.split(COLUMN_SEPARATOR) for line in result.text.splitlines() if line.strip()]

    @property
    def where(self) -> str:
        return f"SQL Server {self.server}"


def server_info(client: SqlcmdClient) -> ServerInfo:
    row = client.query(SERVER_INFO_SQL)[0] + ["", "", "", "", ""]
    version, engine_edition, edition, data_hex, log_hex = row[:5]
    return ServerInfo(
        version=version.strip(), engine_edition=int(engine_edition) if engine_edition.strip().isdigit() else 0,
        edition=edition.strip(), data_folder=from_hex_utf16(data_hex) if data_hex.strip() not in ("", "NULL") else None,
        log_folder=from_hex_utf16(log_hex) if log_hex.strip() not in ("", "NULL") else None,
    )


def list_databases(client: SqlcmdClient) -> list[DatabaseRow]:
    rows = []
    for row in client.query(LIST_DATABASES_SQL):
        if len(row) == 4:
            rows.append(DatabaseRow(from_hex_utf16(row[0]), row[1].strip(), row[2].strip(), row[3].strip() == "1"))
    return rows


def sqlcmd_reason(error: BackupError) -> str:
    """Why sqlcmd failed, in one line: the server's message (the line after its first ``Msg N, Level L, ...`` header)."""
    if isinstance(error, CommandFailed) and error.stderr_tail:
        lines = [line.strip() for line in error.stderr_tail.splitlines() if line.strip()]
        for index, line in enumerate(lines[:-1]):
            if re.match(r"^Msg \d+, Level \d+", line):
                return f"{str(error).split(': ', 1)[0]}: {lines[index + 1]}"
    return failure_reason(error)


def leftover_files(folder: Path) -> list[Path]:
    """Files ncbackup names ``ncbackup-*`` in BACKUP_FOLDER: a run or restore killed mid-way (or running now) left them."""
    try:
        return sorted(path for path in folder.glob("ncbackup-*") if path.suffix in (".bak", ".trn"))
    except OSError:
        return []


def leftover_warning(folder: Path) -> str | None:
    leftovers = leftover_files(folder)
    if not leftovers:
        return None
    return (f"BACKUP_FOLDER {folder} holds {len(leftovers)} file(s) an interrupted backup or restore left there "
            f"({leftovers[0].name}{', ...' if len(leftovers) > 1 else ''}); remove them while no backup or restore runs")


def remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # the server may still hold it (a killed BACKUP): the next run and check warn about leftovers


@dataclass
class MssqlBackupStream:
    """One database's BACKUP DATABASE (or BACKUP LOG): written by the server into BACKUP_FOLDER, streamed, removed."""

    name: str
    database: str
    statement_kind: str             # "DATABASE" or "LOG"
    client: SqlcmdClient
    compress: bool
    metadata: dict[str, Any]
    kind: str = "mssql"
    suffix: str = ".bak"

    def file_name(self) -> str:
        return f"ncbackup-{file_label(self.database)}-{secrets.token_hex(6)}{self.suffix}"

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        report.metadata.update(self.metadata)
        options = self.client.options
        name = self.file_name()
        local_path = options.backup_folder / name
        server_path = str(server_folder_path(options.server_backup_folder or str(options.backup_folder)) / name)
        what = f"{'log of ' if self.statement_kind == 'LOG' else ''}database {shown_name(self.database)}"
        try:
            sql = backup_sql(self.statement_kind, self.database, server_path, compress=self.compress)
            self.client.query(sql, timeout_seconds=options.timeout_seconds)
            try:
                reader = open(local_path, "rb")  # noqa: SIM115 - closed below
            except OSError as error:
                raise SourceError(
                    f"{self.client.where} wrote the backup of {what} to {server_path}, but ncbackup cannot read "
                    f"{local_path} ({error.strerror}); BACKUP_FOLDER and SERVER_BACKUP_FOLDER must name the same folder"
                ) from None
            with reader:
                copy_stream(reader, sink)
        except CommandFailed as error:
            raise SourceError(
                f"BACKUP of {what} on {self.client.where} failed ({sqlcmd_reason(error)}); check that the database is "
                f"online, the login may back it up and the server can write to {server_path}"
            ) from error
        except SourceError:
            raise
        except BackupError as error:
            raise SourceError(f"BACKUP of {what} could not start: {sqlcmd_reason(error)}") from error
        finally:
            remove_quietly(local_path)


class MssqlSource:
    """The MSSQL section as a Source: one COPY_ONLY backup per database, plus log backups when asked."""

    def __init__(self, options: MssqlOptions) -> None:
        check_authentication(options)
        self.options = options
        self.client = SqlcmdClient(options)
        self.report = StreamReport()          # about the source as a whole (sources/base.Source)

    @classmethod
    def from_section(cls, section, general) -> MssqlSource:
        options = parse_options(MssqlOptions, section)
        try:
            return cls(options)
        except ConfigError as error:
            # Name the section and the line, as parse_options does for a wrong value.
            key = error.key or "PARAMETERS"
            position = section.parameter_positions.get(key) or section.key_positions.get("PARAMETERS") or section.position
            raise ConfigError(error.reason, file=position.file if position else None, line=position.line if position else None,
                              key=f"{section.name}.{key}") from None

    @property
    def label(self) -> str:
        """The instance part of stream names: the named instance, else the port (1433 by default)."""
        return file_label(self.options.instance) if self.options.instance else str(self.options.port or 1433)

    def describe(self) -> str:
        return f"SQL Server databases on {self.client.server} (via {self.options.backup_folder})"

    def selected_databases(self, rows: list[DatabaseRow]) -> tuple[list[DatabaseRow], list[str], list[str]]:
        """Return (databases to back up, names excluded, warnings about databases that cannot be)."""
        wanted = set(self.options.databases)
        chosen: list[DatabaseRow] = []
        skipped: list[str] = []
        warnings: list[str] = []
        for row in rows:
            is_excluded = (
                row.name in NEVER_BACKED_UP or row.is_snapshot or row.name in self.options.exclude_databases
                or (row.name in SYSTEM_DATABASES and not self.options.is_system_databases_on)
                or (wanted and row.name not in wanted)
            )
            if is_excluded:
                skipped.append(row.name)
            elif row.state != "ONLINE":
                skipped.append(row.name)
                warnings.append(f"database {shown_name(row.name)} on {self.client.where} is {row.state}, not ONLINE: not backed up")
            else:
                chosen.append(row)
        return chosen, skipped, warnings

    def compresses(self, info: ServerInfo) -> bool:
        return self.options.compression == "on" or (self.options.compression == "auto" and info.has_compression)

    def streams(self) -> Iterator[MssqlBackupStream | FailedStream]:
        try:
            info = server_info(self.client)
            chosen, _skipped, warnings = self.selected_databases(list_databases(self.client))
        except BackupError as error:
            yield FailedStream(
                name=f"mssql-{self.label}", kind="mssql", suffix=".bak",
                error=SourceError(
                    f"{self.client.where} could not be read ({sqlcmd_reason(error)}); check that the server is up, "
                    "HOST/PORT/INSTANCE and the login (USER and CREDENTIALS_FILE, or INTEGRATED_AUTH)"
                ),
            )
            return
        leftovers = leftover_warning(self.options.backup_folder)
        for message in warnings + ([leftovers] if leftovers else []):
            self.report.warn(message)
        for name in sorted(set(self.options.databases) - {row.name for row in chosen} - set(self.options.exclude_databases)):
            self.report.note(f"DATABASES names {name}, which is not an online database on {self.client.where}")
        compress = self.compresses(info)
        base = {"server": self.client.server, "server_version": info.version, "edition": info.edition,
                "compression": compress, "format": "bak"}
        for row in chosen:
            metadata = dict(base, database=row.name, recovery_model=row.recovery_model)
            yield MssqlBackupStream(
                name=f"mssql-{self.label}-{row.name}",   # the pipeline makes it a safe name; the name stays in metadata
                database=row.name, statement_kind="DATABASE", client=self.client, compress=compress,
                metadata=dict(metadata, copy_only=True),
            )
            if self.options.is_log_backups_on and row.recovery_model in LOGGED_RECOVERY_MODELS:
                yield MssqlBackupStream(
                    name=f"mssql-{self.label}-{row.name}-log", database=row.name, statement_kind="LOG",
                    client=self.client, compress=compress, metadata=dict(metadata, format="trn"),
                    kind="mssql-log", suffix=".trn",
                )

    def check(self) -> list[CheckLine]:
        lines: list[CheckLine] = []
        found = which(self.options.sqlcmd)
        lines.append(CheckLine(found is not None, f"sqlcmd: {found}" if found else
                               f"sqlcmd {self.options.sqlcmd!r} was not found; install the SQL Server command line tools "
                               "or set SQLCMD to its full path"))
        path = self.options.credentials_file
        if path is not None:
            if not path.is_file():
                lines.append(CheckLine(False, f"SQL Server credentials file {path} does not exist; fix CREDENTIALS_FILE"))
            elif platform.is_readable_by_others(path):
                lines.append(CheckLine(False, f"SQL Server credentials file {path} is readable by other users "
                                              f"(mode {platform.mode_text(path)}); chmod 600 it"))
            else:
                lines.append(CheckLine(True, f"SQL Server credentials file {path} is private ({platform.mode_text(path)})"))
        lines.append(check_writable_folder(self.options.backup_folder, "SQL Server BACKUP_FOLDER"))
        if found is None or not all(line.ok for line in lines):
            return lines
        try:
            info = server_info(self.client)
            chosen, skipped, warnings = self.selected_databases(list_databases(self.client))
        except BackupError as error:
            return lines + [CheckLine(False, f"{self.client.where}: cannot connect ({sqlcmd_reason(error)})")]
        where = self.client.where
        compression = "with COMPRESSION" if self.compresses(info) else "without COMPRESSION"
        lines.append(CheckLine(True, f"{where}: connected, {info.edition} {info.version}, backups {compression}"))
        chosen_text = ", ".join(shown_name(row.name) for row in chosen)
        lines.append(CheckLine(True, f"{where}: will back up {chosen_text or 'no database'} (COPY_ONLY, CHECKSUM)"))
        if self.options.is_log_backups_on:
            logged = ", ".join(shown_name(row.name) for row in chosen if row.recovery_model in LOGGED_RECOVERY_MODELS)
            lines.append(CheckLine(True, f"{where}: will back up the log of {logged or 'no database'}"))
        lines.append(CheckLine(True, f"{where}: excluded {', '.join(map(shown_name, skipped)) or 'nothing'} (tempdb always)"))
        leftovers = leftover_warning(self.options.backup_folder)
        lines += [CheckLine(True, f"warning: {message}") for message in warnings + ([leftovers] if leftovers else [])]
        return lines


@dataclass(frozen=True)
class BackupFile:
    """One row of RESTORE FILELISTONLY."""

    logical_name: str
    physical_name: str
    file_type: str           # D data, L log, F full-text catalog, S FILESTREAM/memory-optimised container


def parse_file_list(rows: list[list[str]]) -> list[BackupFile]:
    """The files a .bak holds, from RESTORE FILELISTONLY's rows (LogicalName, PhysicalName, Type, ...)."""
    files = []
    for row in rows:
        if len(row) < 3 or row[2].strip() not in ("D", "L", "F", "S"):
            raise BackupError(f"RESTORE FILELISTONLY gave a row ncbackup cannot read ({COLUMN_SEPARATOR.join(row)[:120]!r}); "
                              "restore the .bak by hand (restore the stream with --target)")
        files.append(BackupFile(row[0], row[1], row[2].strip()))
    if not files:
        raise BackupError("RESTORE FILELISTONLY listed no file; the backup is not a database backup")
    return files


def move_clauses(files: list[BackupFile], database: str, *, data_folder: str, log_folder: str) -> list[str]:
    """``MOVE N'logical' TO N'path'`` for every file: named after the new database, so a copy never takes the original's files."""
    clauses = []
    used: set[str] = set()
    for backup_file in files:
        original = server_folder_path(backup_file.physical_name)
        extension = original.suffix if backup_file.file_type != "S" else ""
        stem = f"{file_label(database)}_{file_label(backup_file.logical_name)}"
        candidate, counter = stem, 1
        while candidate.lower() in used:
            counter += 1
            candidate = f"{stem}_{counter}"
        used.add(candidate.lower())
        folder = server_folder_path(log_folder if backup_file.file_type == "L" else data_folder)
        clauses.append(f"MOVE {quote_string(backup_file.logical_name)} TO {quote_string(str(folder / (candidate + extension)))}")
    return clauses


def restore_sql(database: str, server_path: str, moves: list[str], *, replace: bool) -> str:
    options = ["CHECKSUM", *moves] + (["REPLACE"] if replace else []) + ["RECOVERY"]
    return (f"RESTORE DATABASE {quote_identifier(sql_safe_name(database))} FROM DISK = {quote_string(server_path)} "
            f"WITH {', '.join(options)}")


def restore_mssql(reader: BinaryIO, request: RestoreRequest) -> list[str]:
    """Write the .bak into BACKUP_FOLDER, then RESTORE DATABASE it (or --database NEWNAME) WITH MOVE to the server's folders."""
    require_to_database(request)
    database = restore_database_name(request)
    if not database.isprintable():
        raise BackupError(f"database name {shown_name(database)} holds a line break or control character, which sqlcmd "
                          "cannot carry safely; pass --database NAME")
    # The server, login and folders come from the restoring side's config only, never from the manifest.
    options = MssqlOptions.model_validate(dict(request.options or {}))
    check_authentication(options)
    client = SqlcmdClient(options)
    name = f"ncbackup-restore-{file_label(database)}-{secrets.token_hex(6)}.bak"
    local_path = options.backup_folder / name
    server_path = str(server_folder_path(options.server_backup_folder or str(options.backup_folder)) / name)
    try:
        _restore(reader, request, client, database, local_path=local_path, server_path=server_path)
    except CommandFailed as error:
        raise BackupError(
            f"restore of stream {request.stream_name} into SQL Server database {database!r} on {client.server} failed "
            f"({sqlcmd_reason(error)}); check that the server is up, the login may create databases and the server "
            f"can read {server_path}"
        ) from error
    finally:
        remove_quietly(local_path)
    return []


def _restore(reader: BinaryIO, request: RestoreRequest, client: SqlcmdClient, database: str, *,
             local_path: Path, server_path: str) -> None:
    options = client.options
    exists = client.query(f"SET NOCOUNT ON; SELECT COUNT(*) FROM sys.databases WHERE name = {quote_string(database)}")  # noqa: S608
    if exists and exists[0][0].strip() != "0" and not request.force:
        raise BackupError(
            f"SQL Server database {database!r} already exists on {client.server}; restore with --database NEWNAME, "
            "or pass --force to replace it (RESTORE ... WITH REPLACE)"
        )
    try:
        with open(local_path, "wb") as handle:
            copy_stream(reader, handle)
    except OSError as error:
        raise BackupError(f"cannot write {local_path} ({error.strerror}); BACKUP_FOLDER must be writable by ncbackup "
                          "and readable by the server") from None
    files = parse_file_list(client.query(f"SET NOCOUNT ON; RESTORE FILELISTONLY FROM DISK = {quote_string(server_path)}"))
    data_folder = log_folder = options.restore_data_folder
    if data_folder is None:
        info = server_info(client)
        data_folder, log_folder = info.data_folder, info.log_folder or info.data_folder
    if not data_folder or not log_folder:
        raise BackupError(f"{client.where} does not say its default data folder; set RESTORE_DATA_FOLDER in the MSSQL section")
    moves = move_clauses(files, database, data_folder=data_folder, log_folder=log_folder)
    client.query(restore_sql(database, server_path, moves, replace=request.force), timeout_seconds=options.timeout_seconds)


DESCRIPTOR = SourceDescriptor(
    key="mssql_backup", factory=MssqlSource, restorers={"mssql": restore_mssql},
    execute_names=("mssql_backup",), secret_file_keys=("CREDENTIALS_FILE",),
)
