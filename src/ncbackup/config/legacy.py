"""The one place where nc-backup-py's legacy spellings become ncbackup's normal form.

TARGETS -> OBJECTIVES, REMOVE_TARGETS -> REMOVE_OBJECTIVES, ARGS_DICT / UPLOAD_COMMAND_DICT
(a Python-literal dict in a string) -> dict, and JSON numbers/booleans -> their string forms, so a
value reads the same whether the config wrote ``"5"`` or ``5``, ``"True"`` or ``true``.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from ncbackup.config.settings import Position
from ncbackup.errors import ConfigError

# Old spelling -> normal spelling. Either may appear anywhere; both in one place is a mistake.
KEY_ALIASES: dict[str, str] = {
    "TARGETS": "OBJECTIVES",
    "REMOVE_TARGETS": "REMOVE_OBJECTIVES",
}

# Keys whose value the original wrote as a Python-literal dict inside a JSON string.
LITERAL_DICT_KEYS: frozenset[str] = frozenset({"ARGS_DICT", "UPLOAD_COMMAND_DICT"})


def is_comment_key(key: str) -> bool:
    """Keys starting with "__" (``__READTHIS``) are comments, ignored at every level."""
    return key.startswith("__")


def scalar_text(value: bool | int | float | str) -> str:
    """The string the original's configs would have held: True -> "True", 5 -> "5"."""
    if isinstance(value, str):
        return value
    return str(value)  # bool before int matters not: str(True) == "True", the legacy spelling


def stringify_scalars(value: Any) -> Any:
    """Turn every JSON number and boolean inside value into its string form; dicts and lists keep their shape."""
    if isinstance(value, Mapping):
        return {key: stringify_scalars(item) for key, item in value.items()}
    if isinstance(value, list):
        return [stringify_scalars(item) for item in value]
    if isinstance(value, (bool, int, float)):
        return scalar_text(value)
    return value


def parse_literal_dict(value: Any, *, key: str, position: Position | None) -> dict[str, Any]:
    """Parse an ARGS_DICT-style value: a JSON object, or a string holding a Python-literal dict (never eval)."""
    if isinstance(value, Mapping):
        return dict(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    problem = None
    if isinstance(value, str):
        try:
            parsed = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            problem = "is not a valid Python-literal dict"
        else:
            if isinstance(parsed, dict):
                return parsed
            problem = f"holds a {type(parsed).__name__}, not a dict"
    else:
        problem = "is not a string holding a dict"
    raise ConfigError(
        f"{problem}; write it like \"{{'BUCKET': 'ncbackup', 'PORT': '22'}}\" (quotes inside, braces around)",
        file=position.file if position else None,
        line=position.line if position else None,
        column=position.column if position else None,
        key=key,
    )


def normalise_keys(
    values: Mapping[str, Any],
    positions: Mapping[str, Position],
    *,
    where: str,
) -> tuple[dict[str, Any], dict[str, Position]]:
    """Apply the aliases and literal-dict parsing to one level of keys; return the values and their positions.

    ``where`` names the place for errors ("STORAGE.PARAMETERS"). Values keep their JSON types here;
    ``stringify_scalars`` is a separate step so that raw copies stay as written.
    """
    normal: dict[str, Any] = {}
    normal_positions: dict[str, Position] = {}
    spelled_as: dict[str, str] = {}
    for key, value in values.items():
        if is_comment_key(key):
            continue
        name = KEY_ALIASES.get(key, key)
        position = positions.get(key)
        if name in spelled_as:
            first = spelled_as[name]
            first_position = normal_positions.get(name)
            first_line = f" (line {first_position.line})" if first_position else ""
            raise ConfigError(
                f"both {first}{first_line} and {key} are given, and they mean the same thing; keep only one",
                file=position.file if position else None,
                line=position.line if position else None,
                column=position.column if position else None,
                key=f"{where}.{key}",
            )
        spelled_as[name] = key
        if name in LITERAL_DICT_KEYS:
            value = parse_literal_dict(value, key=f"{where}.{key}", position=position)
        normal[name] = value
        if position is not None:
            normal_positions[name] = position
    return normal, normal_positions
