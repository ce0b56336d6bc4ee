"""Config value types that accept the legacy spellings, and ``parse_options`` to validate a section with them.

Plugins declare their options as a pydantic v2 model whose field aliases are the config keys, using
the types below, and call ``parse_options(Model, section)``. Any mistake becomes ONE ConfigError that
names the file, the line of the offending key, the section, the key and what value is expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ValidationError

from ncbackup.config.legacy import stringify_scalars
from ncbackup.config.settings import Position, SectionSettings
from ncbackup.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)

_TRUE_WORDS = frozenset({"true", "yes", "y", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "n", "off", "0"})
# A Windows drive root ("c:\", "D:/") keeps its separator; every other trailing separator goes.
_DRIVE_ROOT = re.compile(r"[A-Za-z]:[\\/]")
# Keys whose values must never be echoed into an error message.
_SECRET_KEY = re.compile(r"PASS|PWD|SECRET|TOKEN|PRIVATE|CREDENTIAL|(^|_)KEY$", re.IGNORECASE)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ValueError('expected True or False ("true"/"false", "yes"/"no" and "1"/"0" work too)')


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError('expected a whole number such as "5", not a boolean')
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        if re.fullmatch(r"[+-]?\d+\.0*", text):
            return int(float(text))
    raise ValueError('expected a whole number such as "5"')


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError('expected a number such as "20" or "0.5", not a boolean')
    number: float | None = None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise ValueError('expected a number such as "20" or "0.5"')
    return number


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)", re.IGNORECASE)
_SECONDS_PER_UNIT = {"": 1, "s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60,
                     "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400}


def _to_duration_seconds(value: Any) -> float:
    message = 'expected a positive duration: seconds such as "86400", or "90m", "24h", "2d"'
    if isinstance(value, bool):
        raise ValueError(message)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(str(value).strip())
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in _SECONDS_PER_UNIT:
            raise ValueError(message)
        seconds = float(match.group(1)) * _SECONDS_PER_UNIT[unit]
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(message)
    return seconds


def duration_seconds(value: Any) -> float:
    """A positive duration in seconds from "86400", "90m", "24h", "2d"; ValueError otherwise."""
    return _to_duration_seconds(value)


def clean_path_text(text: str) -> str:
    """Strip blanks and trailing separators ("/etc/" -> "/etc"), keeping "/" and a drive root like "c:\\"."""
    text = text.strip()
    while len(text) > 1 and text[-1] in "/\\" and not _DRIVE_ROOT.fullmatch(text):
        text = text[:-1]
    return text


def _to_path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    if isinstance(value, str) and value.strip():
        return Path(clean_path_text(value))
    raise ValueError("expected a path such as \"/var/backup\"")


def _to_path_list(value: Any) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, Path):
        return [value]
    if isinstance(value, str):
        words = value.split()
    elif isinstance(value, (list, tuple)):
        if not all(isinstance(item, (str, Path)) for item in value):
            raise ValueError('expected paths: a space-separated string "/etc /home" or a list ["/etc", "/home"]')
        # A list item is one path even with blanks in it: that is how such a path is written.
        words = list(value)
    else:
        raise ValueError('expected paths: a space-separated string "/etc /home" or a list ["/etc", "/home"]')
    paths: list[Path] = []
    for word in words:
        if isinstance(word, Path):
            paths.append(word)
        elif word.strip():
            paths.append(Path(clean_path_text(word)))
    return paths


def _to_word_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bool):
        raise ValueError('expected space-separated words such as "3306 3307"')
    if isinstance(value, (int, float)):
        return [str(value)]
    if isinstance(value, str):
        return value.split()
    if isinstance(value, (list, tuple)) and all(
        isinstance(item, (str, int, float)) and not isinstance(item, bool) for item in value
    ):
        return [str(item).strip() for item in value if str(item).strip()]
    raise ValueError('expected space-separated words such as "3306 3307" or a list ["3306", "3307"]')


LegacyBool = Annotated[bool, BeforeValidator(_to_bool)]
"""True/False from "True", "true", "False", "yes", "no", "1", "0", 1, 0 or a real JSON boolean."""

LegacyInt = Annotated[int, BeforeValidator(_to_int)]
"""A whole number from "5", " 5 ", "5.0" or a JSON number."""

LegacyFloat = Annotated[float, BeforeValidator(_to_float)]
"""A finite number from "20", "0.5" or a JSON number."""

DurationSeconds = Annotated[float, BeforeValidator(_to_duration_seconds)]
"""A positive duration in seconds from "86400", 86400, "90m", "24h" or "2d" (s, m, h, d; spelled out too)."""

LegacyPath = Annotated[Path, BeforeValidator(_to_path)]
"""One path; blanks and trailing separators are insignificant; Windows paths are kept as written."""

PathList = Annotated[list[Path], BeforeValidator(_to_path_list)]
"""Paths from a space-separated string ("/etc /home/user/") or a JSON list (for paths with blanks)."""

WordList = Annotated[list[str], BeforeValidator(_to_word_list)]
"""Words from a space-separated string ("3306 3307") or a JSON list."""


def _describe_value(key: str, value: Any) -> str:
    if _SECRET_KEY.search(key):
        return "the value given"
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _lookup(data: Mapping[str, Any], loc: tuple[Any, ...]) -> Any:
    current: Any = data
    for step in loc:
        try:
            current = current[step]
        except (KeyError, IndexError, TypeError):
            return None
    return current


def validate_values(
    model: type[ModelT],
    values: Mapping[str, Any],
    *,
    section_name: str,
    positions: Mapping[str, Position],
    fallback: Position | None,
    container: str = "PARAMETERS",
    key_prefix: str = "",
) -> ModelT:
    """Validate config values into model; any problem becomes one ConfigError naming file, line, section and key."""
    # Legacy configs write "" for "not set": let the field's default apply, as for a missing key.
    data = {
        key: value
        for key, value in stringify_scalars(dict(values)).items()
        if value is not None and not (isinstance(value, str) and not value.strip())
    }
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = error.errors()
        # A wrong value says more than a missing key: the user was already looking at that line.
        first = next((problem for problem in problems if problem.get("type") != "missing"), problems[0])
        loc = tuple(first.get("loc", ()))
        key = str(loc[0]) if loc else ""
        key_path = key_prefix + (".".join(str(step) for step in loc) or container)
        position = positions.get(key) or fallback
        if first.get("type") == "missing":
            reason = f"is required; add \"{key}\" to {section_name}'s {container}"
        else:
            message = str(first.get("msg", "invalid value"))
            message = message.removeprefix("Value error, ")
            message = message[:1].lower() + message[1:]
            shown = _describe_value(key_path, _lookup(data, loc))
            reason = f"{message}, got {shown}; fix this value"
        if len(problems) > 1:
            reason += f" ({len(problems) - 1} more problem(s) in this section)"
        raise ConfigError(
            reason,
            file=position.file if position else None,
            line=position.line if position else None,
            column=position.column if position else None,
            key=f"{section_name}.{key_path}",
        ) from None


def parse_options(
    model: type[ModelT],
    section: SectionSettings,
    *,
    parameters: Mapping[str, Any] | None = None,
    within: str | None = None,
) -> ModelT:
    """Validate section.parameters (or the given dict) into model, raising one ConfigError that names the line and key.

    ``within`` names the key that holds ``parameters`` (e.g. "ARGS_DICT" or "KEEP"), so an error
    points at that key's line and reads "STORAGE.ARGS_DICT.PORT".
    """
    parameters_position = section.key_positions.get("PARAMETERS") or section.position
    if parameters is None:
        return validate_values(
            model, section.parameters, section_name=section.name,
            positions=section.parameter_positions, fallback=parameters_position,
        )
    if within is not None:
        holder = section.parameter_positions.get(within) or section.key_positions.get(within) or section.position
        return validate_values(
            model, parameters, section_name=section.name, positions={},
            fallback=holder, container=within, key_prefix=f"{within}.",
        )
    return validate_values(
        model, parameters, section_name=section.name,
        positions={**section.key_positions, **section.parameter_positions}, fallback=parameters_position,
    )
