"""SHA-256 of parts, computed as the bytes stream by (hashlib releases the GIL on big buffers)."""

from __future__ import annotations

import hashlib
from typing import BinaryIO

HASH_READ_BYTES = 4 << 20


class PartDigest:
    """Running size and SHA-256 of one part."""

    __slots__ = ("_sha256", "size_bytes")

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self.size_bytes = 0

    def update(self, data: bytes | memoryview) -> None:
        self._sha256.update(data)
        self.size_bytes += len(data)

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


def digest_stream(stream: BinaryIO) -> tuple[int, str]:
    """Read stream to EOF: (size in bytes, SHA-256 hex)."""
    digest = PartDigest()
    while True:
        chunk = stream.read(HASH_READ_BYTES)
        if not chunk:
            return digest.size_bytes, digest.hexdigest()
        digest.update(chunk)
