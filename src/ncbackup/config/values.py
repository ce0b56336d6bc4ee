"""Config value conversions that accept the legacy spellings, without pydantic.

``config/types.py`` wraps them as pydantic types for the option models; the GENERAL section is read with them
directly on every start (``config/load.py``), so that ``list`` and ``restore`` need not import pydantic at all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ncbackup import platform
from ncbackup.config.legacy import stringify_scalars

_TRUE_WORDS = frozenset({"true", "yes", "y", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "n", "off", "0"})
# A Windows drive root ("c:\", "D:/") keeps its separator; every other trailing separator goes.
_DRIVE_ROOT = re.compile(r"[A-Za-z]:[\\/]")


def to_bool(value: Any) -> bool:
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


def to_int(value: Any) -> int:
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


def to_float(value: Any) -> float:
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


def to_duration_seconds(value: Any) -> float:
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


def clean_path_text(text: str) -> str:
    """Strip blanks and trailing separators ("/etc/" -> "/etc"), keeping "/" and a drive root like "c:\\"."""
    text = text.strip()
    while len(text) > 1 and text[-1] in "/\\" and not _DRIVE_ROOT.fullmatch(text):
        text = text[:-1]
    return text


def _checked_path(text: str) -> Path:
    """text as a Path; a Windows path (or any path on Windows) must follow Windows' rules (ValueError saying which)."""
    text = clean_path_text(text)
    if platform.IS_WINDOWS or platform.looks_like_windows_path(text):
        problem = platform.windows_path_problem(text)
        if problem is not None:
            raise ValueError(f"not a usable Windows path: {problem}")
    return Path(text)


def to_path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    if isinstance(value, str) and value.strip():
        return _checked_path(value)
    raise ValueError("expected a path such as \"/var/backup\" (on Windows \"c:\\\\backup\")")


def to_percent(value: Any) -> Any:
    # "20%" reads as 20: the unit is already percent.
    if isinstance(value, str):
        return value.strip().removesuffix("%")
    return value


def to_method(value: Any) -> str:
    method = str(value).strip().lower() or "post"
    if method not in ("post", "email", "sms", "wechat"):
        raise ValueError('expected "post", "email", "sms" or "wechat" (email, sms and wechat take their settings from '
                         'a NOTIFY section of that METHOD: see docs/notify.md)')
    return method


def to_path_list(value: Any) -> list[Path]:
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
            paths.append(_checked_path(word))
    return paths


def to_word_list(value: Any) -> list[str]:
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


Reader = tuple[str, Callable[[Any], Any], Any]
"""A key's reader: (field name, conversion, default when the key is absent or blank)."""


def read_plain(values: Mapping[str, Any], readers: Mapping[str, Reader]) -> dict[str, Any] | None:
    """Field name -> value for the keys readers know, converted as the pydantic types of config/types.py would; None
    when any value is not plainly valid (the caller then validates with its model, which words the error).
    Values are prepared as config/types.validate_values prepares them: scalars as text, blanks as absent."""
    prepared = {key: value for key, value in stringify_scalars(dict(values)).items()
                if value is not None and not (isinstance(value, str) and not value.strip())}
    fields: dict[str, Any] = {}
    for key, (field_name, convert, default) in readers.items():
        if key not in prepared:
            fields[field_name] = default
            continue
        try:
            fields[field_name] = convert(prepared[key])
        except (ValueError, TypeError):
            return None
    return fields


def to_text(value: Any) -> str:
    """A str field: text only (pydantic does not make text of numbers, and config/types makes scalars text first)."""
    if not isinstance(value, str):
        raise ValueError("expected text")
    return value


def positive(number: float) -> float:
    if not number > 0:
        raise ValueError("expected a positive number")
    return number
