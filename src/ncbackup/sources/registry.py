"""Built-in sources by section key, and the restorer for each stream kind. One line per plugin.

A source factory is a class (or function) with ``from_section(section, general) -> Source``.
Section keys come from ``engine/builtins.py``: "filesbackup", "mysql_backup", "postgres", "mongo", "sqlite".
"""

from __future__ import annotations

from typing import Any

from ncbackup.sources.base import Restorer
from ncbackup.sources.files import FilesSource, restore_files, skip_index

SOURCES: dict[str, Any] = {
    "filesbackup": FilesSource,
}

RESTORERS: dict[str, Restorer] = {
    "files": restore_files,
    "files-index": skip_index,
}
