"""A throwaway MariaDB server: temp datadir, temp socket, binary logging on, a high port on 127.0.0.1.

``start_mariadb`` is used by the session fixtures in tests/integration/sources/conftest.py; every
server it starts has a user ``backup`` with a password, reachable over TCP and the socket, and
an option file (``credential_path``) in the legacy [mysqldump]/[mysql] layout.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ncbackup.process import run
from tests.integration.servers.background import Background, start_background

BACKUP_USER = "backup"
BACKUP_PASSWORD = "s3cret-Pa55 word"
START_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class MariaDB:
    folder: Path
    port: int
    socket_path: Path
    credential_path: Path
    datadir: Path
    process: Background

    def sql(self, statement: str, *, database: str | None = None, timeout_seconds: float = 60) -> str:
        """Run SQL as root over the socket; return the tab-separated output."""
        argv = ["mariadb", "--no-defaults", f"--socket={self.socket_path}", "-uroot", "--batch", "--skip-column-names"]
        if database:
            argv.append(f"--database={database}")
        return run(argv + ["-e", statement], timeout_seconds=timeout_seconds).text

    def stop(self) -> None:
        try:
            run(["mariadb-admin", "--no-defaults", f"--socket={self.socket_path}", "-uroot", "shutdown"], timeout_seconds=60)
        except Exception:  # noqa: BLE001, S110 - teardown: make sure the process ends however the shutdown went
            pass
        self.process.stop(timeout_seconds=30)


def start_mariadb(
    folder: Path, *, name: str = "db1", is_binlog_on: bool = True, datadir: Path | None = None,
    extra_args: tuple[str, ...] = (),
) -> MariaDB:
    """Start a MariaDB in folder (initialising datadir unless it already holds one); wait until it answers; add the backup user."""
    folder.mkdir(parents=True, exist_ok=True)
    datadir = datadir or folder / "data"
    # Unix socket paths are limited to ~108 bytes: keep the socket in a short folder.
    socket_folder = Path(f"/tmp/ncb-{name}-{os.getpid()}-{free_port()}")
    socket_folder.mkdir(mode=0o755)
    socket_path = socket_folder / "mysqld.sock"
    user_args = ["--user=root"] if os.geteuid() == 0 else []
    if not (datadir / "mysql").is_dir():
        run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={datadir}", "--auth-root-authentication-method=normal",
             "--skip-test-db", *user_args],
            timeout_seconds=180,
        )
    port = free_port()
    process = start_background(
        ["mariadbd", "--no-defaults", f"--datadir={datadir}", f"--socket={socket_path}", f"--port={port}",
         "--bind-address=127.0.0.1", "--skip-name-resolve", "--server-id=1",
         *([f"--log-bin={datadir}/mysql-bin"] if is_binlog_on else []),
         f"--pid-file={folder}/mariadbd.pid", "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
         "--event-scheduler=OFF", "--character-set-server=utf8mb4", *user_args, *extra_args],
        output_path=folder / "mariadbd.log",
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    server = MariaDB(folder, port, socket_path, folder / "backup.cnf", datadir, process)
    while True:
        if not process.is_running():
            raise RuntimeError("mariadbd exited at start: " + (folder / "mariadbd.log").read_text(errors="replace")[-2000:])
        try:
            server.sql("SELECT 1")
            break
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                process.stop()
                raise RuntimeError(
                    "mariadbd did not answer in time: " + (folder / "mariadbd.log").read_text(errors="replace")[-2000:]
                ) from None
            time.sleep(0.3)
    server.sql(
        f"CREATE USER IF NOT EXISTS '{BACKUP_USER}'@'%' IDENTIFIED BY '{BACKUP_PASSWORD}';"
        f"GRANT ALL PRIVILEGES ON *.* TO '{BACKUP_USER}'@'%' WITH GRANT OPTION;"
    )
    server.credential_path.write_text(
        "# legacy nc-backup-py layout: [mysqldump] and [mysql] groups\n"
        f"[mysqldump]\nuser={BACKUP_USER}\npassword=\"{BACKUP_PASSWORD}\"\nhost=127.0.0.1\n"
        f"[mysql]\nuser={BACKUP_USER}\npassword=\"{BACKUP_PASSWORD}\"\nhost=127.0.0.1\n",
        encoding="utf-8",
    )
    server.credential_path.chmod(0o600)
    return server


def remove_socket_folder(server: MariaDB) -> None:
    shutil.rmtree(server.socket_path.parent, ignore_errors=True)
