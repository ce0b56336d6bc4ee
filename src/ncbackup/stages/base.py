"""What a stage is: a byte transform (compression, encryption) usable in both directions."""

from __future__ import annotations

from typing import BinaryIO, Protocol


class Stage(Protocol):
    name: str     # "zstd", "gzip", "none", "age", "openssl-legacy"
    suffix: str   # added to the stream's file name: ".zst", ".gz", "", ".age", ".crypt"

    def writer(self, sink: BinaryIO) -> BinaryIO:
        """Return a writable stream; closing it writes the trailer into sink but does not close sink."""
        ...

    def reader(self, source: BinaryIO) -> BinaryIO:
        """Return a readable stream of the transformed-back bytes of source."""
        ...

    def describe(self) -> dict[str, object]:
        """What the manifest records about this stage (codec, level, cipher, recipient fingerprints)."""
        ...
