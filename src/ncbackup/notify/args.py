"""Reading a NOTIFY section's ARGS_DICT and credentials: each problem is a ConfigError naming the key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ncbackup.errors import ConfigError

if TYPE_CHECKING:
    from ncbackup.config.settings import SectionSettings


def args_error(message: str, *, name: str, key: str, section: SectionSettings | None) -> ConfigError:
    """A ConfigError about key ("ARGS_DICT.URL") of NOTIFY section name, placed at ARGS_DICT in the file when known."""
    position = section.parameter_positions.get("ARGS_DICT") if section else None
    if section and position is None:
        position = section.position
    return ConfigError(message, file=position.file if position else None, line=position.line if position else None,
                       key=f"{name}.{key}")


def text_arg(args: Mapping[str, Any], key: str, *, name: str, section: SectionSettings | None,
             default: str | None = None) -> str:
    """ARGS_DICT[key] as a non-empty string; default when absent, ConfigError when absent without one."""
    value = args.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is not None:
            return default
        raise args_error(f"{key} is missing; add it to ARGS_DICT", name=name, key=f"ARGS_DICT.{key}", section=section)
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise args_error(f"{key} must be a string, not {type(value).__name__}", name=name, key=f"ARGS_DICT.{key}", section=section)
    return str(value).strip()


def int_arg(args: Mapping[str, Any], key: str, *, name: str, section: SectionSettings | None,
            default: int, low: int, high: int) -> int:
    """ARGS_DICT[key] as a whole number within low..high (a numeric string is accepted); default when absent."""
    value = args.get(key, default)
    try:
        number = int(str(value).strip())
    except ValueError:
        raise args_error(f"{key} must be a whole number, not {value!r}", name=name, key=f"ARGS_DICT.{key}", section=section) from None
    if not low <= number <= high:
        raise args_error(f"{key} must be between {low} and {high}, not {number}", name=name, key=f"ARGS_DICT.{key}", section=section)
    return number


def credential(credentials: Mapping[str, str], key: str, *, name: str, section: SectionSettings | None) -> str:
    """The value of key in the section's CREDENTIALS_FILE; ConfigError (never quoting a value) when it is missing."""
    value = credentials.get(key, "").strip()
    if not value:
        raise args_error(f"{key} is missing from CREDENTIALS_FILE; add a line {key}=... to that file",
                         name=name, key=f"CREDENTIALS_FILE.{key}", section=section)
    return value
