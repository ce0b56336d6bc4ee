"""Config value types that accept the legacy spellings, and ``parse_options`` to validate a section with them.

Plugins declare their options as a pydantic v2 model whose field aliases are the config keys, using
the types below, and call ``parse_options(Model, section)``. Any mistake becomes ONE ConfigError that
names the file, the line of the offending key, the section, the key and what value is expected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ValidationError

from ncbackup.config.legacy import stringify_scalars
from ncbackup.config.settings import Position, SectionSettings
from ncbackup.config.values import to_bool, to_duration_seconds, to_float, to_int, to_path, to_path_list, to_word_list
from ncbackup.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)

# Keys whose values must never be echoed into an error message.
_SECRET_KEY = re.compile(r"PASS|PWD|SECRET|TOKEN|PRIVATE|CREDENTIAL|(^|_)KEY$", re.IGNORECASE)


LegacyBool = Annotated[bool, BeforeValidator(to_bool)]
"""True/False from "True", "true", "False", "yes", "no", "1", "0", 1, 0 or a real JSON boolean."""

LegacyInt = Annotated[int, BeforeValidator(to_int)]
"""A whole number from "5", " 5 ", "5.0" or a JSON number."""

LegacyFloat = Annotated[float, BeforeValidator(to_float)]
"""A finite number from "20", "0.5" or a JSON number."""

DurationSeconds = Annotated[float, BeforeValidator(to_duration_seconds)]
"""A positive duration in seconds from "86400", 86400, "90m", "24h" or "2d" (s, m, h, d; spelled out too)."""

LegacyPath = Annotated[Path, BeforeValidator(to_path)]
"""One path; blanks and trailing separators are insignificant; Windows paths are kept as written."""

PathList = Annotated[list[Path], BeforeValidator(to_path_list)]
"""Paths from a space-separated string ("/etc /home/user/") or a JSON list (for paths with blanks)."""

WordList = Annotated[list[str], BeforeValidator(to_word_list)]
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
