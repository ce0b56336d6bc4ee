"""What the database sources share: option parsing, private temp files for secrets, stream copying.

Private helper module (not a plugin, so not in the registry): mysql, postgres, mongo and sqlite use it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TypeVar

from pydantic import BaseModel, BeforeValidator, ValidationError

from ncbackup.errors import ConfigError
from ncbackup.process import which

COPY_CHUNK_BYTES = 4 << 20

ModelT = TypeVar("ModelT", bound=BaseModel)

try:  # the config engineer's shared legacy types, when they have landed
    from ncbackup.config.types import LegacyBool, LegacyInt, PathList, WordList
except ImportError:  # pragma: no cover - fallback until config/types.py exists

    def _legacy_bool(value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("true", "yes", "1", "on"):
                return True
            if text in ("false", "no", "0", "off", ""):
                return False
        return value

    def _words(value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return [str(value)]
        if isinstance(value, str):
            return value.split()
        return value

    def _paths(value: Any) -> Any:
        words = _words(value)
        if isinstance(words, list):
            return [Path(str(word).rstrip("/") or "/") for word in words if str(word).strip()]
        return words

    def _legacy_int(value: Any) -> Any:
        if isinstance(value, str):
            return int(value.strip())
        return value

    LegacyBool = Annotated[bool, BeforeValidator(_legacy_bool)]  # type: ignore[misc]
    LegacyInt = Annotated[int, BeforeValidator(_legacy_int)]  # type: ignore[misc]
    WordList = Annotated[list[str], BeforeValidator(_words)]  # type: ignore[misc]
    PathList = Annotated[list[Path], BeforeValidator(_paths)]  # type: ignore[misc]

__all__ = ["LegacyBool", "LegacyInt", "PathList", "WordList", "copy_stream", "parse_db_options", "secret_file"]


def drop_blank_values(values: Any) -> Any:
    """Drop PARAMETERS entries whose value is blank: legacy configs write "" for "not set"."""
    if isinstance(values, dict):
        return {key: value for key, value in values.items() if not (isinstance(value, str) and not value.strip())}
    return values


def parse_db_options(model: type[ModelT], section) -> ModelT:
    """Parse a section's PARAMETERS into model; a bad value raises ConfigError naming the key."""
    try:
        from ncbackup.config.types import parse_options
    except ImportError:  # pragma: no cover - until config/types.py lands
        parse_options = None
    if parse_options is not None:
        return parse_options(model, section)
    try:
        return model.model_validate(dict(section.parameters or {}))
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first.get("loc", ())) or None
        position = section.position
        raise ConfigError(
            f"{first.get('msg', 'invalid value')}; fix this value in section {section.name}",
            file=position.file if position else None,
            line=position.line if position else None,
            key=key,
        ) from None


@contextmanager
def secret_file(content: str, *, folder: Path | None = None, suffix: str = "") -> Iterator[Path]:
    """Yield a fresh 0600 file holding content (a password, an option file); it is removed on exit."""
    # mkstemp creates the file with mode 0600 atomically, before any secret is written to it.
    descriptor, name = tempfile.mkstemp(prefix=".ncbackup-", suffix=suffix, dir=folder)
    path = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
        yield path
    finally:
        path.unlink(missing_ok=True)


def copy_stream(reader: BinaryIO, sink: BinaryIO) -> int:
    """Copy reader into sink in big chunks until EOF; return the number of bytes copied."""
    total_bytes = 0
    while True:
        chunk = reader.read(COPY_CHUNK_BYTES)
        if not chunk:
            return total_bytes
        sink.write(chunk)
        total_bytes += len(chunk)


def find_program(configured: str | Path | None, *candidates: str) -> str:
    """Return the configured program or the first candidate found on PATH (else the first candidate)."""
    if configured:
        return str(configured)
    for candidate in candidates:
        if which(candidate):
            return candidate
    return candidates[0]
