"""Built-in sources by section key, and the restorer for each stream kind. One line per plugin.

A source factory is a class (or function) with ``from_section(section, general) -> Source``.
Section keys come from ``engine/builtins.py``: "filesbackup", "mysql_backup", "postgres", "mongo", "sqlite".
"""

from __future__ import annotations

from typing import Any

from ncbackup.sources.base import Restorer

SOURCES: dict[str, Any] = {
}

RESTORERS: dict[str, Restorer] = {
}
