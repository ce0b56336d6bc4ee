"""Which sections ncbackup runs in-process, and the role each built-in plays in a plan.

``builtin_key(section)`` is the one place that recognises built-in sections: an ``execute`` section
by its NAME, a ``load`` section by FROM/CLASS. Anything else is an external program or a user's
plugin, found under HOME_FOLDER.
"""

from __future__ import annotations

from enum import Enum

from ncbackup.config.settings import SectionSettings


class Role(str, Enum):
    SOURCE = "source"
    COMPRESSION = "compression"
    ENCRYPTION = "encryption"
    STORAGE = "storage"
    SIZE = "size"
    QA = "qa"
    COMMANDS = "commands"   # the original's command runner (ORIGIN_AND_TARGETS_PARAMS)


# execute NAME -> key. The key of a source is its SOURCES registry key.
EXECUTE_NAMES: dict[str, str] = {
    "filesbackup": "filesbackup",
    "mysql_backup": "mysql_backup",
    "sqlite_backup": "sqlite",
    "compression": "compression",
    "encryption": "encryption",
    "storage": "storage",
}

# load (FROM, CLASS) -> key.
LOAD_CLASSES: dict[tuple[str, str], str] = {
    ("postgres", "PostgresBackup"): "postgres",
    ("mongo", "MongoBackup"): "mongo",
    ("tools", "SizeCalculation"): "size",
    ("qa", "QA"): "qa",
}

ROLES: dict[str, Role] = {
    "filesbackup": Role.SOURCE,
    "mysql_backup": Role.SOURCE,
    "postgres": Role.SOURCE,
    "mongo": Role.SOURCE,
    "sqlite": Role.SOURCE,
    "compression": Role.COMPRESSION,
    "encryption": Role.ENCRYPTION,
    "storage": Role.STORAGE,
    "size": Role.SIZE,
    "qa": Role.QA,
    "commands": Role.COMMANDS,
}

# The roles that move backup data; consecutive sections with these roles fuse into one pipeline.
DATA_ROLES = frozenset({Role.SOURCE, Role.COMPRESSION, Role.ENCRYPTION, Role.STORAGE})

COMMAND_RUNNER_KEY = "ORIGIN_AND_TARGETS_PARAMS"


def builtin_key(section: SectionSettings) -> str | None:
    """Return the built-in key of a section ("filesbackup", "postgres", "size", ...), or None if it is external."""
    module = (section.module or "").strip()
    if section.action == "execute":
        key = EXECUTE_NAMES.get(module)
        if key:
            return key
        # The original's "rsync" plugin ran ORIGIN_AND_TARGETS_PARAMS; ncbackup runs those itself.
        if module == "rsync" and COMMAND_RUNNER_KEY in section.parameters:
            return "commands"
        return None
    if section.action == "load":
        key = LOAD_CLASSES.get((module, (section.class_name or "").strip()))
        if key:
            return key
        if module == "rsync" and COMMAND_RUNNER_KEY in section.parameters:
            return "commands"
    return None


def role_of(section: SectionSettings) -> Role | None:
    """The role of a built-in section, or None for external sections and configuration-only sections."""
    key = builtin_key(section)
    return ROLES.get(key) if key else None
