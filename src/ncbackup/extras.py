"""Optional dependencies (pip extras): importing one that a config needs but this install lacks is one sentence."""

from __future__ import annotations

import importlib
from types import ModuleType

from ncbackup.errors import ConfigError

# Importable module -> the extra that installs it (pyproject.toml [project.optional-dependencies]).
EXTRA_OF_MODULE: dict[str, str] = {
    "boto3": "s3",
    "paramiko": "sftp",
}


def import_extra(module_name: str, *, needed_by: str) -> ModuleType:
    """Import an optional dependency; a ConfigError naming the extra to install when it cannot be imported.

    needed_by says who needs it, e.g. "section STORAGE uses S3 storage".
    """
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        extra = EXTRA_OF_MODULE[module_name]
        # A module that is present but broken (a dependency of its own missing) is not "not installed".
        problem = "is not installed" if error.name in (None, module_name) else f"cannot be imported ({error})"
        raise ConfigError(
            f"{needed_by} but {module_name} {problem}; install ncbackup[{extra}] "
            f"(pip install 'ncbackup[{extra}]', or ncbackup[all] for every storage)"
        ) from None
