"""KEY_FILE contents: age identities, age/ssh recipients (a write-only server), or a legacy passphrase.

A key file holding ``AGE-SECRET-KEY-1...`` lines (comments allowed; optionally followed by extra
recipients, such as an offsite key) is an age identity: the server can write and read its backups. A file
holding only recipients (``age1...``,
``ssh-ed25519 ...``, ``ssh-rsa ...`` lines) lets the server write backups it cannot read. An
OpenSSH private key file is an ssh identity (for reading). Anything else is the original tool's
passphrase: the file's content with newlines removed.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ncbackup import platform
from ncbackup.errors import BackupError, ConfigError

KIND_AGE_IDENTITY = "age-identity"
KIND_SSH_IDENTITY = "ssh-identity"
KIND_RECIPIENTS = "recipients"
KIND_PASSPHRASE = "passphrase"  # noqa: S105 - the name of a kind of key file, not a password

RECIPIENT_HRP = "age"
IDENTITY_HRP = "age-secret-key-"
SSH_RECIPIENT_PREFIXES = ("ssh-ed25519 ", "ssh-rsa ")
SSH_PRIVATE_KEY_MARKER = "-----BEGIN OPENSSH PRIVATE KEY-----"


# --- bech32 (BIP 173), the encoding of age keys ---------------------------------------------

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            checksum ^= _GENERATOR[i] if (top >> i) & 1 else 0
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, *, pad: bool) -> list[int] | None:
    accumulator, bits, out = 0, 0, []
    max_value = (1 << to_bits) - 1
    for value in data:
        accumulator = (accumulator << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((accumulator >> bits) & max_value)
    if pad:
        if bits:
            out.append((accumulator << (to_bits - bits)) & max_value)
    elif bits >= from_bits or ((accumulator << (to_bits - bits)) & max_value):
        return None
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    """Encode data under a human-readable part (lower case)."""
    words = _convert_bits(data, 8, 5, pad=True) or []
    checksum_value = _polymod(_hrp_expand(hrp) + words + [0] * 6) ^ 1
    checksum = [(checksum_value >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)


def bech32_decode(text: str) -> tuple[str, bytes] | None:
    """Return (hrp, data) of a bech32 string (either case, not mixed), or None if it is not valid."""
    if text.lower() != text and text.upper() != text:
        return None
    text = text.lower()
    position = text.rfind("1")
    if position < 1 or position + 7 > len(text):
        return None
    hrp, rest = text[:position], text[position + 1:]
    if any(c not in _CHARSET for c in rest):
        return None
    words = [_CHARSET.index(c) for c in rest]
    if _polymod(_hrp_expand(hrp) + words) != 1:
        return None
    data = _convert_bits(words[:-6], 5, 8, pad=False)
    return (hrp, bytes(data)) if data is not None else None


# --- age X25519 keys --------------------------------------------------------------------------


def parse_x25519_recipient(text: str) -> bytes | None:
    """The 32-byte public key of an ``age1...`` recipient, or None if text is not one."""
    decoded = bech32_decode(text.strip())
    if decoded is None or decoded[0] != RECIPIENT_HRP or len(decoded[1]) != 32:
        return None
    return decoded[1]


def parse_x25519_identity(text: str) -> bytes | None:
    """The 32-byte secret scalar of an ``AGE-SECRET-KEY-1...`` identity, or None if text is not one."""
    decoded = bech32_decode(text.strip())
    if decoded is None or decoded[0] != IDENTITY_HRP or len(decoded[1]) != 32:
        return None
    return decoded[1]


def recipient_of_identity(identity: str) -> str:
    """The ``age1...`` recipient matching an ``AGE-SECRET-KEY-1...`` identity."""
    secret = parse_x25519_identity(identity)
    if secret is None:
        raise ValueError("not an age identity")
    public = X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return bech32_encode(RECIPIENT_HRP, public)


def generate_identity() -> tuple[str, str]:
    """A new age X25519 key pair: (identity ``AGE-SECRET-KEY-1...``, recipient ``age1...``)."""
    secret = os.urandom(32)
    identity = bech32_encode(IDENTITY_HRP, secret).upper()
    return identity, recipient_of_identity(identity)


def recipient_fingerprint(recipient: str) -> str:
    """A short public fingerprint of a recipient for the manifest: 16 hex digits of its SHA-256."""
    normalised = " ".join(recipient.split()[:2])  # ssh keys: drop the comment
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()[:16]


# --- key files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyMaterial:
    """What a KEY_FILE holds, classified. Secrets are excluded from repr so they never reach a log."""

    kind: str                                            # one of the KIND_* constants
    path: Path
    identities: tuple[str, ...] = field(default=(), repr=False)   # age identities or one ssh private key
    recipients: tuple[str, ...] = ()                      # public: age1..., ssh-ed25519 ..., ssh-rsa ...
    passphrase: bytes | None = field(default=None, repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def can_decrypt(self) -> bool:
        return self.kind in (KIND_AGE_IDENTITY, KIND_SSH_IDENTITY, KIND_PASSPHRASE)


def _meaningful_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


_AGE_KEY_SHAPE = re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]+|age1[0-9a-z]+")


def _looks_like_age_key(line: str) -> bool:
    # Only whole bech32-shaped words count: a legacy passphrase that merely starts with "age1" stays a passphrase.
    return _AGE_KEY_SHAPE.fullmatch(line) is not None or line.startswith(SSH_RECIPIENT_PREFIXES)


def classify_key_text(text: bytes, *, path: Path) -> KeyMaterial:
    """Classify key file bytes (see the module docstring); ConfigError for a line that looks like an age key but is not one.

    Identities may be followed by extra recipients (an offsite key): backups are then encrypted to
    the identities' own recipients and to those.
    """
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        decoded = None
    if decoded is not None:
        if SSH_PRIVATE_KEY_MARKER in decoded:
            return KeyMaterial(kind=KIND_SSH_IDENTITY, path=path, identities=(decoded,))
        lines = _meaningful_lines(decoded)
        if lines and any(_looks_like_age_key(line) for line in lines):
            identities: list[str] = []
            recipients: list[str] = []
            for number, line in enumerate(lines, start=1):
                if parse_x25519_identity(line) is not None:
                    identities.append(line)
                elif parse_x25519_recipient(line) is not None or line.startswith(SSH_RECIPIENT_PREFIXES):
                    recipients.append(line)
                else:
                    # Never fall back to "passphrase" for a damaged age key: that would encrypt with the wrong scheme.
                    raise ConfigError(
                        f"key file {path}: key line {number} is neither an age identity (AGE-SECRET-KEY-1...) nor a "
                        "recipient (age1..., ssh-ed25519, ssh-rsa); fix or remove that line",
                        key="KEY_FILE",
                    )
            if identities:
                own = [recipient_of_identity(identity) for identity in identities]
                return KeyMaterial(
                    kind=KIND_AGE_IDENTITY, path=path, identities=tuple(identities),
                    recipients=tuple(dict.fromkeys(own + recipients)),
                )
            return KeyMaterial(kind=KIND_RECIPIENTS, path=path, recipients=tuple(recipients))
    # What nc-backup-py did with its key file: the whole content, newlines removed.
    return KeyMaterial(kind=KIND_PASSPHRASE, path=path, passphrase=text.replace(b"\n", b""))


def refuse_if_readable_by_others(path: Path, what: str, *, key: str | None = None, file: Path | None = None,
                                 line: int | None = None) -> None:
    """ConfigError (one sentence, exit 3) when users other than the owner may read a secret file (group or world bits)."""
    if platform.is_readable_by_others(path):
        raise ConfigError(
            f"{what} {path} can be read by other users (mode {platform.mode_text(path)}); "
            f"run `chmod 600 {path}` so that only its owner can read it",
            key=key, file=file, line=line,
        )


def holds_a_secret(path: Path) -> bool:
    """True when path is a readable key file holding a secret (not recipients only); False for anything else."""
    try:
        data = Path(path).read_bytes()
        return bool(data.strip()) and classify_key_text(data, path=Path(path)).kind != KIND_RECIPIENTS
    except (OSError, ConfigError):
        return False  # missing, unreadable or damaged: the step that reads it says so


def read_key_file(path: Path) -> KeyMaterial:
    """Read and classify a KEY_FILE; ConfigError if it is missing, unreadable, empty, or a secret others may read.

    A recipients-only file is public and may be readable by anyone.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"key file {path} does not exist; give the right KEY_FILE path or create one with `ncbackup keygen --output {path}`",
            key="KEY_FILE",
        ) from None
    except OSError as error:
        raise ConfigError(
            f"key file {path} cannot be read ({error.strerror}); run as a user who can read it or fix its permissions",
            key="KEY_FILE",
        ) from None
    if not data.strip():
        raise ConfigError(f"key file {path} is empty; put a key in it or remove it so a new one is created", key="KEY_FILE")
    material = classify_key_text(data, path=path)
    if material.kind != KIND_RECIPIENTS:
        refuse_if_readable_by_others(path, "key file", key="KEY_FILE")
    return material


def create_private_file(path: Path, content: bytes, *, what: str, config_key: str) -> None:
    """Create path holding content, mode 0600 from the first byte; never overwrite (ConfigError naming what and config_key)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never clobber a key that may protect existing backups; 0600 from the first byte.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{what} {path} already exists; refusing to overwrite it (it may be the only key to existing backups)",
            key=config_key,
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot create {what} {path} ({error.strerror}); choose a writable location", key=config_key) from None
    try:
        # Windows ignores the mode: an ACL for the owner alone, set while the file is still empty.
        platform.restrict_to_owner(path)
    except BackupError as error:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise ConfigError(f"cannot make {what} {path} readable by its owner only ({error}); create it where the "
                          "running user may change permissions", key=config_key) from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
    except OSError as error:
        raise ConfigError(f"cannot write {what} {path} ({error.strerror}); choose a writable location", key=config_key) from None


def write_identity_file(path: Path) -> str:
    """Create a new age identity file at path (mode 0600, refuses to overwrite) and return its recipient."""
    identity, recipient = generate_identity()
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    content = f"# created: {created}\n# public key: {recipient}\n{identity}\n".encode("ascii")
    create_private_file(Path(path), content, what="key file", config_key="KEY_FILE")
    return recipient
