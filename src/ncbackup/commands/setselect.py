"""What ``list``, ``restore`` and ``verify`` share: the config's storage, the chosen set, the default key file."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ncbackup.config import load_config
from ncbackup.config.settings import Config, SectionSettings
from ncbackup.errors import BackupError, ConfigError
from ncbackup.setformat import SetInfo, list_sets
from ncbackup.storage.base import Storage, with_retries

READ_ATTEMPTS = 3


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, type=Path, help="the JSON config file")
    parser.add_argument("--storage", metavar="SECTION",
                        help="the STORAGE section to read from (default: the first one in the config that can list its sets)")


def add_set_arguments(parser: argparse.ArgumentParser) -> None:
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--set", dest="set_id", metavar="ID", help="the set id, as `ncbackup list` shows it")
    choice.add_argument("--latest", action="store_true", help="the newest complete set (the default)")


@dataclass(frozen=True)
class ConfiguredStorage:
    config: Config
    section: SectionSettings
    storage: Storage


def storage_sections(config: Config) -> list[SectionSettings]:
    from ncbackup.engine.builtins import builtin_key

    return [section for section in config.sections if builtin_key(section) == "storage"]


def can_list(storage: Storage) -> bool:
    """Whether the storage can list its objects (a custom_command without LIST_COMMAND_TEMPLATE cannot)."""
    return getattr(storage, "can_list", True)


def open_configured_storage(config_path: Path, section_name: str | None) -> ConfiguredStorage:
    """Load the config and build the named STORAGE section's storage (default: the first one that can list)."""
    from ncbackup.storage.registry import build_storage

    config = load_config(config_path)
    sections = storage_sections(config)
    if not sections:
        raise ConfigError("the config has no STORAGE section (NAME storage); add one, or pass -c with the config that made the backups",
                          file=config.path)
    names = ", ".join(s.name for s in sections)
    if section_name is None:
        # Built lazily, one by one: building a storage connects to nothing, but an unusable later
        # section should not stop a read from a good first one.
        for section in sections:
            storage = build_storage(section, config.general)
            if can_list(storage):
                break
        else:
            raise ConfigError(f"no STORAGE section can list its sets ({names}); add a LIST_COMMAND_TEMPLATE to a "
                              "custom_command storage, or add a storage that can list", file=config.path)
    else:
        matches = [s for s in sections if s.name == section_name]
        if not matches:
            raise ConfigError(f"there is no STORAGE section named {section_name!r}; use one of: {names}", file=config.path)
        section = matches[0]
        storage = build_storage(section, config.general)
        if not can_list(storage):
            others = ", ".join(s.name for s in sections if s.name != section_name) or "none"
            raise ConfigError(f"STORAGE section {section_name!r} cannot list its sets (a custom_command without "
                              f"LIST_COMMAND_TEMPLATE); add LIST_COMMAND_TEMPLATE to it, or pick another with "
                              f"--storage (others: {others})", file=config.path)
    return ConfiguredStorage(config=config, section=section, storage=with_retries(storage, attempts=READ_ATTEMPTS, first_wait_seconds=1.0))


@dataclass(frozen=True)
class ChosenSet:
    info: SetInfo
    notes: tuple[str, ...] = ()


def choose_set(storage: Storage, set_id: str | None) -> ChosenSet:
    """The named set, or the newest complete one; an incomplete set is refused with what to do instead."""
    sets = list_sets(storage)
    if set_id is not None:
        for info in sets:
            if info.set_id == set_id:
                if not info.is_complete:
                    why = info.problem or "it has no manifest (the backup did not finish, or is still running)"
                    raise BackupError(
                        f"set {set_id} on {storage.name} is incomplete: {why}; pick a complete set from `ncbackup list`, "
                        "or decrypt its parts by hand with `ncbackup decrypt` (no integrity check is possible)"
                    )
                return ChosenSet(info)
        raise BackupError(f"there is no set {set_id} on {storage.name}; run `ncbackup list -c ...` to see the sets there")
    complete = [info for info in sets if info.is_complete]
    if not complete:
        raise BackupError(f"there is no complete set on {storage.name}; run a backup first, or check --storage and the config")
    newest = complete[-1]
    skipped = [info.set_id for info in sets if info.started_at > newest.started_at and not info.is_complete]
    notes = (f"newer incomplete set(s) skipped: {', '.join(skipped)}",) if skipped else ()
    return ChosenSet(newest, notes)


def default_key_file(config: Config) -> Path | None:
    """The KEY_FILE of the config's ENCRYPTION section (its default path when unset), or None without one."""
    from ncbackup.config.types import parse_options
    from ncbackup.engine.builtins import builtin_key
    from ncbackup.stages.registry import EncryptionOptions

    for section in config.sections:
        if builtin_key(section) == "encryption":
            return Path(parse_options(EncryptionOptions, section).key_file)
    return None
