"""Built-in sources by section key, and the restorer for each stream kind. One line per plugin.

A source factory is a class (or function) with ``from_section(section, general) -> Source``.
Section keys come from ``engine/builtins.py``: "filesbackup", "mysql_backup", "postgres", "mongo", "sqlite".
"""

from __future__ import annotations

from typing import Any

from ncbackup.sources.base import Restorer
from ncbackup.sources.files import FilesSource, restore_files
from ncbackup.sources.mongo import MongoSource, restore_mongo
from ncbackup.sources.mysql import MysqlSource, restore_mysql, restore_mysql_binlogs
from ncbackup.sources.postgres import PostgresSource, restore_postgres, restore_postgres_globals
from ncbackup.sources.sqlite import SqliteSource, restore_sqlite

SOURCES: dict[str, Any] = {
    "filesbackup": FilesSource,
    "mysql_backup": MysqlSource,
    "postgres": PostgresSource,
    "mongo": MongoSource,
    "sqlite": SqliteSource,
}

RESTORERS: dict[str, Restorer] = {
    "files": restore_files,
    "mysql": restore_mysql,
    "mysql-binlogs": restore_mysql_binlogs,
    "postgres": restore_postgres,
    "postgres-globals": restore_postgres_globals,
    "mongo": restore_mongo,
    "sqlite": restore_sqlite,
}
