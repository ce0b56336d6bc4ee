"""MongoDB source (legacy ``load FROM mongo CLASS MongoBackup``): ``mongodump --archive`` streamed as ``mongo-<host>``.

No ``--gzip``: the pipeline compresses. The password (MONGO_PWD, MONGO_PWD_FILE) or a connection URI
(MONGO_URI_FILE, which may embed one) reaches mongodump only through a 0600 YAML file given with
``--config``, never argv. MongoDB's tools are not packaged in Debian: this module follows their
documented command line and is tested with a stand-in executable, not a real mongod.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ncbackup.config.secret_values import url_secrets
from ncbackup.config.types import LegacyBool, LegacyInt, parse_options
from ncbackup.engine.logs import add_secret
from ncbackup.errors import BackupError, CommandFailed, SourceError
from ncbackup.process import run, stream_stdin, stream_stdout
from ncbackup.sources._dbsupport import copy_stream, drop_blank_values, failure_reason, require_to_database, secret_file
from ncbackup.sources.base import CheckLine, RestoreRequest, SourceDescriptor, StreamReport


class MongoOptions(BaseModel):
    """The MONGODB section's PARAMETERS; PREFIX_FOLDER and DESTINATION (legacy folder layout) are ignored."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    user: str | None = Field(
        None, alias="MONGO_USER", description="user name (not a secret: it is on the command line)",
    )
    password: str | None = Field(
        None, alias="MONGO_PWD", repr=False,
        description="the password (legacy: in the config itself); it reaches `mongodump` only in the 0600 "
                    "`--config` YAML",
    )
    password_file: Path | None = Field(
        None, alias="MONGO_PWD_FILE", description="(new) a file whose first line is the password, used as `MONGO_PWD`",
    )
    uri_file: Path | None = Field(
        None, alias="MONGO_URI_FILE",
        description="(new) a file whose first line is a `mongodb://` URI (may include the password); replaces "
                    "host and port",
    )
    host: str = Field("127.0.0.1", alias="MONGO_HOST", description="the server, or `rs0/host1,host2` for a replica set")
    port: LegacyInt | None = Field(
        None, alias="MONGO_PORT", json_schema_extra={"shown_default": "mongodump's (27017)"}, description="the port",
    )
    auth_database: str = Field("admin", alias="MONGO_AUTH_DB", description="the database `MONGO_USER` is defined in")
    mongodump: str = Field("mongodump", alias="MONGODUMP_BIN", description="the dump program")
    mongorestore: str = Field("mongorestore", alias="MONGORESTORE_BIN", description="the restore program")
    is_oplog_on: LegacyBool = Field(
        False, alias="OPLOG",
        description="(new) `--oplog` (replica sets: a point-in-time consistent dump); restore then uses `--oplogReplay`",
    )
    timeout_seconds: float | None = Field(
        None, alias="DUMP_TIMEOUT_SECONDS", json_schema_extra={"shown_default": "no limit"},
        description="(new) seconds the dump may take; a longer one is stopped and its stream fails",
    )

    @model_validator(mode="before")
    @classmethod
    def _ignore_blank_values(cls, values: Any) -> Any:
        return drop_blank_values(values)


def _first_line(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError):
        raise SourceError(f"MongoDB {what} file {path} is missing or empty; fix the MONGODB section") from None


def secret_config_text(options: MongoOptions) -> str:
    """The YAML for ``--config``: the password and/or URI, as JSON strings (valid YAML scalars).

    Both are registered for masking: mongodump's errors may quote the URI, password included.
    """
    lines = []
    password = options.password
    if options.password_file is not None:
        password = _first_line(options.password_file, "password")
    if password:
        add_secret(password, where="MONGO_PWD" if options.password_file is None else f"the password in {options.password_file}")
        lines.append(f"password: {json.dumps(password)}")
    if options.uri_file is not None:
        uri = _first_line(options.uri_file, "URI")
        add_secret(uri, where=f"the URI in {options.uri_file}")
        for secret in url_secrets(uri):
            add_secret(secret, where=f"the password of the URI in {options.uri_file}")
        lines.append(f"uri: {json.dumps(uri)}")
    return "\n".join(lines) + "\n"


def connection_args(options: MongoOptions, config_path: Path) -> list[str]:
    """Arguments naming the server and user; the secrets are in config_path."""
    args = [f"--config={config_path}"]
    if options.uri_file is None:
        args.append(f"--host={options.host}")
        if options.port is not None:
            args.append(f"--port={options.port}")
    if options.user:
        args += [f"--username={options.user}", f"--authenticationDatabase={options.auth_database}"]
    return args


# MongoDB refuses these in a database name (on Unix; Windows refuses more): a name holding one cannot exist.
FORBIDDEN_IN_DATABASE_NAME = frozenset('/\\. "$\0')


def namespace_pattern(database: str) -> str:
    """The --nsInclude pattern for every collection of database; its literal ``*`` and ``\\`` escaped."""
    if not database or FORBIDDEN_IN_DATABASE_NAME & set(database):
        raise BackupError(
            f"{database!r} is not a MongoDB database name (none holds / \\ . \" $, a space or NUL); fix --database"
        )
    return database.replace("\\", "\\\\").replace("*", "\\*") + ".*"


def stream_label(host: str) -> str:
    """The host as it appears in the stream name (``rs0/a:27017,b`` -> ``rs0-a-27017-b``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", host).strip("-") or "mongo"


@dataclass
class MongoDumpStream:
    """``mongodump --archive`` to stdout."""

    name: str
    options: MongoOptions
    work_folder: Path
    kind: str = "mongo"
    suffix: str = ".archive"

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        report.metadata.update({"oplog": self.options.is_oplog_on, "format": "archive"})
        folder = self.work_folder if self.work_folder.is_dir() else None
        try:
            with secret_file(secret_config_text(self.options), folder=folder, suffix=".yaml") as config_path:
                argv = [self.options.mongodump, *connection_args(self.options, config_path), "--archive"]
                if self.options.is_oplog_on:
                    argv.append("--oplog")
                with stream_stdout(argv, timeout_seconds=self.options.timeout_seconds) as stdout:
                    copy_stream(stdout, sink)
        except CommandFailed as error:
            raise SourceError(
                f"mongodump of {self.options.host} failed ({failure_reason(error)}); check that the server is up and the credentials"
            ) from error
        except SourceError:
            raise
        except BackupError as error:
            raise SourceError(f"mongodump of {self.options.host} could not start: {failure_reason(error)}") from error


class MongoSource:
    """The MONGODB section as a Source: one archive stream for the server."""

    def __init__(self, options: MongoOptions, *, work_folder: Path) -> None:
        self.report = StreamReport()          # about the source as a whole (sources/base.Source)
        self.options = options
        self.work_folder = work_folder

    @classmethod
    def from_section(cls, section, general) -> MongoSource:
        return cls(parse_options(MongoOptions, section), work_folder=general.work_folder)

    def describe(self) -> str:
        return f"MongoDB on {self.options.host}"

    def streams(self) -> Iterator[MongoDumpStream]:
        yield MongoDumpStream(name=f"mongo-{stream_label(self.options.host)}", options=self.options, work_folder=self.work_folder)

    def check(self) -> list[CheckLine]:
        try:
            version = run([self.options.mongodump, "--version"], timeout_seconds=30).text.strip().splitlines()[0]
            lines = [CheckLine(True, f"{self.options.mongodump}: {version}")]
        except BackupError as error:
            return [CheckLine(False, str(error))]
        try:
            secret_config_text(self.options)
        except SourceError as error:
            return lines + [CheckLine(False, str(error))]
        # mongodump has no connect-only mode: reaching the server is proven by the first run.
        lines.append(CheckLine(True, f"MongoDB on {self.options.host}: dumps every database (connection not tested)"))
        return lines


def restore_mongo(reader: BinaryIO, request: RestoreRequest) -> list[str]:
    """Pipe the archive into ``mongorestore --archive``; --database restores only that database; --force drops first."""
    require_to_database(request)
    # Server and credentials come from the config only; the manifest's metadata chooses nothing but --oplogReplay.
    options = MongoOptions.model_validate(dict(request.options or {}))
    pattern = namespace_pattern(request.database) if request.database else None
    with secret_file(secret_config_text(options), suffix=".yaml") as config_path:
        argv = [options.mongorestore, *connection_args(options, config_path), "--archive"]
        if request.metadata.get("oplog") is True:
            argv.append("--oplogReplay")
        if pattern is not None:
            argv.append(f"--nsInclude={pattern}")
        if request.force:
            argv.append("--drop")
        with stream_stdin(argv) as stdin:
            copy_stream(reader, stdin)
    return []


DESCRIPTOR = SourceDescriptor(
    key="mongo", factory=MongoSource, restorers={"mongo": restore_mongo},
    load_classes=(("mongo", "MongoBackup"),), dump_folder="mongodump", secret_file_keys=("MONGO_PWD_FILE", "MONGO_URI_FILE"),
)
