"""The database case (issue 4): a MariaDB holding ~--size of rows, dumped by the shell pipeline and by ncbackup.

Baseline: ``mariadb-dump --single-transaction ... bench | zstd -T0 -3 | age -r R > file`` with the same
dump options ncbackup passes (routines, triggers, events, hex-blob, utf8mb4), so both read the same
bytes from the server. ncbackup: a legacy-style MYSQL section (CREDENTIAL_PATH, MY_INSTANCES,
EXCLUDE_DB mysql) -> COMPRESSION level 3 -> ENCRYPTION (recipient only, no split) -> STORAGE local.
The password is only in the option file (``--defaults-extra-file``), never argv. No restore timing:
loading 1 GiB back into a server measures the server, not the tools.

The server's datadir is built once per (seed, size) and cached in bench/work (marker written last);
the server itself is the test suite's throwaway MariaDB (tests/integration/servers/mariadb.py).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path

from bench.case import BenchCase, BenchContext, RunDirs
from bench.corpus import size_label
from bench.measure import Pipeline
from bench.report import Targets

def _load_server_module():
    # By file path: run as `python3 bench/run.py`, the name `tests` would be bench/tests.
    path = Path(__file__).resolve().parent.parent / "tests" / "integration" / "servers" / "mariadb.py"
    spec = importlib.util.spec_from_file_location("ncbackup_bench_mariadb", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


_servers = _load_server_module()
MariaDB, remove_socket_folder, start_mariadb = _servers.MariaDB, _servers.remove_socket_folder, _servers.start_mariadb

DATABASE = "bench"
ROWS_PER_BATCH = 200_000
DUMP_BYTES_PER_ROW = 560   # measured: what one generated row costs in mariadb-dump output (hex-blob)
DUMP_OPTIONS = ["--single-transaction", "--routines", "--triggers", "--events", "--hex-blob", "--default-character-set=utf8mb4"]
SERVER_ARGS = ("--innodb-buffer-pool-size=256M", "--innodb-log-file-size=256M", "--skip-log-bin")

SCHEMA_SQL = f"""
CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4;
CREATE TABLE {DATABASE}.events (
  id BIGINT PRIMARY KEY, created DATETIME NOT NULL, customer VARCHAR(64) NOT NULL, status VARCHAR(16) NOT NULL,
  amount DECIMAL(12,2) NOT NULL, note TEXT NOT NULL, payload VARBINARY(128) NOT NULL
) ENGINE=InnoDB;
CREATE TABLE {DATABASE}.customers (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, city VARCHAR(60)) ENGINE=InnoDB;
"""


def rows_sql(first: int, last: int, seed: int) -> str:
    """Deterministic rows first..last: log-like compressible text plus 128 incompressible bytes each."""
    return (
        f"INSERT INTO {DATABASE}.events SELECT seq, '2026-01-01' + INTERVAL (seq * 37 % 31536000) SECOND, "
        f"CONCAT('customer-', seq * 7919 % 100000), ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'returned'), "
        f"(seq * 13 % 100000) / 100, CONCAT_WS(' ', 'order', seq, 'status change logged by worker', seq % 17, "
        f"SHA2(CONCAT('{seed}-', seq), 256), REPEAT('lorem ipsum dolor ', 1 + seq % 9)), "
        f"UNHEX(CONCAT(SHA2(CONCAT(seq, '-{seed}-a'), 512), SHA2(CONCAT(seq, '-{seed}-b'), 512))) "
        f"FROM seq_{first}_to_{last}"
    )


class DatabaseCase(BenchCase):
    name = "db"
    targets = Targets(backup_ratio=1.15)  # issue 4: dump-to-set <= 1.15x mysqldump | zstd | age

    def __init__(self) -> None:
        self.context: BenchContext | None = None
        self.server: MariaDB | None = None
        self.rows = 0

    def setup(self, context: BenchContext) -> dict:
        self.context = context
        label = f"mariadb-seed{context.seed}-{size_label(context.size_bytes)}"
        datadir = context.work_folder / label
        marker = datadir.with_name(label + ".json")
        self.rows = max(1000, context.size_bytes // DUMP_BYTES_PER_ROW)
        if not marker.exists() and datadir.exists():
            shutil.rmtree(datadir)
        server_folder = context.work_folder / "mariadb-server"
        shutil.rmtree(server_folder, ignore_errors=True)
        self.server = start_mariadb(server_folder, name="bench", datadir=datadir, extra_args=SERVER_ARGS)
        try:
            return self._load(context, label, datadir, marker)
        except BaseException:
            self.teardown()  # the runner only tears down after a successful setup
            raise

    def _load(self, context: BenchContext, label: str, datadir: Path, marker: Path) -> dict:
        if not marker.exists():
            context.log(f"loading {self.rows} rows into MariaDB ({label}); cached for later runs")
            started = time.perf_counter()
            self.server.sql(SCHEMA_SQL)
            self.server.sql(
                f"INSERT INTO {DATABASE}.customers SELECT seq, CONCAT('Zoë Ångström ', seq), ELT(1 + seq % 3, 'Oslo', '東京', 'Lyon') FROM seq_1_to_100000",
                database=DATABASE,
            )
            for first in range(1, self.rows + 1, ROWS_PER_BATCH):
                last = min(self.rows, first + ROWS_PER_BATCH - 1)
                self.server.sql(rows_sql(first, last, context.seed), database=DATABASE, timeout_seconds=3600)
            marker.write_text(json.dumps({"rows": self.rows, "load_seconds": round(time.perf_counter() - started, 1)}))
        table_bytes = self.server.sql(
            f"SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{DATABASE}'"
        ).strip()
        return {"server": "MariaDB " + self.server.sql("SELECT VERSION()").strip(), "rows": self.rows + 100_000,
                "table_bytes": int(table_bytes or 0), "datadir": str(datadir)}

    def scratch_size_bytes(self) -> int:
        return 2 * self.context.size_bytes + (1 << 30)

    def shell_backups(self, dirs: RunDirs) -> dict[str, Pipeline]:
        server = self.server
        dump = ["mariadb-dump", f"--defaults-extra-file={server.credential_path}", "--protocol=TCP", f"--port={server.port}",
                *DUMP_OPTIONS, "--", DATABASE]
        return {
            "shell: mariadb-dump --single-transaction | zstd -T0 -3 | age": Pipeline(
                [dump, ["zstd", "-T0", "-3", "-q", "-c"], ["age", "-r", self.context.keys.recipient]],
                stdout_path=dirs.output / f"{DATABASE}.sql.zst.age",
            ),
        }

    def ncbackup_sections(self, dirs: RunDirs) -> dict[str, dict]:
        return {
            "DBSBACKUP": {
                "ACTION": "execute", "NAME": "mysql_backup",
                "PARAMETERS": {"CREDENTIAL_PATH": str(self.server.credential_path), "MY_INSTANCES": str(self.server.port),
                               "EXCLUDE_DB": "mysql"},
            },
            "COMPRESSION": {"ACTION": "execute", "NAME": "compression", "PARAMETERS": {"LEVEL": "3"}},
            "ENCRYPTION": {
                "ACTION": "execute", "NAME": "encryption",
                "PARAMETERS": {"KEY_FILE": str(self.context.keys.recipients_file), "FILE_SIZE": "0"},
            },
            "STORAGE": {
                "ACTION": "execute", "NAME": "storage",
                "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": repr({"LOCAL_BACKUP": str(dirs.local_backup)})},
            },
        }

    def teardown(self) -> None:
        if self.server is not None:
            self.server.stop()
            remove_socket_folder(self.server)
            self.server = None


def make_case() -> DatabaseCase:
    return DatabaseCase()
