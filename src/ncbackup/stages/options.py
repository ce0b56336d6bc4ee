"""The COMPRESSION and ENCRYPTION sections' options as pydantic models: read when a backup is set up, and for the
docs. Reading commands (list, verify, restore) take the few ENCRYPTION keys they need without pydantic
(``stages/registry.encryption_keys``), falling back to these models to word any error.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ncbackup.config.types import LegacyFloat, LegacyInt, LegacyPath, WordList
from ncbackup.stages.registry import (
    ALGORITHMS,
    DEFAULT_FILE_SIZE_MB,
    DEFAULT_GZIP_LEVEL,
    DEFAULT_KEY_FILE,
    DEFAULT_SEEK_FRAME_MB,
    DEFAULT_SIGNING_KEY_NAME,
    DEFAULT_ZSTD_LEVEL,
)


class CompressionOptions(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    algorithm: str = Field(
        "zstd", alias="ALGORITHM", json_schema_extra={"allowed": list(ALGORITHMS)},
        description="(new) the codec; `none` stores the data as it is",
    )
    level: LegacyInt | None = Field(
        None, alias="LEVEL",
        json_schema_extra={
            "shown_default": f"zstd {DEFAULT_ZSTD_LEVEL}, gzip {DEFAULT_GZIP_LEVEL}",
            "allowed": "zstd -7 to 22, gzip 1 to 9",
        },
        description="(new) the compression level: higher is smaller and slower",
    )
    threads: LegacyInt = Field(
        -1, alias="THREADS", description="(new) zstd worker threads; `-1`: one per core, `0`: none (compress on the "
                                         "reading thread)",
    )
    seek_frame_mb: LegacyInt = Field(
        DEFAULT_SEEK_FRAME_MB, alias="SEEK_FRAME_MB", ge=0, le=1024,
        description="(new) zstd starts a new frame every this many MiB of plain data and ends the stream with a "
                    "seek table (stock `zstd -d` reads it as usual), so `restore --path` reads only the frames "
                    "holding the chosen files; `0`: one frame, not seekable",
    )

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ALGORITHMS:
            raise ValueError('expected "zstd", "gzip" or "none"')
        return value


class EncryptionOptions(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    key_file: LegacyPath = Field(
        DEFAULT_KEY_FILE, alias="KEY_FILE",
        description="an age identity (`AGE-SECRET-KEY-...`), a recipients file (`age1...` or ssh public keys: the "
                    "server can write backups it cannot read), or a legacy passphrase key file of the original. When "
                    "missing, a new age identity is created there (mode 0600) and the run warns loudly: **copy it "
                    "somewhere safe**. A file holding a secret (identity, ssh private key, passphrase) that group or "
                    "others may read is refused (exit 3: `chmod 600` it)",
    )
    file_size_mb: LegacyFloat = Field(
        DEFAULT_FILE_SIZE_MB, alias="FILE_SIZE", description="MB (MiB, as `split -b <N>M`) per part; below 1: one "
                                                             "part, no split",
    )
    signing_key: LegacyPath | None = Field(
        None, alias="SIGNING_KEY",
        json_schema_extra={"shown_default": f"`{DEFAULT_SIGNING_KEY_NAME}` beside `KEY_FILE`"},
        description="the key that signs every set's manifest (minisign Ed25519, unencrypted, mode 0600; group- or "
                    "world-readable is refused). When missing, it is created (with `SIGNING_KEY.pub` beside it) and "
                    "the run warns loudly: **keep a copy of the .pub**. Not needed to restore. Without an "
                    f"ENCRYPTION section: `{DEFAULT_SIGNING_KEY_NAME}` beside the config file",
    )
    trusted_signers: WordList = Field(
        default_factory=list, alias="TRUSTED_SIGNERS",
        description="public key files (`.pub`) of other signers whose sets `list`, `verify` and `restore` also "
                    "accept, besides this config's own `SIGNING_KEY.pub`",
    )
