"""What ``list``, ``restore`` and ``verify`` share: the config's storage, who is trusted to have signed a set,
the chosen set, the default key file and the cipher it implies."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ncbackup.config import load_config
from ncbackup.config.settings import Config, SectionSettings
from ncbackup.engine.restore import INDEX_KINDS
from ncbackup.errors import BackupError, ConfigError
from ncbackup.setformat import STATE_COMPLETE, SetInfo, list_sets
from ncbackup.signing import Trust, public_key_path, read_secret_key, trust_from_files
from ncbackup.storage.base import Storage
from ncbackup.storage.retry import with_retries

READ_ATTEMPTS = 3


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, type=Path, help="the JSON config file")
    parser.add_argument("--storage", metavar="SECTION",
                        help="the STORAGE section to read from (default: the first one in the config that can list its sets)")


def add_trust_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-signer", dest="trust_signers", action="append", default=[], type=Path, metavar="FILE",
                        help="also accept sets signed by this public key file (a SIGNING_KEY.pub); repeatable. "
                             "By default the config's SIGNING_KEY.pub and TRUSTED_SIGNERS are trusted")
    parser.add_argument("--allow-unsigned", action="store_true",
                        help="accept sets made before ncbackup signed its sets: nothing then proves who wrote their "
                             "manifest (parts are still checked against it)")


def add_cipher_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-cipher", dest="allow_ciphers", action="append", default=[], metavar="NAME",
                        choices=("none", "openssl-legacy", "age"),
                        help="accept streams with this cipher (none, openssl-legacy or age) although the key in use "
                             "expects another (refused by default: a manifest saying 'none' could bypass age's "
                             "integrity check); repeatable")


def add_set_arguments(parser: argparse.ArgumentParser) -> None:
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--set", dest="set_id", metavar="ID", help="the set id, as 'ncbackup list' shows it")
    choice.add_argument("--latest", action="store_true",
                        help="the newest complete set in which the streams asked for are good (the default)")


@dataclass(frozen=True)
class ConfiguredStorage:
    config: Config
    section: SectionSettings
    storage: Storage


def storage_sections(config: Config) -> list[SectionSettings]:
    from ncbackup.engine.builtins import tool_key

    return [section for section in config.sections if tool_key(section) == "storage"]


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


def trust_for(config: Config, extra_files: list[Path], *, allow_unsigned: bool) -> Trust:
    """The keys whose sets are accepted: SIGNING_KEY.pub of the config (or the public half of SIGNING_KEY when
    the .pub is gone), every TRUSTED_SIGNERS file, and --trust-signer files."""
    from ncbackup.stages.registry import encryption_keys, signing_key_path

    section = encryption_section(config)
    files = [Path(name) for name in encryption_keys(section).trusted_signers] + list(extra_files)
    trust = trust_from_files(files, allow_unsigned=allow_unsigned)
    secret_path = signing_key_path(section, config.path)
    own = public_key_path(secret_path)
    if own.exists():
        own_trust = trust_from_files([own])
    elif secret_path.exists():
        own_trust = Trust(keys=(read_secret_key(secret_path).public,))
    else:
        return trust
    keys = {key.key_id + key.key: key for key in own_trust.keys + trust.keys}
    return Trust(keys=tuple(keys.values()), allow_unsigned=allow_unsigned)


@dataclass(frozen=True)
class ChosenSet:
    info: SetInfo
    notes: tuple[str, ...] = ()


def choose_set(storage: Storage, set_id: str | None, trust: Trust, *, stream_names: Sequence[str] = ()) -> ChosenSet:
    """The named set, or the newest complete one in which the requested streams are good (stream_names, or
    every stream but the file indexes); a set that is not complete (unfinished, unsigned, signed by an
    untrusted key, changed after signing, invalid) is refused with why and what to do instead."""
    sets = list_sets(storage, trust)
    if set_id is not None:
        for info in sets:
            if info.set_id == set_id:
                if info.manifest is None:
                    raise BackupError(_refusal(info, storage))
                return ChosenSet(info)
        raise BackupError(f"there is no set {set_id} on {storage.name}; run `ncbackup list -c ...` to see the sets there")
    complete = [info for info in sets if info.manifest is not None]
    if not complete:
        refused = [info for info in sets if info.state != STATE_COMPLETE]
        if refused:
            raise BackupError(f"there is no usable set on {storage.name}; the newest was refused: {_refusal(refused[-1], storage)}")
        raise BackupError(f"there is no complete set on {storage.name}; run a backup first, or check --storage and the config")
    good = [info for info in complete if not _stream_problems(info, stream_names)]
    notes: tuple[str, ...] = ()
    if not good and not stream_names:
        # No set has every stream good (one database fails every night): the newest with any good stream.
        good = [info for info in complete if _good_streams(info)]
        if good:
            notes = (f"no set has every stream good; set {good[-1].set_id} has "
                     f"{', '.join(_stream_problems(good[-1], ()))}: its other streams are restored",)
    if not good:
        newest = complete[-1]
        wanted = ", ".join(stream_names) if stream_names else "a stream that can be restored"
        raise BackupError(
            f"no complete set on {storage.name} has {wanted}: the newest, {newest.set_id}, has "
            f"{', '.join(_stream_problems(newest, stream_names)) or 'no stream'}; "
            "check `ncbackup list` and --stream, or pick a set with --set"
        )
    chosen = good[-1]
    skipped = [
        f"{info.set_id} ({info.state if info.manifest is None else ', '.join(_stream_problems(info, stream_names))})"
        for info in sets[sets.index(chosen) + 1:]
    ]
    if skipped:
        notes += (f"newer set(s) skipped: {'; '.join(skipped)}",)
    return ChosenSet(chosen, notes)


def _good_streams(info: SetInfo) -> list[str]:
    streams = info.manifest.streams if info.manifest is not None else ()
    return [stream.name for stream in streams if stream.kind not in INDEX_KINDS and stream.is_ok]


def _stream_problems(info: SetInfo, stream_names: Sequence[str]) -> list[str]:
    """What keeps the requested streams of a complete set from being restored: "files failed", "no stream x"."""
    streams = info.manifest.streams if info.manifest is not None else ()
    by_name = {stream.name: stream for stream in streams}
    if stream_names:
        return [f"no stream {name}" if name not in by_name else f"{name} failed"
                for name in dict.fromkeys(stream_names) if name not in by_name or not by_name[name].is_ok]
    problems = [f"{stream.name} failed" for stream in streams
                if stream.kind not in INDEX_KINDS and not stream.is_ok]
    if not problems and not _good_streams(info):
        problems = ["no stream to restore"]
    return problems


def _refusal(info: SetInfo, storage: Storage) -> str:
    """One sentence: which set, why it is refused and what to do (an untrusted one names its signing key)."""
    return info.problem or f"set {info.set_id} on {storage.name} cannot be read; pick another set from `ncbackup list`"


def reading_key_file(config: Config, explicit: Path | None) -> tuple[Path | None, str]:
    """The key to read with (--key-file, else the config's KEY_FILE) and the cipher it says sets must use."""
    from ncbackup.stages.registry import expected_cipher

    key_file = explicit if explicit is not None else default_key_file(config)
    return key_file, expected_cipher(key_file)


def encryption_section(config: Config) -> SectionSettings | None:
    """The config's ENCRYPTION section (the first one), or None without one."""
    from ncbackup.engine.builtins import tool_key

    return next((section for section in config.sections if tool_key(section) == "encryption"), None)


def default_key_file(config: Config) -> Path | None:
    """The KEY_FILE of the config's ENCRYPTION section (its default path when unset), or None without one."""
    from ncbackup.stages.registry import encryption_keys

    section = encryption_section(config)
    return Path(encryption_keys(section).key_file) if section is not None else None
