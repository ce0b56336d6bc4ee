"""Which sections ncbackup runs in-process, and the role each built-in plays in a plan.

``builtin_key(section)`` is the one place that recognises built-in sections: an ``execute`` section
by its NAME, a ``load`` section by FROM/CLASS. Sources are recognised through their descriptors
(``sources/registry.py``); the stages, storage and tools are listed here. Anything else is an external
program or a user's plugin, found under HOME_FOLDER.
"""

from __future__ import annotations

from enum import Enum
from functools import cache

from ncbackup.config.settings import SectionSettings


class Role(str, Enum):
    SOURCE = "source"
    COMPRESSION = "compression"
    ENCRYPTION = "encryption"
    STORAGE = "storage"
    SIZE = "size"
    QA = "qa"
    COMMANDS = "commands"   # the original's command runner (ORIGIN_AND_TARGETS_PARAMS)
    NOTIFY = "notify"       # a NOTIFY section: configures delivery at the end of the run, not a step
    SNAPSHOT = "snapshot"   # a SNAPSHOT section: taken in order, released at the end of the run


# execute NAME -> key, for the built-ins that are not sources (sources: their descriptors).
STAGE_EXECUTE_NAMES: dict[str, str] = {
    "compression": "compression",
    "encryption": "encryption",
    "storage": "storage",
    "notify": "notify",
    "snapshot": "snapshot",
}

# load (FROM, CLASS) -> key, likewise.
TOOL_LOAD_CLASSES: dict[tuple[str, str], str] = {
    ("tools", "SizeCalculation"): "size",
    ("qa", "QA"): "qa",
}

TOOL_ROLES: dict[str, Role] = {
    "compression": Role.COMPRESSION,
    "encryption": Role.ENCRYPTION,
    "storage": Role.STORAGE,
    "size": Role.SIZE,
    "qa": Role.QA,
    "commands": Role.COMMANDS,
    "notify": Role.NOTIFY,
    "snapshot": Role.SNAPSHOT,
}

# The roles that move backup data; consecutive sections with these roles fuse into one pipeline.
DATA_ROLES = frozenset({Role.SOURCE, Role.COMPRESSION, Role.ENCRYPTION, Role.STORAGE})

COMMAND_RUNNER_KEY = "ORIGIN_AND_TARGETS_PARAMS"


@cache
def execute_names() -> dict[str, str]:
    """Every ``execute`` NAME ncbackup runs itself -> its key."""
    from ncbackup.sources.registry import DESCRIPTORS

    return {**{name: d.key for d in DESCRIPTORS for name in d.execute_names}, **STAGE_EXECUTE_NAMES}


@cache
def load_classes() -> dict[tuple[str, str], str]:
    """Every ``load`` (FROM, CLASS) ncbackup runs itself -> its key."""
    from ncbackup.sources.registry import DESCRIPTORS

    return {**{pair: d.key for d in DESCRIPTORS for pair in d.load_classes}, **TOOL_LOAD_CLASSES}


@cache
def roles() -> dict[str, Role]:
    """Built-in key -> role."""
    from ncbackup.sources.registry import SOURCES

    return {**{key: Role.SOURCE for key in SOURCES}, **TOOL_ROLES}


def tool_key(section: SectionSettings) -> str | None:
    """The built-in key of a stage, storage or tool section ("storage", "size", ...); None for sources and the rest.

    Answered without importing the sources (``list`` and ``restore`` look for STORAGE sections only)."""
    module = (section.module or "").strip()
    if section.action == "execute":
        return STAGE_EXECUTE_NAMES.get(module)
    if section.action == "load":
        return TOOL_LOAD_CLASSES.get((module, (section.class_name or "").strip()))
    return None


def builtin_key(section: SectionSettings) -> str | None:
    """Return the built-in key of a section ("filesbackup", "postgres", "size", ...), or None if it is external."""
    module = (section.module or "").strip()
    if section.action == "execute":
        key = execute_names().get(module)
        if key:
            return key
        # The original's "rsync" plugin ran ORIGIN_AND_TARGETS_PARAMS; ncbackup runs those itself.
        if module == "rsync" and COMMAND_RUNNER_KEY in section.parameters:
            return "commands"
        return None
    if section.action == "load":
        key = load_classes().get((module, (section.class_name or "").strip()))
        if key:
            return key
        if module == "rsync" and COMMAND_RUNNER_KEY in section.parameters:
            return "commands"
    return None


def role_of(section: SectionSettings) -> Role | None:
    """The role of a built-in section, or None for external sections and configuration-only sections."""
    key = builtin_key(section)
    return roles().get(key) if key else None
