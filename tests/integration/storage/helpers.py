"""Building STORAGE sections the way the config loader hands them to a backend."""

from __future__ import annotations

import io
import os
from pathlib import Path

from ncbackup.config.settings import GeneralSettings, SectionSettings


def general(tmp_path: Path, hostname: str = "web1") -> GeneralSettings:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return GeneralSettings(hostname=hostname, work_folder=work)


def storage_section(destination: str, args: dict | None = None, **parameters) -> SectionSettings:
    values = {"DESTINATION": destination, "ARGS_DICT": dict(args or {})}
    values.update(parameters)
    return SectionSettings(name="STORAGE", action="execute", module="storage", parameters=values)


def random_bytes(size_bytes: int) -> bytes:
    return os.urandom(size_bytes)


class TrickleStream(io.RawIOBase):
    """A non-seekable stream that returns short reads, like a pipe."""

    def __init__(self, data: bytes, read_bytes: int = 65536) -> None:
        self._data = memoryview(data)
        self._position = 0
        self._read_bytes = read_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = min(len(buffer), self._read_bytes, len(self._data) - self._position)
        buffer[:size] = self._data[self._position:self._position + size]
        self._position += size
        return size


def read_all(stream) -> bytes:
    try:
        return stream.read()
    finally:
        stream.close()

