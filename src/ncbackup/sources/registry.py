"""Built-in sources: one line per source module, each bringing its own DESCRIPTOR (sources/base.SourceDescriptor).

Everything else is derived from the descriptors: which config sections are sources (engine/builtins),
where a source's plain dumps land in the barrier case (engine/plan), which restorer reads each stream
kind and which section's parameters it gets (engine/restore, commands/restore), which files QA checks.
"""

from __future__ import annotations

from ncbackup.sources import ad, files, mongo, mssql, mysql, postgres, sqlite
from ncbackup.sources.base import Restorer, SourceDescriptor

DESCRIPTORS: tuple[SourceDescriptor, ...] = (
    files.DESCRIPTOR,
    mysql.DESCRIPTOR,
    postgres.DESCRIPTOR,
    mongo.DESCRIPTOR,
    sqlite.DESCRIPTOR,
    mssql.DESCRIPTOR,
    ad.DESCRIPTOR,
)

SOURCES: dict[str, SourceDescriptor] = {descriptor.key: descriptor for descriptor in DESCRIPTORS}
RESTORERS: dict[str, Restorer] = {kind: restorer for d in DESCRIPTORS for kind, restorer in d.restorers.items()}
# Which source section (by built-in key) produced each stream kind: its parameters go to the restorer.
SOURCE_KEY_BY_KIND: dict[str, str] = {kind: d.key for d in DESCRIPTORS for kind in d.restorers}
