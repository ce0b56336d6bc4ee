"""Stages from config sections (writing) and from a manifest's codec/cipher names (reading)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.config.values import Reader, read_plain, to_path, to_word_list
from ncbackup.errors import ConfigError, DecryptError
from ncbackup.stages.age import AgeStage
from ncbackup.stages.base import Stage
from ncbackup.stages.compress import GzipStage, NoCompression, ZstdStage
from ncbackup.stages.keys import (
    KIND_AGE_IDENTITY,
    KIND_PASSPHRASE,
    KIND_RECIPIENTS,
    KIND_SSH_IDENTITY,
    read_key_file,
    write_identity_file,
)

log = logging.getLogger(__name__)

DEFAULT_KEY_FILE = Path("/etc/nc-backup-py/key_file")
DEFAULT_SIGNING_KEY_NAME = "signing.key"     # in KEY_FILE's folder unless SIGNING_KEY says otherwise
DEFAULT_FILE_SIZE_MB = 4000
BYTES_PER_MB = 1024 * 1024   # the original split with `split -b <N>M`: binary megabytes
DEFAULT_ZSTD_LEVEL = 3
DEFAULT_GZIP_LEVEL = 6
# A new zstd frame every this many MiB of plain data (a seekable stream, see stages/compress.py): 4 MiB cost
# 0.27 % of size on bench's 1 GiB corpus (level 3, 2 threads) and bounds what a selective restore decompresses.
DEFAULT_SEEK_FRAME_MB = 4
ALGORITHMS = ("zstd", "gzip", "none")


class NoEncryption:
    """Bytes stored as they are (no ENCRYPTION section)."""

    name = "none"
    suffix = ""

    def writer(self, sink: BinaryIO) -> BinaryIO:
        return NoCompression().writer(sink)

    def reader(self, source: BinaryIO) -> BinaryIO:
        return source

    def describe(self) -> dict[str, object]:
        return {"cipher": self.name}


@dataclass(frozen=True)
class EncryptionChoice:
    """What the ENCRYPTION section decided: the stage, the part size (None = one part) and warnings for the run."""

    stage: Stage
    part_size_bytes: int | None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class EncryptionKeys:
    """The ENCRYPTION keys a reading command needs (config/values.read_plain; EncryptionOptions words any error)."""

    key_file: Path = DEFAULT_KEY_FILE
    signing_key: Path | None = None
    trusted_signers: tuple[str, ...] = ()


ENCRYPTION_READERS: dict[str, Reader] = {
    "KEY_FILE": ("key_file", to_path, DEFAULT_KEY_FILE),
    "SIGNING_KEY": ("signing_key", to_path, None),
    "TRUSTED_SIGNERS": ("trusted_signers", lambda value: tuple(to_word_list(value)), ()),
}


def encryption_keys(section: SectionSettings | None) -> EncryptionKeys:
    """The ENCRYPTION keys that decide where the keys are; the defaults when the config has no such section.

    Read without pydantic when every value is plainly valid (reading commands start faster); otherwise the
    section goes through EncryptionOptions, whose ConfigError names the key and line."""
    if section is None:
        return EncryptionKeys()
    fields = read_plain({key: value for key, value in section.parameters.items() if key in ENCRYPTION_READERS},
                        ENCRYPTION_READERS)
    if fields is None:
        from ncbackup.config.types import parse_options
        from ncbackup.stages.options import EncryptionOptions

        options = parse_options(EncryptionOptions, section)
        fields = {"key_file": options.key_file, "signing_key": options.signing_key,
                  "trusted_signers": tuple(options.trusted_signers)}
    return EncryptionKeys(**fields)


def signing_key_path(section: SectionSettings | None, config_path: Path) -> Path:
    """SIGNING_KEY, by default ``signing.key`` beside KEY_FILE; with no ENCRYPTION section, beside the config file
    (sets are signed even when they are not encrypted, and nothing is written to /etc unasked)."""
    if section is None:
        return Path(config_path).resolve().parent / DEFAULT_SIGNING_KEY_NAME
    options = encryption_keys(section)
    return Path(options.signing_key) if options.signing_key else Path(options.key_file).parent / DEFAULT_SIGNING_KEY_NAME


def expected_cipher(key_file: Path | None) -> str:
    """The cipher the reading side's key says sets must use: "age", "openssl-legacy" (a legacy passphrase), or
    "none" (no key at all). A key file that does not exist yet would become an age identity, so: age."""
    if key_file is None:
        return "none"
    if not Path(key_file).exists():
        return "age"
    return "openssl-legacy" if read_key_file(Path(key_file)).kind == KIND_PASSPHRASE else "age"


def compression_from_section(section: SectionSettings | None, general: GeneralSettings) -> Stage:
    """The COMPRESSION section's codec (ALGORITHM, LEVEL, THREADS, SEEK_FRAME_MB); no section = seekable zstd level 3 on every core."""
    if section is None:
        return ZstdStage(level=DEFAULT_ZSTD_LEVEL, threads=-1, seek_frame_bytes=DEFAULT_SEEK_FRAME_MB << 20)
    from ncbackup.config.types import parse_options
    from ncbackup.stages.options import CompressionOptions

    options = parse_options(CompressionOptions, section)
    if options.algorithm == "zstd":
        level = DEFAULT_ZSTD_LEVEL if options.level is None else options.level
        if not -7 <= level <= 22:
            raise _level_error(section, "zstd levels go from -7 (fastest) to 22 (smallest)")
        return ZstdStage(level=level, threads=options.threads, seek_frame_bytes=options.seek_frame_mb << 20)
    if options.algorithm == "gzip":
        level = DEFAULT_GZIP_LEVEL if options.level is None else options.level
        if not 1 <= level <= 9:
            raise _level_error(section, "gzip levels go from 1 to 9")
        return GzipStage(level=level)
    return NoCompression()


def _level_error(section: SectionSettings, why: str) -> ConfigError:
    position = section.parameter_positions.get("LEVEL") or section.position
    return ConfigError(
        f"LEVEL is out of range: {why}; fix LEVEL",
        file=position.file if position else None,
        line=position.line if position else None,
        key=f"{section.name}.LEVEL",
    )


def part_size_from_mb(file_size_mb: float) -> int | None:
    """FILE_SIZE in MB -> bytes per part; below 1 means one part (no split), as in the original."""
    if file_size_mb < 1:
        return None
    return int(file_size_mb * BYTES_PER_MB)


def encryption_from_section(section: SectionSettings | None, general: GeneralSettings) -> EncryptionChoice:
    """The ENCRYPTION section's cipher and part size; no section = unencrypted (warned), a missing KEY_FILE is created."""
    if section is None:
        return EncryptionChoice(
            stage=NoEncryption(),
            part_size_bytes=None,
            warnings=("there is no ENCRYPTION section: backups are stored unencrypted; add one (see `ncbackup keygen`)",),
        )
    from ncbackup.config.types import parse_options
    from ncbackup.stages.options import EncryptionOptions

    options = parse_options(EncryptionOptions, section)
    part_size_bytes = part_size_from_mb(options.file_size_mb)
    key_file = Path(options.key_file)
    warnings: list[str] = []
    if not key_file.exists() and not key_file.is_symlink():
        recipient = write_identity_file(key_file)
        message = (
            f"KEY_FILE {key_file} did not exist: created a NEW age identity there (public key {recipient}); "
            f"COPY {key_file} SOMEWHERE SAFE NOW, without it these backups cannot be restored"
        )
        log.warning("!!! %s !!!", message)
        warnings.append(message)
    material = read_key_file(key_file)
    warnings.extend(material.warnings)
    if material.kind in (KIND_AGE_IDENTITY, KIND_RECIPIENTS):
        return EncryptionChoice(
            stage=AgeStage(recipients=material.recipients), part_size_bytes=part_size_bytes, warnings=tuple(warnings),
        )
    if material.kind == KIND_SSH_IDENTITY:
        raise ConfigError(
            f"KEY_FILE {key_file} holds an ssh private key; for backups put its public key (ssh-ed25519 ...) in KEY_FILE instead",
            key=f"{section.name}.KEY_FILE",
        )
    from ncbackup.stages.legacy_openssl import LegacyOpenSSLStage

    warnings.append(
        f"KEY_FILE {key_file} holds a legacy passphrase: backups use the old OpenSSL AES-CBC format; "
        "run `ncbackup keygen` and point KEY_FILE at the new identity to switch to age"
    )
    return EncryptionChoice(
        stage=LegacyOpenSSLStage(material.passphrase or b""), part_size_bytes=part_size_bytes, warnings=tuple(warnings),
    )


def compression_for(codec: str) -> Stage:
    """The stage that reads a manifest's codec ("zstd", "gzip", "none")."""
    if codec == "zstd":
        return ZstdStage(threads=0)
    if codec == "gzip":
        return GzipStage()
    if codec == "none":
        return NoCompression()
    raise DecryptError(f"unknown compression {codec!r} in the manifest; use a newer ncbackup to read this set")


def decryption_for(cipher: str, key_file: Path | None) -> Stage:
    """The stage that reads a manifest's cipher ("age", "openssl-legacy", "none") with the given key file."""
    if cipher == "none":
        return NoEncryption()
    if cipher not in ("age", "openssl-legacy"):
        raise DecryptError(f"unknown cipher {cipher!r} in the manifest; use a newer ncbackup to read this set")
    if key_file is None:
        raise DecryptError(f"this stream is encrypted ({cipher}); give the key file with --key-file")
    material = read_key_file(Path(key_file))
    if cipher == "age":
        if material.kind == KIND_RECIPIENTS:
            raise DecryptError(
                f"key file {key_file} holds only public recipients, which cannot decrypt; use the identity file (AGE-SECRET-KEY-1...)"
            )
        if material.kind == KIND_PASSPHRASE:
            raise DecryptError(
                f"key file {key_file} holds a legacy passphrase but this stream is age-encrypted; use the age identity file"
            )
        return AgeStage(recipients=material.recipients, identities=material.identities)
    if material.kind != KIND_PASSPHRASE:
        raise DecryptError(
            f"this stream uses the legacy OpenSSL format but key file {key_file} holds an age/ssh key; use the legacy key file"
        )
    from ncbackup.stages.legacy_openssl import LegacyOpenSSLStage

    return LegacyOpenSSLStage(material.passphrase or b"")
