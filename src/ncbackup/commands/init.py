"""``ncbackup init [--non-interactive] [--output FILE] [flags]``: write a commented, working config for this host.

What to back up (folders that exist here, database servers that answer), where to (a local folder,
an S3 bucket, an SFTP server) and the keys come from questions on stdin, or from flags and safe
defaults with ``--non-interactive``. The config is checked by the project's own loader and planner
before anything is written; the keys are created only when they do not exist yet (never replaced).
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ncbackup import hostinfo
from ncbackup.commands.common import guarded
from ncbackup.errors import BackupError, ConfigError
from ncbackup.exitcodes import EXIT_OK
from ncbackup.hostinfo import FoundServer
from ncbackup.stages.registry import DEFAULT_SIGNING_KEY_NAME

DEFAULT_OUTPUT = Path("/etc/ncbackup/conf.json")   # what examples/systemd/ncbackup.service runs
DEFAULT_WORK_FOLDER = Path("/var/tmp/ncbackup")  # noqa: S108 - the scratch folder ncbackup owns, as the FHS says
DEFAULT_LOG_FILE = Path("/var/log/ncbackup.log")    # a file directly in /var/log: no folder to create
DEFAULT_LOCAL_FOLDER = Path("/var/backups/ncbackup")
IDENTITY_FILE_NAME = "key.txt"
RECIPIENTS_FILE_NAME = "recipients.txt"
FILE_SIZE_MB = 1000
STORAGE_KINDS = ("local", "s3", "sftp")
# S3 bucket naming rules (AWS, MinIO, OSS, COS): 3-63 lower-case letters, digits, dots and hyphens.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_HOST_NAME = re.compile(r"[A-Za-z0-9_.:\[\]-]+")
_NONE_WORDS = ("none", "-")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "init",
        help="write a commented, working config for this host (asks a few questions, or --non-interactive)",
        description=(
            "Write a commented config for this host: the folders to back up (/etc and what exists of /home, "
            "/root, /var/www, /srv, /opt), the MariaDB/MySQL and PostgreSQL servers that answer here, one "
            "storage (a local folder, an S3 bucket or an SFTP server) and the keys. Asks on stdin; with "
            "--non-interactive, flags and safe defaults answer instead. Safest keys: make the age identity on "
            "your own machine (ncbackup keygen) and give this server only its recipient (--recipient age1...). "
            "Existing keys are used, never replaced; an existing config is replaced only with --force. "
            "Exit status: 0 written, 3 unusable answers or arguments (nothing written)."
        ),
    )
    parser.add_argument("--non-interactive", action="store_true", help="ask nothing: flags, detection and defaults decide")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, metavar="FILE",
                        help=f"where to write the config (default {DEFAULT_OUTPUT})")
    parser.add_argument("--force", action="store_true", help="replace an existing config file (the old one is kept as FILE.bak)")
    parser.add_argument("--hostname", help="the name backups are stored under (default: this machine's name)")
    what = parser.add_argument_group("what to back up")
    what.add_argument("--include", action="extend", nargs="+", default=None, type=Path, metavar="PATH",
                      help="folders to back up (default: /etc and what exists of /home /root /var/www /srv /opt)")
    what.add_argument("--exclude", action="extend", nargs="+", default=None, metavar="PATTERN",
                      help=f"paths or patterns to leave out (default: {' '.join(hostinfo.DEFAULT_EXCLUDES)})")
    what.add_argument("--no-databases", action="store_true", help="look for no database server")
    what.add_argument("--mysql", action="append", default=None, metavar="PORT_OR_SOCKET",
                      help="a MariaDB/MySQL server to back up, by port or socket path (default: the usual sockets and port 3306)")
    what.add_argument("--mysql-credentials", type=Path, metavar="FILE",
                      help="MySQL option file with [mysqldump] and [mysql] user/password (default: none, e.g. root over the socket)")
    what.add_argument("--postgres-host", metavar="HOST_OR_SOCKET_FOLDER",
                      help="a PostgreSQL server: a host name, or the folder holding its socket "
                           "(default: the usual socket folders and 127.0.0.1)")
    what.add_argument("--postgres-port", type=int, metavar="PORT", help="its port (default: every socket in the folder, else 5432)")
    what.add_argument("--postgres-user", default="postgres", metavar="USER", help="the PostgreSQL user (default postgres)")
    what.add_argument("--postgres-password-file", type=Path, metavar="FILE", help="a file whose first line is that user's password")
    where = parser.add_argument_group("where backups go")
    where.add_argument("--storage", choices=STORAGE_KINDS, metavar="KIND",
                       help="local (default), s3 or sftp; implied by --bucket or --sftp-host")
    where.add_argument("--local-folder", type=Path, metavar="DIR", help=f"local storage folder (default {DEFAULT_LOCAL_FOLDER})")
    where.add_argument("--bucket", metavar="NAME", help="S3 bucket")
    where.add_argument("--endpoint-url", metavar="URL", help="S3-compatible endpoint (MinIO, OSS, COS...; default AWS)")
    where.add_argument("--region", metavar="NAME", help="S3 region")
    where.add_argument("--sftp-host", metavar="HOST", help="SFTP server")
    where.add_argument("--sftp-user", metavar="USER", help="SFTP user (default: the local user)")
    where.add_argument("--sftp-port", type=int, default=22, metavar="PORT", help="SFTP port (default 22)")
    where.add_argument("--sftp-folder", default=".", metavar="DIR", help="folder on the SFTP server (default: the login folder)")
    where.add_argument("--ssh-key", type=Path, metavar="FILE", help="SSH private key for SFTP (default: ~/.ssh keys and the agent)")
    keys = parser.add_argument_group("keys")
    keys.add_argument("--recipient", action="append", default=None, metavar="AGE1...",
                      help="age recipient (public key) made on your own machine; this server then cannot read its backups")
    keys.add_argument("--key-file", type=Path, metavar="PATH",
                      help=f"KEY_FILE: used as it is when it exists (an identity or recipients file), else created "
                           f"(default: {RECIPIENTS_FILE_NAME} with --recipient, else {IDENTITY_FILE_NAME}, beside the config)")
    keys.add_argument("--signing-key", type=Path, metavar="PATH",
                      help=f"the key that signs every set, used when it exists, else created with PATH.pub "
                           f"(default: {DEFAULT_SIGNING_KEY_NAME} beside KEY_FILE)")
    folders = parser.add_argument_group("folders")
    folders.add_argument("--work-folder", type=Path, metavar="DIR", help=f"WORK_FOLDER (default {DEFAULT_WORK_FOLDER})")
    folders.add_argument("--log-file", type=Path, metavar="FILE", help=f"the log file (default {DEFAULT_LOG_FILE})")
    parser.set_defaults(handler=main)


# --------------------------------------------------------------------------------------------------
# The answers


@dataclass
class StorageChoice:
    kind: str = "local"
    local_folder: Path = DEFAULT_LOCAL_FOLDER
    bucket: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    sftp_host: str | None = None
    sftp_user: str | None = None
    sftp_port: int = 22
    sftp_folder: str = "."
    ssh_key: Path | None = None

    def describe(self) -> str:
        if self.kind == "s3":
            return f"S3 bucket {self.bucket}" + (f" at {self.endpoint_url}" if self.endpoint_url else " (AWS)")
        if self.kind == "sftp":
            user = f"{self.sftp_user}@" if self.sftp_user else ""
            return f"SFTP {user}{self.sftp_host}:{self.sftp_port}, folder {self.sftp_folder}"
        return f"the local folder {self.local_folder}"


@dataclass
class Choices:
    """Everything the config says, validated; ``render_config`` turns it into the file."""

    hostname: str
    includes: list[Path]
    excludes: list[str]
    storage: StorageChoice
    key_file: Path
    signing_key: Path
    recipients: list[str] = field(default_factory=list)
    databases: list[FoundServer] = field(default_factory=list)
    work_folder: Path = DEFAULT_WORK_FOLDER
    log_file: Path = DEFAULT_LOG_FILE


# --- validation: each raises ConfigError with one sentence (what, where, how to fix) ---------------


def check_hostname(text: str) -> str:
    name = text.strip()
    if not name or re.search(r"[/\\\s\x00-\x1f]", name) or name in (".", ".."):
        raise ConfigError(f"host name {text!r} cannot be a storage folder name; use a plain name such as web1")
    return name


def check_include(text: str | Path) -> Path:
    path = Path(str(text).strip())
    if not path.is_absolute():
        raise ConfigError(f"folder to back up {str(path)!r} is not an absolute path; write it from the root, e.g. /{path}")
    if path == Path(path.anchor):
        raise ConfigError(f"{path} (a whole file system) cannot be backed up as a file set; list the folders instead")
    if not path.exists():
        raise ConfigError(f"folder to back up {path} does not exist; give a path that exists here")
    return path


def check_folder(text: str | Path, what: str) -> Path:
    path = Path(str(text).strip())
    if not str(text).strip() or not path.is_absolute():
        raise ConfigError(f"{what} {str(text)!r} is not an absolute path; write it from the root, e.g. /var/backups/ncbackup")
    if path == Path(path.anchor):
        raise ConfigError(f"{what} cannot be the root of a file system; give a folder such as /var/backups/ncbackup")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} exists and is not a folder; give a folder")
    return path


def _static_head(pattern: str) -> Path:
    """The part of an exclude pattern before its first glob character: /home for /home/*/.cache."""
    head = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    return Path(head if head.endswith("/") or head == pattern else head.rsplit("/", 1)[0] or "/")


def check_excludes(patterns: list[str], includes: list[Path], *, is_default: bool) -> list[str]:
    """The exclude patterns that apply to the includes; an absolute one outside every include is refused
    (check would fail on it), or silently dropped when it is one of the defaults."""
    kept: list[str] = []
    for pattern in patterns:
        if not pattern.startswith("/"):
            kept.append(pattern)   # a name or relative pattern applies at any depth
            continue
        head = _static_head(pattern)
        if any(_is_inside(head, include) or (_is_inside(include, head) and head != Path(pattern))
               for include in includes):
            kept.append(pattern)
        elif not is_default:
            raise ConfigError(f"exclude {pattern} is not inside any folder to back up, so it would exclude nothing; "
                              "give a path inside one of them")
    return kept


def check_bucket(text: str) -> str:
    name = text.strip()
    if not _BUCKET_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(
            f"S3 bucket name {text!r} is not valid: use 3 to 63 lower-case letters, digits, dots and hyphens, "
            "no spaces (e.g. acme-backups)"
        )
    return name


def check_endpoint(text: str) -> str:
    url = text.strip()
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise ConfigError(f"S3 endpoint {text!r} is not a URL; write it as https://host[:port], e.g. https://minio.example.com:9000")
    return url


def check_host(text: str, what: str) -> str:
    host = text.strip()
    if not host or host.startswith("-") or not _HOST_NAME.fullmatch(host):
        raise ConfigError(f"{what} {text!r} is not a host name or address; write it without spaces, e.g. backup.example.com")
    return host


def check_port(value: str | int, what: str) -> int:
    try:
        port = int(str(value).strip())
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ConfigError(f"{what} {str(value)!r} is not a port number; give a number from 1 to 65535")
    return port


def check_recipient(text: str) -> str:
    from ncbackup.stages.keys import SSH_RECIPIENT_PREFIXES, parse_x25519_recipient

    recipient = text.strip()
    if recipient.startswith("AGE-SECRET-KEY-"):
        raise ConfigError("that is an age identity (a secret key), not a recipient; give the age1... line that "
                          "`ncbackup keygen` or `age-keygen -y` prints, and keep the identity off this server")
    if parse_x25519_recipient(recipient) is None and not recipient.startswith(SSH_RECIPIENT_PREFIXES):
        raise ConfigError(f"recipient {recipient[:80]!r} is not an age recipient (age1...) or an ssh public key; "
                          "copy the whole line that `ncbackup keygen` printed")
    return recipient


def split_recipients(answer: str) -> list[str]:
    """Recipients from one answer: age1... words, and ``ssh-ed25519 KEY`` pairs (a comment after them is dropped)."""
    words = answer.split()
    recipients: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word in ("ssh-ed25519", "ssh-rsa") and index + 1 < len(words):
            recipients.append(f"{word} {words[index + 1]}")
            index += 2
            if index < len(words) and not words[index].startswith(("age1", "ssh-")):
                index += 1   # the key's comment (user@host)
            continue
        recipients.append(word)
        index += 1
    return [check_recipient(recipient) for recipient in recipients]


def check_mysql_spec(text: str) -> str:
    spec = text.strip()
    if spec.isdigit():
        check_port(spec, "MariaDB/MySQL port")
        return spec
    if not Path(spec).is_absolute():
        raise ConfigError(f"MariaDB/MySQL server {text!r} is neither a port nor an absolute socket path; "
                          "give e.g. 3306 or /run/mysqld/mysqld.sock")
    return spec


def check_existing_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist; create it first or fix the path")
    return path.absolute()   # the config is read from anywhere: cron, systemd


# --- questions ----------------------------------------------------------------------------------


class Prompter:
    """Asks on stdout, reads answers line by line from stdin; an empty answer takes the default."""

    def __init__(self, *, reader=None, writer=None) -> None:
        self.reader = reader or sys.stdin
        self.writer = writer or sys.stdout

    def ask(self, question: str, default: str = "") -> str:
        shown = f" [{default}]" if default else ""
        self.writer.write(f"{question}{shown}: ")
        self.writer.flush()
        line = self.reader.readline()
        if not line:
            self.writer.write("\n")
            raise ConfigError(f"the answers ended before the question {question!r}; answer every question, "
                              "or run ncbackup init --non-interactive with flags")
        if not self.reader.isatty():
            self.writer.write(line if line.endswith("\n") else line + "\n")   # answers piped in: show them
        return line.strip() or default

    def ask_valid(self, question: str, default: str, check: Callable[[str], Any]) -> Any:
        """Ask until check accepts the answer (it raises ConfigError with the reason); return what it returns."""
        while True:
            answer = self.ask(question, default)
            try:
                return check(answer)
            except ConfigError as error:
                self.writer.write(f"  {error}\n")

    def confirm(self, question: str, *, default: bool = True) -> bool:
        hint = "Y/n" if default else "y/N"

        def check(answer: str) -> bool:
            word = answer.strip().lower()
            if not word:
                return default
            if word in ("y", "yes"):
                return True
            if word in ("n", "no"):
                return False
            raise ConfigError("answer y or n")

        return self.ask_valid(f"{question} ({hint})", "", check)


def _words(answer: str) -> list[str]:
    return [] if answer.strip().lower() in _NONE_WORDS else answer.split()


# --- gathering the answers ----------------------------------------------------------------------


def find_databases(args) -> list[FoundServer]:
    """The database servers to consider: those the flags name, else those found in the usual places; each probed."""
    if args.no_databases:
        return []
    found: list[FoundServer] = []
    credentials = check_existing_file(args.mysql_credentials, "MySQL credentials file") if args.mysql_credentials else None
    specs = [check_mysql_spec(spec) for spec in args.mysql] if args.mysql else hostinfo.mysql_candidates()
    found += [hostinfo.probe_mysql(spec, credential_path=credentials) for spec in specs]
    password_file = (check_existing_file(args.postgres_password_file, "PostgreSQL password file")
                     if args.postgres_password_file else None)
    if args.postgres_host:
        host = args.postgres_host.strip()
        if host.startswith("/") and args.postgres_port is None:
            ports = hostinfo.postgres_sockets(Path(host)) or [hostinfo.POSTGRES_PORT]
        else:
            ports = [check_port(args.postgres_port or hostinfo.POSTGRES_PORT, "PostgreSQL port")]
        servers = [(host, port) for port in ports]
    elif args.postgres_port is not None:
        servers = [(hostinfo.LOOPBACK, check_port(args.postgres_port, "PostgreSQL port"))]
    else:
        servers = hostinfo.postgres_candidates()
    found += [hostinfo.probe_postgres(host, port, user=args.postgres_user, password_file=password_file)
              for host, port in servers]
    return found


def storage_from_flags(args) -> StorageChoice:
    kind = args.storage or ("s3" if args.bucket else "sftp" if args.sftp_host else "local")
    if (args.bucket and kind != "s3") or (args.sftp_host and kind != "sftp"):
        raise ConfigError(f"--storage {kind} does not go with --bucket or --sftp-host; give the options of one storage")
    choice = StorageChoice(kind=kind)
    if kind == "local":
        choice.local_folder = check_folder(args.local_folder or DEFAULT_LOCAL_FOLDER, "local storage folder")
    elif kind == "s3":
        if not args.bucket:
            raise ConfigError("--storage s3 needs --bucket NAME (and --endpoint-url for a store other than AWS)")
        choice.bucket = check_bucket(args.bucket)
        choice.endpoint_url = check_endpoint(args.endpoint_url) if args.endpoint_url else None
        choice.region = args.region.strip() if args.region else None
    else:
        if not args.sftp_host:
            raise ConfigError("--storage sftp needs --sftp-host HOST")
        choice.sftp_host = check_host(args.sftp_host, "SFTP host")
        choice.sftp_user = args.sftp_user
        choice.sftp_port = check_port(args.sftp_port, "SFTP port")
        choice.sftp_folder = args.sftp_folder or "."
        choice.ssh_key = check_existing_file(args.ssh_key, "SSH key") if args.ssh_key else None
    return choice


def ask_storage(prompter: Prompter, defaults: StorageChoice) -> StorageChoice:
    def check_kind(answer: str) -> str:
        kind = answer.strip().lower()
        if kind not in STORAGE_KINDS:
            raise ConfigError(f"answer one of {', '.join(STORAGE_KINDS)}")
        return kind

    choice = StorageChoice(kind=prompter.ask_valid("Where should backups go: local, s3 or sftp", defaults.kind, check_kind))
    if choice.kind == "local":
        choice.local_folder = prompter.ask_valid("Folder for the backups (best on another disk)", str(defaults.local_folder),
                                                 lambda answer: check_folder(answer, "local storage folder"))
    elif choice.kind == "s3":
        choice.bucket = prompter.ask_valid("S3 bucket", defaults.bucket or "", check_bucket)
        choice.endpoint_url = prompter.ask_valid("S3 endpoint URL (empty for AWS)", defaults.endpoint_url or "",
                                                 lambda answer: check_endpoint(answer) if answer else None)
        choice.region = prompter.ask("S3 region (empty for the default)", defaults.region or "") or None
    else:
        choice.sftp_host = prompter.ask_valid("SFTP host", defaults.sftp_host or "", lambda answer: check_host(answer, "SFTP host"))
        choice.sftp_user = prompter.ask("SFTP user (empty for the local user)", defaults.sftp_user or "") or None
        choice.sftp_port = prompter.ask_valid("SFTP port", str(defaults.sftp_port), lambda answer: check_port(answer, "SFTP port"))
        choice.sftp_folder = prompter.ask("Folder on the SFTP server", defaults.sftp_folder or ".")
        choice.ssh_key = prompter.ask_valid(
            "SSH private key file (empty for ~/.ssh and the agent)", str(defaults.ssh_key or ""),
            lambda answer: check_existing_file(Path(answer), "SSH key") if answer else None)
    return choice


def gather(args, prompter: Prompter | None) -> Choices:
    """The answers: flags, detection and defaults, then (interactive) a question for each with those as defaults."""
    output = Path(args.output).absolute()
    includes = [check_include(path) for path in args.include] if args.include else hostinfo.existing_paths()

    def excludes_for(folders: list[Path]) -> list[str]:
        if args.exclude is not None:
            return check_excludes(list(args.exclude), folders, is_default=False)
        return check_excludes(list(hostinfo.DEFAULT_EXCLUDES), folders, is_default=True)

    choices = Choices(
        hostname=check_hostname(args.hostname if args.hostname is not None else socket.gethostname()),
        includes=includes,
        excludes=excludes_for(includes),
        storage=storage_from_flags(args),
        key_file=Path(),      # set below, once the recipients are known
        signing_key=Path(),
        recipients=[check_recipient(text) for text in args.recipient or []],
        databases=find_databases(args),
        work_folder=check_folder(args.work_folder or DEFAULT_WORK_FOLDER, "WORK_FOLDER"),
        log_file=Path(args.log_file or DEFAULT_LOG_FILE).absolute(),
    )
    if prompter is not None:
        prompter.writer.write(f"ncbackup init: a config for this host, written to {output}. "
                              "Press Enter to take the answer in [brackets].\n")
        is_key_file_there = args.key_file is not None and Path(args.key_file).exists()
        ask_questions(prompter, choices, excludes_for=excludes_for, ask_recipients=not is_key_file_there)
    if not choices.includes and not choices.databases:
        raise ConfigError("there is nothing to back up: no folder given or found and no database server; give --include PATH")
    default_key_name = RECIPIENTS_FILE_NAME if choices.recipients else IDENTITY_FILE_NAME
    choices.key_file = Path(args.key_file).absolute() if args.key_file else output.parent / default_key_name
    if choices.recipients and choices.key_file.exists():
        raise ConfigError(f"KEY_FILE {choices.key_file} already exists, so --recipient would not be used; leave "
                          "--recipient out to use that file, or give another --key-file")
    choices.signing_key = (Path(args.signing_key).absolute() if args.signing_key
                           else choices.key_file.parent / DEFAULT_SIGNING_KEY_NAME)
    return choices


def ask_questions(prompter: Prompter, choices: Choices, *, excludes_for: Callable[[list[Path]], list[str]],
                  ask_recipients: bool) -> None:
    """Ask each question with the current choice as its default; store the answers in choices."""
    choices.hostname = prompter.ask_valid("Host name (backups are stored under it)", choices.hostname, check_hostname)
    includes = prompter.ask_valid("Folders to back up, separated by spaces", " ".join(map(str, choices.includes)),
                                  lambda answer: [check_include(word) for word in _words(answer)])
    choices.includes = includes
    choices.excludes = prompter.ask_valid(
        "Leave out (paths or patterns, separated by spaces; none for nothing)", " ".join(excludes_for(includes)) or "none",
        lambda answer: check_excludes(_words(answer), includes, is_default=False))
    chosen: list[FoundServer] = []
    for server in choices.databases:
        if not server.is_reachable:
            prompter.writer.write(f"  found {server.label}, but cannot connect ({server.detail}); "
                                  "it is written disabled, to fix later\n")
            chosen.append(server)
        elif prompter.confirm(f"Back up {server.label} ({server.detail})"):
            chosen.append(server)
    choices.databases = chosen
    choices.storage = ask_storage(prompter, choices.storage)
    if ask_recipients:
        choices.recipients = prompter.ask_valid(
            "Age recipient(s) made on your own machine (age1..., from `ncbackup keygen` there; "
            "empty: create a key on this server)", " ".join(choices.recipients), split_recipients)


# --------------------------------------------------------------------------------------------------
# The config


def _is_inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _section_names(kind: str, servers: list[FoundServer]) -> list[str]:
    base = "MYSQL" if kind == "mysql" else "POSTGRES"
    return [base if index == 0 else f"{base}_{index + 1}" for index in range(len(servers))]


def _database_section(server: FoundServer) -> dict[str, Any]:
    if server.kind == "mysql":
        about = (f"{server.label}: {server.detail}. One stream per database (mysqldump with routines, triggers, "
                 "events). The credentials come only from CREDENTIAL_PATH (an option file), never the command line.")
        section: dict[str, Any] = {"__ABOUT": about, "ACTION": "execute", "NAME": "mysql_backup"}
    else:
        about = (f"{server.label}: {server.detail}. One pg_dump per database plus the roles. A password comes only "
                 "from PASSWORD_FILE or PGPASSFILE, never the command line.")
        section = {"__ABOUT": about, "ACTION": "load", "FROM": "postgres", "CLASS": "PostgresBackup"}
    section["PARAMETERS"] = dict(server.parameters)
    return section


def render_config(choices: Choices, *, created: str) -> dict[str, Any]:
    """The config as an ordered dict; keys starting with __ are comments (the loader drops them)."""
    storage = choices.storage
    excludes = list(choices.excludes)
    # The backups and the scratch space must not back themselves up.
    for folder in ([storage.local_folder] if storage.kind == "local" else []) + [choices.work_folder]:
        if any(_is_inside(folder, include) for include in choices.includes) and str(folder) not in excludes:
            excludes.append(str(folder))
    config: dict[str, Any] = {
        "__README": (
            f"Written by `ncbackup init` on {created} for {choices.hostname}. Keys starting with __ are comments. "
            "Sections run in this order: the sources (FILESET and the databases) stream through COMPRESSION and "
            "ENCRYPTION into STORAGE in one pass. Check it with `ncbackup check -c THIS_FILE`, run it with "
            "`ncbackup run -c THIS_FILE` (nightly: examples/systemd/ncbackup.timer or cron). Reference: docs/config.md."
        ),
        "GENERAL": {
            "__HOSTNAME": "every storage keeps this server's backups under this name",
            "HOSTNAME": choices.hostname,
            "__WORK_FOLDER": "scratch space; the built-in sections stream and leave it empty",
            "WORK_FOLDER": str(choices.work_folder),
            "__LOG_FOLDER": "the log file (INFO and above, rotated at 10 MiB, mode 0600); a folder ending in / holds ncbackup.log",
            "LOG_FOLDER": str(choices.log_file),
            "__DISK_SPACE_THRESHOLD": "warn when WORK_FOLDER's disk has less than this percent free; stop below a tenth of it",
            "DISK_SPACE_THRESHOLD": "20",
        },
    }
    if choices.includes:
        config["FILESET"] = {
            "ACTION": "execute",
            "NAME": "filesbackup",
            "PARAMETERS": {
                "__FILESET_INCLUDE": "folders to back up (absolute paths); a path that does not exist fails the check",
                "FILESET_INCLUDE": [str(path) for path in choices.includes],
                "__FILESET_EXCLUDE": "paths inside them to leave out: /a/path, /home/*/.cache, or a name like *.tmp at any depth",
                "FILESET_EXCLUDE": excludes,
            },
        }
    for kind in ("mysql", "postgres"):
        servers = [server for server in choices.databases if server.kind == kind]
        for name, server in zip(_section_names(kind, servers), servers, strict=True):
            section = _database_section(server)
            if server.is_reachable:
                config[name] = section
            else:
                # A "__" key is a comment, the whole section with it: the config still passes check.
                section = {"__WHY": (f"disabled: ncbackup init could not connect ({server.detail}). Fix the access "
                                     f"(e.g. CREDENTIAL_PATH, USER and PASSWORD_FILE), then rename this section to {name}"),
                           **section}
                config[f"__DISABLED_{name}"] = section
    config["COMPRESSION"] = {
        "ACTION": "execute",
        "NAME": "compression",
        "PARAMETERS": {
            "__ALGORITHM": "zstd (default), gzip or none; zstd LEVEL -7 (fastest) to 22 (smallest)",
            "ALGORITHM": "zstd",
            "LEVEL": "3",
        },
    }
    if choices.recipients:
        key_note = ("a recipients file: this server encrypts to it but cannot decrypt. The identity stays on your "
                    "own machine; restore with `ncbackup restore --key-file IDENTITY`")
    else:
        key_note = ("the age identity that encrypts AND decrypts: COPY IT OFF THIS SERVER, nothing can be restored "
                    "without it. Safer: keep the identity on your own machine and put only its age1... recipient here")
    config["ENCRYPTION"] = {
        "ACTION": "execute",
        "NAME": "encryption",
        "PARAMETERS": {
            "__KEY_FILE": key_note,
            "KEY_FILE": str(choices.key_file),
            "__SIGNING_KEY": ("signs every backup set (mode 0600); keep a copy of its .pub file: a restore on another "
                              "machine trusts these sets with --trust-signer FILE.pub"),
            "SIGNING_KEY": str(choices.signing_key),
            "__FILE_SIZE": "MB per part file",
            "FILE_SIZE": str(FILE_SIZE_MB),
        },
    }
    config["STORAGE"] = {"ACTION": "execute", "NAME": "storage", "PARAMETERS": _storage_parameters(storage)}
    return config


def _storage_parameters(storage: StorageChoice) -> dict[str, Any]:
    if storage.kind == "s3":
        args: dict[str, Any] = {"BUCKET": storage.bucket}
        if storage.endpoint_url:
            args["ENDPOINT_URL"] = storage.endpoint_url
        if storage.region:
            args["REGION"] = storage.region
        return {
            "__ABOUT": ("objects go under HOSTNAME/ in the bucket. Credentials never go in this file: they come from "
                        "the AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, an instance role) "
                        "or a CREDENTIALS_FILE key in ARGS_DICT"),
            "DESTINATION": "s3",
            "ARGS_DICT": args,
        }
    if storage.kind == "sftp":
        args = {"REMOTE_HOST": storage.sftp_host, "PORT": str(storage.sftp_port), "REMOTE_DIR": storage.sftp_folder}
        if storage.sftp_user:
            args["REMOTE_USER"] = storage.sftp_user
        if storage.ssh_key:
            args["IDENTITY_FILE"] = str(storage.ssh_key)
        return {
            "__ABOUT": ("sets go to REMOTE_DIR/HOSTNAME/ on the server. Its host key must be in ~/.ssh/known_hosts "
                        "(ssh-keyscan HOST >> ~/.ssh/known_hosts, after checking the fingerprint)"),
            "DESTINATION": "sftp",
            "ARGS_DICT": args,
        }
    return {
        "__ABOUT": "sets go to LOCAL_BACKUP/HOSTNAME/; best on another disk than the data (or add a second STORAGE section)",
        "DESTINATION": "local",
        "ARGS_DICT": {"LOCAL_BACKUP": str(storage.local_folder)},
    }


def config_text(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------------
# Writing


@contextmanager
def config_temp_file(output: Path) -> Iterator[Path]:
    """An empty 0600 temp file beside output, its folder created if needed (ConfigError when that cannot be done).

    On leaving, the temp file goes, and so do the folders made for it unless the config was written there.
    """
    from ncbackup import platform

    folder = output.parent
    if output.is_dir():
        raise ConfigError(f"{output} is a folder; give the path of the config file to write with --output")
    existing = platform.nearest_existing(folder)
    if not existing.is_dir():
        raise ConfigError(f"{existing} is a file, not a folder, so {output} cannot be written there; choose another --output")

    def remove_made_folders() -> None:
        probe = folder
        while probe != existing and not output.exists():
            try:
                probe.rmdir()
            except OSError:
                return   # not empty (keys written there) or not ours to remove
            probe = probe.parent

    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=folder, prefix=f".{output.name}.", suffix=".tmp")
    except OSError as error:
        remove_made_folders()
        raise ConfigError(f"cannot write in the folder {folder} ({error.strerror}); run as a user who can, "
                          "or choose another --output") from None
    os.close(descriptor)
    temp = Path(name)
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)
        remove_made_folders()


def validate(text: str, temp: Path, output: Path) -> None:
    """Load and plan the config text exactly as `ncbackup check` would; ConfigError naming the output file otherwise."""
    from ncbackup.config import load_config
    from ncbackup.engine.plan import build_plan

    temp.write_text(text, encoding="utf-8")
    try:
        build_plan(load_config(temp))
    except BackupError as error:
        raise ConfigError(f"the config would not load: {str(error).replace(str(temp), str(output))}; "
                          "fix the answer it names") from None


@dataclass
class KeyReport:
    lines: list[str] = field(default_factory=list)     # what happened, for stdout
    loud: list[str] = field(default_factory=list)      # must-read warnings, for stderr


def make_keys(choices: Choices) -> KeyReport:
    """Create KEY_FILE (recipients, or an identity) and the signing key unless they exist; say what to keep where."""
    from ncbackup.signing import public_key_path, read_secret_key, write_signing_key
    from ncbackup.stages.keys import KIND_AGE_IDENTITY, create_private_file, read_key_file, write_identity_file

    report = KeyReport()
    key_file = choices.key_file
    if key_file.exists():
        material = read_key_file(key_file)
        report.lines.append(f"KEY_FILE {key_file} exists and is used as it is ({material.kind})")
        if material.kind == KIND_AGE_IDENTITY:
            report.lines.append(f"  it holds a secret identity: keep a copy of {key_file} off this server")
    elif choices.recipients:
        created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        content = f"# recipients written by ncbackup init, {created}; the identities stay elsewhere\n"
        content += "".join(f"{recipient}\n" for recipient in choices.recipients)
        create_private_file(key_file, content.encode("utf-8"), what="key file", config_key="KEY_FILE")
        report.lines.append(f"wrote the recipient(s) to KEY_FILE {key_file}: this server can write backups it cannot read")
        report.lines.append("  keep the identity on your own machine (and an offline copy); a restore needs it: "
                            "ncbackup restore -c CONFIG --key-file IDENTITY ...")
    else:
        recipient = write_identity_file(key_file)
        report.lines.append(f"created a NEW age identity in KEY_FILE {key_file} (mode 0600), public key {recipient}")
        report.loud.append(
            f"!!! COPY {key_file} OFF THIS SERVER NOW (a password manager, another machine): without it no backup can "
            "be restored, and whoever takes this server can read every backup with it. Safer: run `ncbackup keygen` "
            "on your own machine and run `ncbackup init --recipient age1...` here, so only the recipient is on the server !!!"
        )
    signing_key = choices.signing_key
    if signing_key.exists():
        key = read_secret_key(signing_key)
        public_path = public_key_path(signing_key)
        if not public_path.exists():
            public_path.write_text(key.public.file_text(), encoding="ascii")
        report.lines.append(f"SIGNING_KEY {signing_key} exists and is used as it is (key id {key.public.id_text})")
    else:
        key = write_signing_key(signing_key)
        report.lines.append(f"created the signing key {signing_key} (mode 0600) and its public key {public_key_path(signing_key)}")
    report.lines.append(f"  keep a copy of {public_key_path(signing_key)} off this server: a restore on another machine "
                        f"trusts these sets with --trust-signer; it holds: {key.public.encoded()}")
    return report


def write_config(output: Path, text: str, temp: Path, *, force: bool) -> str | None:
    """Move the checked temp file into place; with force the old config is kept as FILE.bak (returned)."""
    kept = None
    if output.exists():
        if not force:
            raise ConfigError(f"{output} already exists; give another --output, or --force to replace it")
        backup = output.with_name(output.name + ".bak")
        os.replace(output, backup)
        kept = str(backup)
    os.replace(temp, output)
    return kept


@guarded
def main(args) -> int:
    output = Path(args.output).absolute()
    if output.exists() and not args.force:
        # Before any question: nothing to answer for a file that will not be written.
        raise ConfigError(f"{output} already exists; give another --output, or --force to replace it "
                          "(the old one is kept as .bak)")
    with config_temp_file(output) as temp:   # an unwritable folder, too, is said before any question
        choices = gather(args, None if args.non_interactive else Prompter())
        text = config_text(render_config(choices, created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
        validate(text, temp, output)
        keys = make_keys(choices)
        kept = write_config(output, text, temp, force=args.force)
    print_summary(choices, output, keys, kept)
    return EXIT_OK


def print_summary(choices: Choices, output: Path, keys: KeyReport, kept: str | None) -> None:
    print(f"wrote {output} (mode 0600)" + (f"; the previous file is kept as {kept}" if kept else ""))
    if choices.includes:
        print(f"  files: {' '.join(map(str, choices.includes))}")
    for server in choices.databases:
        if server.is_reachable:
            print(f"  database: {server.label} ({server.detail})")
        else:
            print(f"  database: {server.label} is written DISABLED: cannot connect ({server.detail}); fix it and rename "
                  "its __DISABLED_ section")
    print(f"  storage: {choices.storage.describe()}")
    for line in keys.lines:
        print(line)
    print(f"next: ncbackup check -c {output}   then: ncbackup run -c {output}   "
          "(nightly: examples/systemd/ncbackup.timer or cron, see docs/running.md)")
    for line in keys.loud:
        print(line, file=sys.stderr)
