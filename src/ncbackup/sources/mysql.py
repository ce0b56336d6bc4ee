"""MySQL/MariaDB source (legacy ``NAME: mysql_backup``): one streamed dump per database, binlogs, physical.

Every database of every instance becomes its own stream ``mysql-<instance>-<database>``, the dump
program's stdout copied straight into the pipeline. Credentials only ever reach the programs through
``--defaults-extra-file`` (the CREDENTIAL_PATH option file, always the first argument). Database names
are data: backquoted in SQL, read back in hex, and on a command line only after ``--`` or in ``--opt=``.
"""

from __future__ import annotations

import configparser
import logging
import re
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ncbackup.archive.extract import extract_tar
from ncbackup.archive.writer import TarWriter
from ncbackup.config.types import LegacyBool, LegacyInt, WordList, parse_options
from ncbackup.errors import BackupError, CommandFailed, SourceError
from ncbackup.process import run, stream_stdin, stream_stdout, which
from ncbackup.setformat import safe_stream_name, set_order, signature_key
from ncbackup.sources._binlogchain import (
    BINLOG_NAME,
    BinlogPosition,
    ChainSettings,
    ChainState,
    Decision,
    FullEverySetting,
    StateProblem,
    decide,
    logs_since,
    read_state,
    state_path,
    write_state,
)
from ncbackup.sources._dbsupport import (
    FailedStream,
    copy_stream,
    drop_blank_values,
    failure_reason,
    find_program,
    register_option_file_passwords,
    require_to_database,
    restore_database_name,
    secret_file,
    shown_name,
)
from ncbackup.sources.base import CheckLine, RestoreRequest, SourceDescriptor, StreamReport, check_writable_folder

if TYPE_CHECKING:
    from ncbackup.storage.base import Storage

log = logging.getLogger(__name__)

# Never dumped: virtual schemas the server rebuilds itself. ``mysql`` (users, grants) is dumped, as the original did.
SYSTEM_SCHEMAS = frozenset({"information_schema", "performance_schema", "sys"})
# Engines whose tables a --single-transaction dump reads consistently without locking.
TRANSACTIONAL_ENGINES = frozenset({"innodb", "xtradb", "tokudb", "rocksdb", "ndbcluster"})
CONNECT_TIMEOUT_SECONDS = 10
QUERY_TIMEOUT_SECONDS = 120
SECONDS_PER_DAY = 86400


class MysqlOptions(BaseModel):
    """The MYSQL section's PARAMETERS (COMPAT.md section 3); unknown legacy keys are ignored."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    credential_path: Path | None = Field(
        None, alias="CREDENTIAL_PATH",
        description="option file with `[mysqldump]` and `[mysql]` groups (`user`, `password`, `host`, `socket`); "
                    "passed as `--defaults-extra-file`, never on a command line. Keep it 0600",
    )
    conf_path: Path | None = Field(
        None, alias="CONF_PATH", description="accepted and ignored: the client reads the usual my.cnf files by itself",
    )
    data_dir: Path | None = Field(
        None, alias="DATA_DIR", json_schema_extra={"shown_default": "the server's `@@datadir`"},
        description="with `PHYSICAL`: the server's data folder (ignored by the logical dumps)",
    )
    instances: WordList = Field(
        default_factory=lambda: ["3306"], alias="MY_INSTANCES",
        description="ports (TCP; host from the option file or `HOST`) or socket paths: one dump run per instance. "
                    "The stream name uses the port, or the socket file's stem (`mysqld2`)",
    )
    restore_instance: str | None = Field(
        None, alias="RESTORE_INSTANCE", json_schema_extra={"shown_default": "the stream's instance"},
        description="(new, restore only) the port or socket `--to-database` loads into, whichever instance the "
                    "stream came from. Needed when `MY_INSTANCES` lists several and none is the stream's",
    )
    host: str | None = Field(
        None, alias="HOST", json_schema_extra={"shown_default": "the option file's"},
        description="(new) host for port instances, when the option file does not say",
    )
    binlog_path: Path | None = Field(
        None, alias="BINLOG_PATH", json_schema_extra={"shown_default": "the server's `@@log_bin_basename` folder"},
        description="the folder of the binary logs",
    )
    binlog_file_prefix: str | None = Field(
        None, alias="BINLOG_FILE_PREFIX",
        json_schema_extra={"shown_default": "the server's `@@log_bin_basename` name, else `mysql-bin`"},
        description="the binary logs' file name prefix",
    )
    binlog_days: LegacyInt | None = Field(
        None, alias="BINLOG_DAYS", json_schema_extra={"shown_default": "no binlog stream"},
        description="copy the closed binary logs modified in the last N days as one tar stream. `0`: no binlog stream",
    )
    is_incremental: LegacyBool = Field(
        False, alias="INCREMENTAL",
        description="(new) after a full run (the dumps), each run copies only the binary logs written since the "
                    "last set (`mysql-<instance>-binlogs`, kind `mysql-binlog-chain`), from the position it ended at; "
                    "needs binary logging and ncbackup on the database host. See \"Incremental\" below",
    )
    full_every: FullEverySetting | None = Field(
        None, alias="FULL_EVERY", json_schema_extra={"shown_default": "no time limit",
                                                     "allowed": "a duration (`7d`, `36h`) or a weekday (`sunday`)"},
        description="(new) with `INCREMENTAL`: dump again (a full) once the last full is this old, or on the first "
                    "run of that weekday",
    )
    max_chain: LegacyInt = Field(
        13, ge=0, alias="MAX_CHAIN",
        description="(new) with `INCREMENTAL`: at most this many incrementals after a full; then the run dumps again",
    )
    binlog_binary: str | None = Field(
        None, alias="MYSQLBINLOG_BINARY",
        json_schema_extra={"shown_default": "`mariadb-binlog` or `mysqlbinlog` on PATH"},
        description="(new, restore only) the program that decodes binary logs for `restore --to-database`",
    )
    dump_binary: str | None = Field(
        None, alias="MYSQL_DUMP_BINARY", json_schema_extra={"shown_default": "`mariadb-dump` or `mysqldump` on PATH"},
        description="the dump program. One that points at the client (`/usr/bin/mysql`, as in the original's "
                    "example) is replaced by the dump tool next to it",
    )
    client_binary: str | None = Field(
        None, alias="MYSQL_BINARY", json_schema_extra={"shown_default": "`mariadb` or `mysql` on PATH"},
        description="the client program",
    )
    physical_binary: str | None = Field(
        None, alias="PHYSICAL_BINARY",
        json_schema_extra={"shown_default": "`mariadb-backup`, `mariabackup` or `xtrabackup` on PATH"},
        description="(new) with `PHYSICAL`: the physical backup program",
    )
    exclude_databases: WordList = Field(
        default_factory=list, alias="EXCLUDE_DB",
        description="databases not dumped. `information_schema`, `performance_schema` and `sys` never are; `mysql` "
                    "(users, grants) is, as the original did: exclude it if you do not want it",
    )
    exclude_tables: WordList = Field(
        default_factory=list, alias="EXCLUDE_TABLE",
        description="`db.table` words, passed as `--ignore-table`. A name that does not exist is a warning on the "
                    "run, not a failure",
    )
    is_physical: LegacyBool = Field(
        False, alias="PHYSICAL",
        description="(new) also stream `mariadb-backup --backup --stream=xbstream` of the whole instance (needs "
                    "ncbackup on the database host, able to read the datadir)",
    )
    is_logical: LegacyBool = Field(
        True, alias="LOGICAL", description="(new) the per-database dumps; `false` with `PHYSICAL`: physical only",
    )
    timeout_seconds: float | None = Field(
        None, alias="DUMP_TIMEOUT_SECONDS", json_schema_extra={"shown_default": "no limit"},
        description="(new) seconds a dump may take; a longer one is stopped and its stream fails",
    )

    @model_validator(mode="before")
    @classmethod
    def _ignore_blank_values(cls, values: Any) -> Any:
        return drop_blank_values(values)


@dataclass(frozen=True)
class MysqlInstance:
    """One server to dump: a TCP port (``3306``) or a socket path (``/run/mysqld/mysqld.sock``)."""

    spec: str
    host: str | None = None

    @property
    def is_socket(self) -> bool:
        return not self.spec.isdigit()

    @property
    def label(self) -> str:
        """The instance part of stream names: the port, or the socket file's stem."""
        return Path(self.spec).stem if self.is_socket else self.spec

    def connection_args(self) -> list[str]:
        if self.is_socket:
            # A host in the option file would otherwise win over the socket.
            return ["--protocol=SOCKET", "--host=localhost", f"--socket={self.spec}"]
        args = ["--protocol=TCP", f"--port={self.spec}"]
        if self.host:
            args.append(f"--host={self.host}")
        return args


@dataclass(frozen=True)
class ServerInfo:
    """What one query tells about an instance before dumping it."""

    flavour: str            # "mariadb" | "mysql"
    version: str
    is_binlog_on: bool
    binlog_basename: str | None
    datadir: str | None


def client_argv(program: str, defaults_file: Path | None, instance: MysqlInstance) -> list[str]:
    """The start of every MySQL program's command line: the program, the option file, then the instance's connection options."""
    # --defaults-extra-file is only honoured as the very first argument, and it is the only way credentials travel.
    argv = [program]
    if defaults_file is not None:
        argv.append(f"--defaults-extra-file={defaults_file}")
    return argv + instance.connection_args()


def quote_identifier(name: str) -> str:
    """Return name as a backquoted MySQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def quote_string(text: str) -> str:
    """Return text as a single-quoted MySQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def hex_equals(column: str, text: str) -> str:
    """An SQL condition: column holds exactly text (compared in hex: no quoting, whatever the sql_mode)."""
    return f"HEX({column}) = '{text.encode('utf-8').hex().upper()}'"


def from_hex(text: str) -> str:
    """A name the server sent as HEX(...), back as text."""
    return bytes.fromhex(text).decode("utf-8", "replace")


def parse_exclude_tables(words: list[str]) -> dict[str, set[str]]:
    """Map database -> excluded tables from ``db.table`` words; a word without a dot is a ConfigError."""
    from ncbackup.errors import ConfigError

    result: dict[str, set[str]] = {}
    for word in words:
        database, dot, table = word.partition(".")
        if not dot or not database or not table:
            raise ConfigError(f"{word!r} is not database.table; write each excluded table as db.table", key="EXCLUDE_TABLE")
        result.setdefault(database, set()).add(table)
    return result


class MysqlClient:
    """Runs the ``mariadb``/``mysql`` client against one instance, credentials through the option file."""

    def __init__(self, options: MysqlOptions, instance: MysqlInstance) -> None:
        self.options = options
        self.instance = instance
        self.program = find_program(options.client_binary, "mariadb", "mysql")

    def base_args(self) -> list[str]:
        return client_argv(self.program, self.options.credential_path, self.instance)

    def query(self, sql: str) -> list[list[str]]:
        """Run sql; return the rows of its last result set as lists of strings (NULL is 'NULL')."""
        argv = self.base_args() + [f"--connect-timeout={CONNECT_TIMEOUT_SECONDS}", "--batch", "--skip-column-names", "--raw", "-e", sql]
        result = run(argv, timeout_seconds=QUERY_TIMEOUT_SECONDS)
        return [line.split("\t") for line in result.text.splitlines()]


def check_credential_file(options: MysqlOptions) -> None:
    """Raise SourceError when CREDENTIAL_PATH is set but not a readable file."""
    path = options.credential_path
    if path is not None and not path.is_file():
        raise SourceError(f"MySQL credential file {path} does not exist; fix CREDENTIAL_PATH in the MYSQL section")


def server_info(client: MysqlClient) -> ServerInfo:
    """Ask the server its flavour, version, binary-logging state and data folder."""
    rows = client.query("SELECT VERSION(), @@version_comment, @@log_bin, @@log_bin_basename, @@datadir")
    version, comment, log_bin, basename, datadir = (rows[0] + ["NULL"] * 5)[:5]
    flavour = "mariadb" if "mariadb" in (version + comment).lower() else "mysql"
    return ServerInfo(
        flavour=flavour,
        version=version.split("-")[0],
        is_binlog_on=log_bin in ("1", "ON"),
        binlog_basename=None if basename == "NULL" else basename,
        datadir=None if datadir == "NULL" else datadir,
    )


def table_engines(client: MysqlClient) -> dict[str, dict[str, str]]:
    """Map database -> table -> engine (lower case) for every base table on the server."""
    # Names in hex: the client prints them raw, and a tab or newline in a name would split its row.
    rows = client.query(
        "SELECT HEX(TABLE_SCHEMA), HEX(TABLE_NAME), IFNULL(ENGINE, '') FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE'"
    )
    engines: dict[str, dict[str, str]] = {}
    for row in rows:
        if len(row) == 3:
            engines.setdefault(from_hex(row[0]), {})[from_hex(row[1])] = row[2].lower()
    return engines


def flush_and_locate_binlog(client: MysqlClient, info: ServerInfo) -> dict[str, Any]:
    """FLUSH BINARY LOGS and return the position where the new log starts (file, position, GTID)."""
    client.query("FLUSH BINARY LOGS")
    try:
        rows = client.query("SHOW MASTER STATUS")
    except CommandFailed:
        rows = client.query("SHOW BINARY LOG STATUS")  # MySQL 8.4 removed SHOW MASTER STATUS
    position: dict[str, Any] = {}
    if rows and len(rows[0]) >= 2:
        position = {"file": rows[0][0], "position": int(rows[0][1])}
    gtid_sql = "SELECT @@gtid_binlog_pos" if info.flavour == "mariadb" else "SELECT @@gtid_executed"
    try:
        gtid_rows = client.query(gtid_sql)
        if gtid_rows and gtid_rows[0][0] not in ("", "NULL"):
            position["gtid"] = gtid_rows[0][0].replace("\\n", "")
    except CommandFailed:
        pass
    return position


def program_version(program: str) -> str:
    """The first line of ``program --version`` (raises BackupError when the program is missing)."""
    # mariadb-backup prints its version on stderr: read here, not logged as a warning.
    result = run([program, "--version"], timeout_seconds=30, stderr_log_level=None)
    lines = (result.text.strip() or result.stderr.decode("utf-8", "replace").strip()).splitlines()
    return lines[0] if lines else "version unknown"


def dump_flavour_args(dump_version_line: str, info: ServerInfo) -> list[str]:
    """Options that make a per-database dump restorable on any server, whatever the GTID mode."""
    is_mysql_client = "mariadb" not in dump_version_line.lower()
    args: list[str] = []
    if is_mysql_client:
        # MySQL's mysqldump writes SET @@GLOBAL.GTID_PURGED when GTIDs are on: it fails on restore into
        # a server with its own GTID history, and a per-database dump is no replica seed anyway.
        args.append("--set-gtid-purged=OFF")
        if info.flavour == "mariadb" and " 8." in f" {dump_version_line.split('Ver')[-1]}":
            args.append("--column-statistics=0")  # MySQL 8 client against MariaDB: no column_statistics table
    return args


DUMP_HEAD_BYTES = 64 * 1024     # the dump's position comment comes before any data
_DUMP_POSITION = re.compile(
    rb"^-- CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_FILE='([^']+)', (?:MASTER|SOURCE)_LOG_POS=(\d+);",
    re.MULTILINE,
)


def position_args(dump_version_line: str) -> list[str]:
    """The option that makes a dump write, as a comment, the binlog position of its own snapshot."""
    if "mariadb" in dump_version_line.lower():
        return ["--master-data=2"]
    match = re.search(r"Ver (\d+)\.(\d+)\.(\d+)", dump_version_line)
    version = tuple(int(part) for part in match.groups()) if match else (0, 0, 0)
    return ["--source-data=2"] if version >= (8, 0, 26) else ["--master-data=2"]


def dump_snapshot_position(head: bytes) -> BinlogPosition | None:
    """The position a dump wrote in its head (``-- CHANGE MASTER TO ...``); None when it wrote none."""
    match = _DUMP_POSITION.search(head)
    if match is None:
        return None
    try:
        return BinlogPosition.from_metadata({"file": match.group(1).decode("utf-8", "replace"), "position": int(match.group(2))})
    except ValueError:
        return None


def tell(report: StreamReport, *, warnings: list[str], notes: list[str]) -> None:
    """Copy a stream's own warnings and notes into its report."""
    for message in warnings:
        report.warn(message)
    for message in notes:
        report.note(message)


@dataclass
class MysqlDumpStream:
    """One database's logical dump: ``mariadb-dump``'s stdout."""

    name: str
    argv: list[str]
    database: str
    instance: MysqlInstance
    metadata: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timeout_seconds: float | None = None
    kind: str = "mysql"
    suffix: str = ".sql"
    is_position_recorded: bool = False              # argv asks the dump to write its snapshot's binlog position
    snapshot_position: BinlogPosition | None = None  # that position, read from the dump's head once written

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        report.metadata.update(self.metadata)
        tell(report, warnings=self.warnings, notes=self.notes)
        try:
            with stream_stdout(self.argv, timeout_seconds=self.timeout_seconds) as stdout:
                if self.is_position_recorded:
                    head = b""
                    while len(head) < DUMP_HEAD_BYTES:
                        chunk = stdout.read(DUMP_HEAD_BYTES - len(head))
                        if not chunk:
                            break
                        head += chunk
                    sink.write(head)
                    self.snapshot_position = dump_snapshot_position(head)
                    if self.snapshot_position is not None:
                        report.metadata["dump_position"] = self.snapshot_position.as_metadata()
                copy_stream(stdout, sink)
        except CommandFailed as error:
            raise SourceError(
                f"dump of MySQL database {self.database!r} on instance {self.instance.label} failed ({failure_reason(error)}); "
                "check that the database still exists and the server is up, then run the backup again"
            ) from error
        except BackupError as error:
            raise SourceError(f"dump of MySQL database {self.database!r} could not start: {failure_reason(error)}") from error


@dataclass
class BinlogStream:
    """The binary logs of the last N days, closed by FLUSH BINARY LOGS, as one tar."""

    name: str
    folder: Path
    files: list[str]
    metadata: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    kind: str = "mysql-binlogs"
    suffix: str = ".tar"

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        report.metadata.update(self.metadata)
        tell(report, warnings=self.warnings, notes=self.notes)
        if not self.files:
            report.note(f"no binary log in {self.folder} was modified within the configured BINLOG_DAYS")
        # The shared pax writer, with flat member names: `mariadb-binlog target/*` replays them in order.
        writer = TarWriter(sink, report=report)
        for file_name in self.files:
            writer.add_file(str(self.folder / file_name), name=file_name)
        writer.close()


@dataclass
class BinlogChainStream(BinlogStream):
    """An incremental run's only stream per instance: the binary logs from the parent set's position to this run's flush."""

    kind: str = "mysql-binlog-chain"

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        report.metadata.update(self.metadata)
        tell(report, warnings=self.warnings, notes=self.notes)
        # A log the writer would skip (gone, unreadable) is a warning for a file tree, but a hole in the chain here.
        own = StreamReport()
        writer = TarWriter(sink, report=own)
        for file_name in self.files:
            writer.add_file(str(self.folder / file_name), name=file_name)
            if own.warnings:
                raise SourceError(f"binary log {file_name} could not be copied ({own.warnings[0]}), so the incremental "
                                  "would miss changes; run ncbackup on the database host with read access to the binary "
                                  "logs (BINLOG_PATH), and keep them until the next backup")
        writer.close()
        tell(report, warnings=[], notes=own.notes)


@dataclass
class PhysicalStream:
    """``mariadb-backup --backup --stream=xbstream`` of a whole instance."""

    name: str
    program: str
    instance: MysqlInstance
    backup_args: list[str]          # after the connection options: --backup, --stream, --datadir
    credential_path: Path | None
    work_folder: Path
    metadata: dict[str, Any]
    timeout_seconds: float | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    kind: str = "mysql-physical"
    suffix: str = ".xbstream"

    def argv(self, defaults_file: Path, target_dir: Path) -> list[str]:
        """The backup program's command line, given its private option file and an empty work folder."""
        return client_argv(self.program, defaults_file, self.instance) + self.backup_args + [f"--target-dir={target_dir}"]

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        report.metadata.update(self.metadata)
        tell(report, warnings=self.warnings, notes=self.notes)
        folder = self.work_folder if self.work_folder.is_dir() else None
        # mariadb-backup reads other option groups than the credential file's: it gets its own copy, for this run only.
        with secret_file(backup_option_file(self.credential_path), folder=folder, suffix=".cnf") as defaults:
            with tempfile.TemporaryDirectory(prefix=".ncbackup-physical-", dir=folder) as target:
                argv = self.argv(defaults, Path(target))
                try:
                    with stream_stdout(argv, timeout_seconds=self.timeout_seconds) as stdout:
                        copy_stream(stdout, sink)
                except CommandFailed as error:
                    raise SourceError(
                        f"physical backup {self.name} failed ({failure_reason(error)}); check that ncbackup runs on the database "
                        "host with read access to its data folder"
                    ) from error


MysqlStream = MysqlDumpStream | BinlogStream | BinlogChainStream | PhysicalStream


@dataclass(frozen=True)
class InstanceProbe:
    """What the source asks an instance before building its streams."""

    info: ServerInfo
    databases: list[str]                    # to dump
    engines: dict[str, dict[str, str]]      # database -> table -> engine
    dump_version: str                       # the dump program's version line ("" when LOGICAL is off)


CONNECTION_KEYS = ("user", "password", "host", "port", "socket")


def backup_option_file(credential_path: Path | None) -> str:
    """Option-file text giving mariadb-backup the connection settings of the [client]/[mysqldump]/[mysql] groups."""
    # mariadb-backup does not read the [mysqldump] and [mysql] groups legacy credential files use.
    values: dict[str, str] = {}
    if credential_path is not None:
        parser = configparser.ConfigParser(allow_no_value=True, strict=False, interpolation=None)
        try:
            parser.read_string("\n".join(
                line for line in credential_path.read_text(encoding="utf-8").splitlines() if not line.startswith("!")
            ))
        except (OSError, configparser.Error) as error:
            raise SourceError(f"MySQL credential file {credential_path} could not be read ({failure_reason(error)}); "
                              "fix CREDENTIAL_PATH") from None
        for group in ("client", "mysql", "mysqldump"):
            if parser.has_section(group):
                for key in CONNECTION_KEYS:
                    value = parser.get(group, key, fallback=None)
                    if value is not None:
                        values[key] = value
    lines = ["[mariadb-backup]"] + [f"{key}={value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ChainPlace:
    """Where INCREMENTAL keeps its state: GENERAL STATE_FOLDER, and the host and section that name the files."""

    folder: Path
    hostname: str
    section: str
    config: str = ""     # the config file's path: two configs backing up one instance keep separate states

    def state_file(self, instance: MysqlInstance) -> Path:
        return state_path(self.folder, config=self.config, hostname=self.hostname, section=self.section,
                          instance_label=instance.spec)


@dataclass(frozen=True)
class PendingState:
    """What an instance's state becomes once this set is complete, if none of its streams failed."""

    path: Path
    parent: ChainState | None
    position: BinlogPosition                    # the flush before the streams
    stream_names: tuple[str, ...]
    dumps: tuple[MysqlDumpStream, ...] = ()     # a full's dumps (their snapshot positions are known once written)

    def start_of_next(self) -> tuple[BinlogPosition, list[str]]:
        """Where the next incremental starts, and the databases whose dump began after writes that followed the flush.

        One dump: its own snapshot position, exactly. Several: the flush, which the dumps that began later repeat.
        """
        late = [dump for dump in self.dumps if dump.snapshot_position is not None
                and (dump.snapshot_position.file, dump.snapshot_position.position) != (self.position.file, self.position.position)]
        if len(self.dumps) == 1 and late:
            return late[0].snapshot_position or self.position, []
        return self.position, [dump.database for dump in late]


class MysqlSource:
    """The MYSQL section as a Source: per instance, binlogs (if asked), one dump per database, physical (if asked);
    with INCREMENTAL, a run after a full copies only the binary logs since the last set."""

    def __init__(self, options: MysqlOptions, *, work_folder: Path, chain_place: ChainPlace | None = None) -> None:
        self.report = StreamReport()          # about the source as a whole (sources/base.Source)
        self.options = options
        self.work_folder = work_folder
        self.chain_place = chain_place
        register_option_file_passwords(options.credential_path, where=f"the password in CREDENTIAL_PATH {options.credential_path}")
        self.dump_program = self._dump_program()
        self.excluded_tables = parse_exclude_tables(options.exclude_tables)
        self.decisions: dict[str, Decision] = {}        # instance spec -> full or incremental (begin_set)
        self.pending: dict[str, PendingState] = {}      # instance spec -> its state once the set is complete

    @classmethod
    def from_section(cls, section, general) -> MysqlSource:
        from ncbackup import platform

        config = str(Path(section.position.file).resolve()) if section.position is not None else ""
        place = ChainPlace(general.state_folder or platform.default_state_folder(), general.hostname, section.name, config)
        return cls(parse_options(MysqlOptions, section), work_folder=general.work_folder, chain_place=place)

    @property
    def chain_settings(self) -> ChainSettings:
        return ChainSettings(self.options.is_incremental, self.options.full_every, self.options.max_chain)

    def begin_set(self, storages: Mapping[str, Storage], *, now: datetime) -> tuple[str, ...]:
        """Decide full or incremental per instance (sources/base.ChainedSource); return the sets the incrementals need."""
        if not self.options.is_incremental:
            return ()
        chain: set[str] = set()
        for instance in self.instances():
            decision = self._decide(MysqlClient(self.options, instance), instance, storages, now=now)
            self.decisions[instance.spec] = decision
            if decision.parent is not None:
                chain.update(decision.parent.chain)
        return tuple(sorted(chain, key=set_order))

    def _decide(self, client: MysqlClient, instance: MysqlInstance, storages: Mapping[str, Storage], *, now: datetime) -> Decision:
        if self.chain_place is None:
            return Decision(None, "no STATE_FOLDER is known to this run")
        try:
            info = server_info(client)
            logs = [row[0] for row in client.query("SHOW BINARY LOGS") if row] if info.is_binlog_on else []
        except BackupError as error:
            return Decision(None, f"instance {instance.spec} could not be asked for its binary logs ({failure_reason(error)})")
        path = self.chain_place.state_file(instance)
        state: ChainState | StateProblem
        try:
            state = read_state(path)
        except StateProblem as problem:
            state = problem
        lacking = [] if isinstance(state, StateProblem) else storages_lacking(state, storages)
        folder, _prefix = self._binlog_folder(info)
        return decide(self.chain_settings, state, instance=instance.spec, is_binlog_on=info.is_binlog_on, binlog_files=logs,
                      readable_folder=folder, storages_lacking_parent=lacking, now=now)

    def end_set(self, set_id: str, *, storages: Sequence[str], failed_streams: Sequence[str]) -> list[str]:
        """The set is complete: each instance whose streams all succeeded now ends at this set's position."""
        warnings: list[str] = []
        failed = set(failed_streams)
        for spec, pending in sorted(self.pending.items()):
            broken = sorted(failed.intersection(pending.stream_names))
            if broken:
                warnings.append(f"instance {spec}: stream {', '.join(broken)} failed, so the next run continues from "
                                f"set {pending.parent.set_id if pending.parent else 'nothing (a full)'}")
                continue
            chain = (pending.parent.chain if pending.parent is not None else ()) + (set_id,)
            start, late = pending.start_of_next()
            if late:
                warnings.append(
                    f"instance {spec}: writes reached the binary log after the flush and before the dump of "
                    f"{', '.join(map(shown_name, late))} began; replaying the next incremental onto this full would "
                    "apply them twice. Make fulls when writers are quiet (docs/databases.md, \"Where a full ends\")"
                )
            state = ChainState(set_id=set_id, chain=chain, position=start, storages=tuple(sorted(storages)))
            try:
                write_state(pending.path, state)
            except OSError as error:
                warnings.append(f"instance {spec}: the incremental state {pending.path} could not be written "
                                f"({error.strerror or error}); the next run makes a full. Check GENERAL STATE_FOLDER")
        self.pending.clear()
        return warnings

    def _dump_program(self) -> str:
        configured = self.options.dump_binary
        # The original's own example sets MYSQL_DUMP_BINARY to the client: use the dump tool next to it.
        if configured and Path(configured).name in ("mysql", "mariadb"):
            for sibling_name in ("mariadb-dump", "mysqldump"):
                sibling = Path(configured).with_name(sibling_name)
                if which(sibling):
                    return str(sibling)
        return find_program(configured, "mariadb-dump", "mysqldump")

    def instances(self) -> list[MysqlInstance]:
        return [MysqlInstance(spec, self.options.host) for spec in self.options.instances]

    def describe(self) -> str:
        labels = ", ".join(instance.spec for instance in self.instances())
        return f"MySQL/MariaDB databases of instance(s) {labels}"

    def selected_databases(self, client: MysqlClient) -> tuple[list[str], list[str]]:
        """Return (databases to dump, databases skipped) for one instance."""
        # SHOW DATABASES, in hex: a newline or tab in a name must not split it.
        rows = client.query("SELECT HEX(SCHEMA_NAME) FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
        names = [from_hex(row[0]) for row in rows if row and row[0]]
        chosen, skipped = [], []
        for name in names:
            if name in SYSTEM_SCHEMAS or name in self.options.exclude_databases:
                skipped.append(name)
            else:
                chosen.append(name)
        return chosen, skipped

    def streams(self) -> Iterator[MysqlStream | FailedStream]:
        for instance in self.instances():
            yield from self._instance_streams(instance)

    def _instance_streams(self, instance: MysqlInstance) -> Iterator[MysqlStream | FailedStream]:
        """Probe the instance, then yield its binlogs, one dump per database and its physical backup, as configured."""
        client = MysqlClient(self.options, instance)
        try:
            probe = self._probe(client)
        except BackupError as error:
            yield FailedStream(
                name=f"mysql-{instance.label}", kind="mysql", suffix=".sql",
                error=SourceError(
                    f"MySQL instance {instance.spec} could not be read ({failure_reason(error)}); check that the server is up, "
                    "MY_INSTANCES and the credentials in CREDENTIAL_PATH"
                ),
            )
            return
        messages = self.report   # about the instance as a whole: reported once, under no database's name
        base_metadata: dict[str, Any] = {
            "instance": instance.spec, "server_flavour": probe.info.flavour, "server_version": probe.info.version,
        }
        decision = self.decisions.pop(instance.spec, None)
        if decision is None:   # begin_set did not run (a barrier folder, a test): no storage to check
            decision = (self._decide(client, instance, {}, now=datetime.now().astimezone()) if self.options.is_incremental
                        else Decision(None))
        position = self._binlog_position(client, instance, probe.info, messages)
        if position is not None:
            base_metadata["binlog_position"] = position
        if decision.parent is not None:
            chain_stream = self._chain_stream(client, instance, probe.info, decision.parent, position, base_metadata)
            if isinstance(chain_stream, BinlogChainStream):
                note = f"instance {instance.spec}: incremental, {len(chain_stream.files)} binary log(s) since set {decision.parent.set_id}"
                log.info("%s", note)
                messages.notes.append(note)
                self._remember(instance, decision.parent, position, [chain_stream])
                yield chain_stream
                return
            decision = Decision(None, chain_stream)
        streams: list[MysqlStream] = []
        if self.options.is_incremental:
            base_metadata["level"] = "full"
            if decision.full_reason:
                base_metadata["full_reason"] = decision.full_reason
                log.info("instance %s: full dump because %s", instance.spec, decision.full_reason)
                messages.notes.append(f"instance {instance.spec}: full dump because {decision.full_reason}")
        streams += self._binlog_streams(client, instance, probe.info, base_metadata, messages)
        if self.options.is_logical:
            streams += self._dump_streams(instance, probe, base_metadata, messages)
        if self.options.is_physical:
            streams.append(self._physical_stream(instance, probe.info, base_metadata))
        if self.options.is_incremental:
            self._remember(instance, None, position, streams)
        yield from streams

    def _remember(self, instance: MysqlInstance, parent: ChainState | None, position: dict[str, Any] | None,
                  streams: Sequence[MysqlStream]) -> None:
        """Keep what the instance's state becomes when the set completes (nothing without a position to continue from)."""
        if self.chain_place is None or position is None:
            return
        try:
            end = BinlogPosition.from_metadata(position)
        except ValueError:
            return
        self.pending[instance.spec] = PendingState(
            path=self.chain_place.state_file(instance), parent=parent, position=end,
            stream_names=tuple(safe_stream_name(stream.name) for stream in streams),
            dumps=tuple(stream for stream in streams if isinstance(stream, MysqlDumpStream)),
        )

    def _chain_stream(
        self, client: MysqlClient, instance: MysqlInstance, info: ServerInfo, parent: ChainState,
        position: dict[str, Any] | None, base_metadata: dict[str, Any],
    ) -> BinlogChainStream | str:
        """The binary logs from parent's position to the flush just done; a string saying why not (then: a full)."""
        folder, _prefix = self._binlog_folder(info)
        if position is None or folder is None:
            return f"the binary logs of instance {instance.spec} could not be flushed or located"
        try:
            end = BinlogPosition.from_metadata(position)
            logs = [row[0] for row in client.query("SHOW BINARY LOGS") if row]
            files = logs_since(logs, parent.position, end)
        except (ValueError, BackupError) as error:
            return f"the binary logs since set {parent.set_id} cannot be copied ({failure_reason(error)})"
        metadata = dict(
            base_metadata, level="incremental", parent=parent.set_id, start_position=parent.position.as_metadata(),
            binlog_file_names=files,
        )
        return BinlogChainStream(name=f"mysql-{instance.label}-binlogs", folder=folder, files=files, metadata=metadata)

    def _binlog_folder(self, info: ServerInfo) -> tuple[Path | None, str]:
        """The folder of the binary logs and their name prefix (BINLOG_PATH, BINLOG_FILE_PREFIX, else the server's)."""
        folder = self.options.binlog_path
        prefix = self.options.binlog_file_prefix
        if info.binlog_basename:
            folder = folder or Path(info.binlog_basename).parent
            prefix = prefix or Path(info.binlog_basename).name
        return folder, prefix or "mysql-bin"

    def _probe(self, client: MysqlClient) -> InstanceProbe:
        """Ask the instance what its streams need; raise BackupError when it cannot be read."""
        check_credential_file(self.options)
        info = server_info(client)
        databases, _skipped = self.selected_databases(client)
        engines = table_engines(client)
        dump_version = program_version(self.dump_program) if self.options.is_logical else ""
        return InstanceProbe(info=info, databases=databases, engines=engines, dump_version=dump_version)

    def _binlog_position(
        self, client: MysqlClient, instance: MysqlInstance, info: ServerInfo, messages: StreamReport,
    ) -> dict[str, Any] | None:
        """FLUSH BINARY LOGS and the position the new log starts at; None (and a warning) when the server refuses."""
        if not info.is_binlog_on:
            return None
        try:
            return flush_and_locate_binlog(client, info)
        except CommandFailed as error:
            messages.warnings.append(f"FLUSH BINARY LOGS failed on instance {instance.spec} "
                                     f"({failure_reason(error)}); grant RELOAD to the backup user")
            return None

    def _binlog_streams(
        self, client: MysqlClient, instance: MysqlInstance, info: ServerInfo, base_metadata: dict[str, Any],
        messages: StreamReport,
    ) -> list[BinlogStream]:
        """The binlog stream, when BINLOG_DAYS asks for one and the instance has binary logs to copy."""
        if not self.options.binlog_days:
            return []
        if not info.is_binlog_on:
            messages.notes.append(f"binary logging is off on instance {instance.spec}: no binary logs copied")
            return []
        stream = self._binlog_stream(client, instance, info, base_metadata)
        if stream is None:
            messages.warnings.append(
                f"BINLOG_DAYS is set but the binary log folder of instance {instance.spec} is unknown; set BINLOG_PATH"
            )
            return []
        return [stream]

    def _dump_streams(
        self, instance: MysqlInstance, probe: InstanceProbe, base_metadata: dict[str, Any], messages: StreamReport,
    ) -> list[MysqlDumpStream]:
        """One dump per database; an EXCLUDE_TABLE that names nothing warns on its database's stream, else on the instance."""
        missing = self._missing_excluded_tables(probe.engines)
        for database in sorted(set(missing) - set(probe.databases)):
            messages.warnings += missing[database]
        return [
            self._dump_stream(
                instance, probe.info, database, probe.engines.get(database, {}), base_metadata, probe.dump_version,
                warnings=missing.get(database, []),
            )
            for database in probe.databases
        ]

    def _missing_excluded_tables(self, engines: dict[str, dict[str, str]]) -> dict[str, list[str]]:
        """Map database -> a warning for each EXCLUDE_TABLE entry of it that names no table."""
        warnings: dict[str, list[str]] = {}
        for database, tables in sorted(self.excluded_tables.items()):
            for table in sorted(tables):
                if table not in engines.get(database, {}):
                    warnings.setdefault(database, []).append(
                        f"EXCLUDE_TABLE names {database}.{table}, which does not exist; check the spelling"
                    )
        return warnings

    def _dump_stream(
        self, instance: MysqlInstance, info: ServerInfo, database: str, tables: dict[str, str],
        base_metadata: dict[str, Any], dump_version: str, *, warnings: list[str],
    ) -> MysqlDumpStream:
        excluded = self.excluded_tables.get(database, set())
        dumped_engines = {engine for table, engine in tables.items() if table not in excluded}
        is_transactional = dumped_engines <= TRANSACTIONAL_ENGINES
        # All-transactional: one consistent snapshot without blocking writers. Otherwise lock the
        # database's tables for the dump, so MyISAM and friends are consistent too (mysqldump's --opt default).
        locking = "single-transaction" if is_transactional else "lock-tables"
        argv = client_argv(self.dump_program, self.options.credential_path, instance)
        argv += [
            "--routines", "--triggers", "--events", "--hex-blob", "--default-character-set=utf8mb4",
            "--single-transaction" if is_transactional else "--lock-tables",
        ]
        argv += dump_flavour_args(dump_version, info)
        # INCREMENTAL: where this dump's snapshot stands in the binary logs, to tell whether the chain repeats writes.
        is_position_recorded = self.options.is_incremental and info.is_binlog_on and is_transactional
        if is_position_recorded:
            argv += position_args(dump_version)
        argv += [f"--ignore-table={database}.{table}" for table in sorted(excluded)]
        argv += ["--", database]
        metadata = dict(base_metadata, database=database, locking=locking, tool=dump_version)
        return MysqlDumpStream(
            name=f"mysql-{instance.label}-{database}", argv=argv,   # made safe by the pipeline
            database=database, instance=instance,
            metadata=metadata, warnings=list(warnings), notes=[f"database {shown_name(database)}: {locking}"],
            timeout_seconds=self.options.timeout_seconds, is_position_recorded=is_position_recorded,
        )

    def _binlog_stream(
        self, client: MysqlClient, instance: MysqlInstance, info: ServerInfo, base_metadata: dict[str, Any],
    ) -> BinlogStream | None:
        folder, prefix = self._binlog_folder(info)
        if folder is None:
            return None
        logs = [row[0] for row in client.query("SHOW BINARY LOGS") if row]
        active = logs[-1] if logs else None
        cutoff = time.time() - (self.options.binlog_days or 0) * SECONDS_PER_DAY
        files = []
        for name in logs:
            # The active log is still being written; it is the start of the next backup's copy.
            if name == active or not name.startswith(prefix):
                continue
            try:
                if (folder / name).stat().st_mtime >= cutoff:
                    files.append(name)
            except OSError:
                continue
        metadata = dict(base_metadata, binlog_files=len(files), binlog_days=self.options.binlog_days)
        return BinlogStream(name=f"mysql-{instance.label}-binlogs", folder=folder, files=files, metadata=metadata)

    def _physical_stream(self, instance: MysqlInstance, info: ServerInfo, base_metadata: dict[str, Any]) -> PhysicalStream:
        program = find_program(self.options.physical_binary, "mariadb-backup", "mariabackup", "xtrabackup")
        backup_args = ["--backup", "--stream=xbstream"]
        datadir = self.options.data_dir or (Path(info.datadir) if info.datadir else None)
        if datadir is not None:
            backup_args.append(f"--datadir={datadir}")
        return PhysicalStream(
            name=f"mysql-{instance.label}-physical", program=program, instance=instance, backup_args=backup_args,
            credential_path=self.options.credential_path, work_folder=self.work_folder,
            metadata=dict(base_metadata, format="xbstream"), timeout_seconds=self.options.timeout_seconds,
        )

    def check(self) -> list[CheckLine]:
        lines: list[CheckLine] = []
        programs = [find_program(self.options.client_binary, "mariadb", "mysql")]
        if self.options.is_logical:
            programs.insert(0, self.dump_program)
        if self.options.is_physical:
            programs.append(find_program(self.options.physical_binary, "mariadb-backup", "mariabackup", "xtrabackup"))
        for program in programs:
            try:
                lines.append(CheckLine(True, f"{program}: {program_version(program)}"))
            except BackupError as error:
                lines.append(CheckLine(False, str(error)))
        try:
            check_credential_file(self.options)
        except SourceError as error:
            return lines + [CheckLine(False, str(error))]
        for instance in self.instances():
            client = MysqlClient(self.options, instance)
            try:
                info = server_info(client)
                chosen, skipped = self.selected_databases(client)
            except BackupError as error:
                lines.append(CheckLine(False, f"MySQL instance {instance.spec}: cannot connect ({failure_reason(error)})"))
                continue
            binlog = "binary logging on" if info.is_binlog_on else "binary logging off"
            lines.append(CheckLine(True, f"MySQL instance {instance.spec}: connected to {info.flavour} {info.version}, {binlog}"))
            chosen_text, skipped_text = ", ".join(map(shown_name, chosen)), ", ".join(map(shown_name, skipped))
            lines.append(CheckLine(True, f"MySQL instance {instance.spec}: will dump {chosen_text or 'no database'}"))
            lines.append(CheckLine(True, f"MySQL instance {instance.spec}: excluded {skipped_text or 'nothing'}"))
            if self.options.is_incremental:
                lines.append(self._check_chain(client, instance, info))
        if self.options.is_incremental and self.chain_place is not None:
            lines.append(check_writable_folder(self.chain_place.folder, "STATE_FOLDER"))
        return lines

    def _check_chain(self, client: MysqlClient, instance: MysqlInstance, info: ServerInfo) -> CheckLine:
        """What INCREMENTAL will do on the next run (storages are not listed here: a set pruned since is not seen)."""
        where = f"MySQL instance {instance.spec}: INCREMENTAL"
        if not info.is_binlog_on:
            return CheckLine(False, f"{where} needs binary logging, which is off: every run would be a full; turn "
                                    "log_bin on, or set INCREMENTAL to false")
        decision = self._decide(client, instance, {}, now=datetime.now().astimezone())
        if decision.parent is None:
            return CheckLine(True, f"{where}: the next run is a full, because {decision.full_reason}")
        return CheckLine(True, f"{where}: the next run copies the binary logs since set {decision.parent.set_id} "
                               f"(from {decision.parent.position.file} at {decision.parent.position.position}; "
                               f"{len(decision.parent.chain) - 1} incremental(s) since full {decision.parent.chain[0]})")


def storages_lacking(state: ChainState, storages: Mapping[str, Storage]) -> list[str]:
    """The storage sections of this run that do not hold state's set complete (never got it, or pruned it since)."""
    lacking = []
    for name, storage in sorted(storages.items()):
        if name not in state.storages:
            lacking.append(name)
            continue
        key = signature_key(state.set_id)   # the commit marker: written last, removed first by prune
        try:
            if not any(info.key == key for info in storage.list(key)):
                lacking.append(name)
        except BackupError:
            lacking.append(name)
    return lacking


def restore_instance(options: MysqlOptions, request: RestoreRequest) -> MysqlInstance:
    """The configured instance to restore into: RESTORE_INSTANCE, else the MY_INSTANCES entry the stream came from, else the only one."""
    # The manifest may only pick among the configured instances: a port or socket it names is never used as such.
    if options.restore_instance:
        return MysqlInstance(options.restore_instance, options.host)
    recorded = str(request.metadata.get("instance") or "")
    if recorded in options.instances:
        return MysqlInstance(recorded, options.host)
    if len(options.instances) == 1:
        return MysqlInstance(options.instances[0], options.host)
    raise BackupError(
        f"stream {request.stream_name} came from instance {recorded!r}, which MY_INSTANCES ({' '.join(options.instances)}) does "
        "not list; set RESTORE_INSTANCE in the MYSQL section to the port or socket to restore into"
    )


def _restore_client(request: RestoreRequest) -> MysqlClient:
    options = MysqlOptions.model_validate(dict(request.options or {}))
    return MysqlClient(options, restore_instance(options, request))


def restore_mysql(reader: BinaryIO, request: RestoreRequest) -> list[str]:
    """Pipe a database dump into the server, into the original database or --database NEWNAME."""
    require_to_database(request)
    database = restore_database_name(request)
    client = _restore_client(request)
    # hex_equals compares with a hex literal: the name is data, never SQL.
    rows = client.query(f"SELECT COUNT(*) FROM information_schema.TABLES WHERE {hex_equals('TABLE_SCHEMA', database)}")  # noqa: S608
    if rows and rows[0][0] != "0" and not request.force:
        raise BackupError(
            f"database {database!r} already has tables on instance {client.instance.spec}; drop it, restore with "
            "--database NEWNAME, or pass --force to load the dump over it"
        )
    client.query(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}")
    argv = client.base_args() + ["--default-character-set=utf8mb4", "--binary-mode", f"--database={database}"]
    with stream_stdin(argv) as stdin:
        copy_stream(reader, stdin)
    return []


def restore_mysql_binlogs(reader: BinaryIO, request: RestoreRequest) -> list[str]:
    """Unpack the binary logs into --target; replaying them is a deliberate manual step, never automatic."""
    if request.target is None:
        raise BackupError(
            f"stream {request.stream_name} holds binary logs: restore it with --target FOLDER and replay what you "
            "need with mariadb-binlog (or mysqlbinlog) from the position in the manifest"
        )
    warnings = []
    if request.to_database:
        warnings.append(
            f"{request.stream_name}: binary logs were written to {request.target}, not replayed; replay them with "
            "mariadb-binlog from the position in the manifest if you need point-in-time recovery"
        )
    request.target.mkdir(parents=True, exist_ok=True)
    warnings += extract_tar(reader, request.target)
    return warnings


def chain_metadata(metadata: Mapping[str, Any], stream_name: str) -> tuple[BinlogPosition, list[str]]:
    """The start position and binary log names an incremental stream recorded; BackupError when they are unusable."""
    names = metadata.get("binlog_file_names")
    try:
        start = BinlogPosition.from_metadata(metadata.get("start_position"))
        if not isinstance(names, list) or not all(isinstance(name, str) and BINLOG_NAME.fullmatch(name) and ".." not in name
                                                  for name in names):
            raise ValueError("its binary log names are not plain file names")
    except ValueError as error:
        raise BackupError(f"stream {stream_name} does not say which binary logs it holds ({error}); restore it with "
                          "--target and replay it by hand") from None
    if names and names[0] != start.file:
        raise BackupError(f"stream {stream_name} starts at {start.file} but holds {names[0]} first; restore it with "
                          "--target and replay it by hand")
    return start, names


def restore_mysql_binlog_chain(reader: BinaryIO, request: RestoreRequest) -> list[str]:
    """Replay an incremental set's binary logs into the server (``--to-database``), from the parent set's position.

    Restore the chain in order, the full set's dumps first: each incremental continues where the one before ended.
    """
    if request.database:
        raise BackupError(
            f"stream {request.stream_name} holds binary logs, which replay into the databases they name; restore it "
            "without --database, or with --target to get the logs as files"
        )
    start, names = chain_metadata(request.metadata, request.stream_name)
    client = _restore_client(request)
    decoder = find_program(client.options.binlog_binary, "mariadb-binlog", "mysqlbinlog")
    folder = request.target if request.target is not None and request.target.is_dir() else None
    with tempfile.TemporaryDirectory(prefix=".ncbackup-binlogs-", dir=folder) as unpacked:
        warnings = extract_tar(reader, Path(unpacked))
        missing = [name for name in names if not (Path(unpacked) / name).is_file()]
        if missing:
            raise BackupError(f"stream {request.stream_name} lacks the binary log {missing[0]} its manifest names; "
                              "the set is damaged, use another set")
        if not names:
            return warnings + [f"{request.stream_name}: no binary log to replay"]
        # --start-position applies to the first log only: the parent set ended there; the others replay whole.
        decode_argv = [decoder, f"--start-position={start.position}", "--", *(str(Path(unpacked) / name) for name in names)]
        apply_argv = client.base_args() + ["--binary-mode"]
        try:
            with stream_stdout(decode_argv) as decoded, stream_stdin(apply_argv) as applied:
                copy_stream(decoded, applied)
        except CommandFailed as error:
            raise BackupError(
                f"replaying the binary logs of {request.stream_name} into instance {client.instance.spec} failed "
                f"({failure_reason(error)}); restore the chain in order (the full set's dumps first) into a server "
                "whose user may replay binary logs (BINLOG REPLAY or SUPER)"
            ) from error
    return warnings


DESCRIPTOR = SourceDescriptor(
    key="mysql_backup", factory=MysqlSource,
    restorers={"mysql": restore_mysql, "mysql-binlogs": restore_mysql_binlogs,
               "mysql-binlog-chain": restore_mysql_binlog_chain},
    execute_names=("mysql_backup",), dump_folder="mydump", secret_file_keys=("CREDENTIAL_PATH",),
)
