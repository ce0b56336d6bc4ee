"""Which source module restores each stream kind, known without importing the sources: a restore imports only the
modules of the kinds it restores (a files restore never loads the database clients' code).

``sources/registry.py`` stays the list of sources; a test checks this table agrees with its descriptors.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ncbackup.config.settings import SectionSettings
from ncbackup.sources.base import Restorer, SourceDescriptor

# Stream kind -> the module whose DESCRIPTOR restores it.
MODULE_BY_KIND: dict[str, str] = {
    "files": "ncbackup.sources.files",
    "mysql": "ncbackup.sources.mysql",
    "mysql-binlogs": "ncbackup.sources.mysql",
    "mysql-binlog-chain": "ncbackup.sources.mysql",
    "postgres": "ncbackup.sources.postgres",
    "postgres-globals": "ncbackup.sources.postgres",
    "mongo": "ncbackup.sources.mongo",
    "sqlite": "ncbackup.sources.sqlite",
    "mssql": "ncbackup.sources.mssql",
    "ad": "ncbackup.sources.ad",
}


def descriptor_for_kind(kind: str) -> SourceDescriptor | None:
    """The descriptor of the source that restores kind (importing its module only); None for a kind no source restores."""
    module_name = MODULE_BY_KIND.get(kind)
    if module_name is None:
        return None
    descriptor: SourceDescriptor = importlib.import_module(module_name).DESCRIPTOR
    return descriptor


def restorer_for(kind: str) -> Restorer | None:
    """The restorer of a stream kind, or None when no source restores it (the stream is written as a plain file)."""
    descriptor = descriptor_for_kind(kind)
    return descriptor.restorers.get(kind) if descriptor is not None else None


def is_section_of(section: SectionSettings, descriptor: SourceDescriptor) -> bool:
    """Whether a config section is one of this source's (by its execute NAME or load FROM/CLASS)."""
    module = (section.module or "").strip()
    if section.action == "execute":
        return module in descriptor.execute_names
    if section.action == "load":
        return (module, (section.class_name or "").strip()) in descriptor.load_classes
    return False


def options_for_kinds(sections: list[SectionSettings], kinds: set[str]) -> dict[str, Mapping[str, Any]]:
    """Each kind -> the parameters of the first section of the source that backs it up (credentials, binaries)."""
    found: dict[str, Mapping[str, Any]] = {}
    for kind in sorted(kinds):
        descriptor = descriptor_for_kind(kind)
        if descriptor is None:
            continue
        section = next((s for s in sections if is_section_of(s, descriptor)), None)
        if section is not None:
            found[kind] = dict(section.parameters)
    return found
