"""What ``ncbackup init`` finds on this host: folders worth backing up and database servers that answer.

Finding a server is two steps: a cheap look for its socket or port (a socket file in the usual
places, a TCP port accepting connections on 127.0.0.1), then the same query the MYSQL and POSTGRES
sources run in ``ncbackup check`` (``MysqlClient``/``server_info``, ``PostgresConnection``), so
"reachable" here means the generated section will pass ``check``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ncbackup.errors import BackupError

# Folders a server's owner usually wants back: /etc always, the others when they exist.
FILE_CANDIDATES = (Path("/etc"), Path("/home"), Path("/root"), Path("/var/www"), Path("/srv"), Path("/opt"))
# Caches inside the candidates: large, rebuilt by their programs, never worth a restore.
DEFAULT_EXCLUDES = ("/home/*/.cache", "/root/.cache")
# Where MariaDB/MySQL packages put their socket (Debian, Red Hat, source builds).
MYSQL_SOCKETS = (Path("/run/mysqld/mysqld.sock"), Path("/var/run/mysqld/mysqld.sock"),
                 Path("/var/lib/mysql/mysql.sock"), Path("/tmp/mysql.sock"))  # noqa: S108 - probed, never written
MYSQL_PORT = 3306
# Folders holding PostgreSQL's sockets, named .s.PGSQL.<port>.
POSTGRES_SOCKET_FOLDERS = (Path("/run/postgresql"), Path("/var/run/postgresql"), Path("/tmp"))  # noqa: S108 - probed
POSTGRES_PORT = 5432
POSTGRES_SOCKET_PREFIX = ".s.PGSQL."
LOOPBACK = "127.0.0.1"
PORT_PROBE_TIMEOUT_SECONDS = 1.0


@dataclass
class FoundServer:
    """A database server init looked at: the section PARAMETERS that reach it, and whether they did."""

    kind: str                    # "mysql" | "postgres"
    where: str                   # "socket /run/mysqld/mysqld.sock", "127.0.0.1 port 5432"
    parameters: dict[str, str]   # the section's PARAMETERS
    is_reachable: bool = False
    detail: str = ""             # "MariaDB 10.11.6, 3 database(s)" or why it could not connect
    databases: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{'MariaDB/MySQL' if self.kind == 'mysql' else 'PostgreSQL'} on {self.where}"


def existing_paths(candidates: Iterable[Path] = FILE_CANDIDATES) -> list[Path]:
    """The candidate folders that exist here, in order."""
    return [path for path in candidates if path.is_dir()]


def is_port_open(port: int, *, host: str = LOOPBACK, timeout_seconds: float = PORT_PROBE_TIMEOUT_SECONDS) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_seconds):
            return True
    except OSError:
        return False


def _is_socket(path: Path) -> bool:
    try:
        return path.is_socket()
    except OSError:
        return False


def mysql_candidates(sockets: Sequence[Path] = MYSQL_SOCKETS, port: int | None = MYSQL_PORT) -> list[str]:
    """MY_INSTANCES specs worth probing: each usual socket that exists (one per server), else port 3306 if it answers."""
    found: list[str] = []
    seen: set[Path] = set()
    for path in sockets:
        if _is_socket(path):
            real = path.resolve()
            if real not in seen:   # /var/run is usually a link to /run
                seen.add(real)
                found.append(str(path))
    if not found and port is not None and is_port_open(port):
        found.append(str(port))
    return found


def postgres_sockets(folder: Path) -> list[int]:
    """The ports of the PostgreSQL sockets in folder (``.s.PGSQL.5432`` -> 5432), sorted."""
    ports: list[int] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    for entry in entries:
        suffix = entry.name.removeprefix(POSTGRES_SOCKET_PREFIX)
        if entry.name.startswith(POSTGRES_SOCKET_PREFIX) and suffix.isdigit() and _is_socket(entry):
            ports.append(int(suffix))
    return sorted(ports)


def postgres_candidates(folders: Sequence[Path] = POSTGRES_SOCKET_FOLDERS,
                        port: int | None = POSTGRES_PORT) -> list[tuple[str, int]]:
    """(HOST, PORT) pairs worth probing: every socket in the usual folders, else 127.0.0.1:5432 if it answers."""
    found: list[tuple[str, int]] = []
    seen: set[tuple[Path, int]] = set()
    for folder in folders:
        for socket_port in postgres_sockets(folder):
            key = (folder.resolve(), socket_port)
            if key not in seen:
                seen.add(key)
                found.append((str(folder), socket_port))
    if not found and port is not None and is_port_open(port):
        found.append((LOOPBACK, port))
    return found


def probe_mysql(spec: str, *, credential_path: Path | None = None) -> FoundServer:
    """Connect to one MY_INSTANCES spec (a port or a socket path) as the MYSQL source would, and list its databases."""
    from ncbackup.sources._dbsupport import failure_reason
    from ncbackup.sources.mysql import MysqlClient, MysqlInstance, MysqlOptions, MysqlSource, server_info

    parameters = {"MY_INSTANCES": spec}
    if credential_path is not None:
        parameters["CREDENTIAL_PATH"] = str(credential_path)
    instance = MysqlInstance(spec)
    where = f"socket {spec}" if instance.is_socket else f"{LOOPBACK} port {spec}"
    found = FoundServer("mysql", where, parameters)
    options = MysqlOptions.model_validate(parameters)
    try:
        client = MysqlClient(options, instance)
        info = server_info(client)
        chosen, _skipped = MysqlSource(options, work_folder=Path(".")).selected_databases(client)
    except BackupError as error:
        found.detail = failure_reason(error)
        return found
    found.is_reachable = True
    found.databases = chosen
    found.detail = f"{'MariaDB' if info.flavour == 'mariadb' else 'MySQL'} {info.version}, {len(chosen)} database(s)"
    return found


def probe_postgres(host: str, port: int, *, user: str | None = None, password_file: Path | None = None) -> FoundServer:
    """Connect to one PostgreSQL server as the POSTGRES source would, and list its databases."""
    from ncbackup.sources._dbsupport import failure_reason
    from ncbackup.sources.postgres import PostgresConnection, PostgresOptions, list_databases

    parameters = {"HOST": host, "PORT": str(port)}
    if user:
        parameters["USER"] = user
    if password_file is not None:
        parameters["PASSWORD_FILE"] = str(password_file)
    where = f"socket folder {host} port {port}" if host.startswith("/") else f"{host} port {port}"
    found = FoundServer("postgres", where, parameters)
    try:
        connection = PostgresConnection(PostgresOptions.model_validate(parameters))
        with connection.environment() as env:
            version = connection.query("SHOW server_version", env=env)[0]
            databases = list_databases(connection, env)
    except BackupError as error:
        found.detail = failure_reason(error)
        return found
    found.is_reachable = True
    found.databases = databases
    found.detail = f"PostgreSQL {version.split(' ')[0]}, {len(databases)} database(s)"
    return found
