"""Signing keys, signatures and trust, in minisign's format (Ed25519), so a stock tool checks our sets.

A set's ``manifest.json`` holds the size and SHA-256 of every part, so one signature over it
authenticates the whole set. The signature is a minisign detached signature
(``manifest.json.minisig``): anyone can check a set with ``minisign -V -p signing.key.pub -m
manifest.json``, without ncbackup.

The formats (https://jedisct1.github.io/minisign/), all base64 lines under an "untrusted comment":

- public key: ``"Ed" | key id (8 bytes) | Ed25519 public key (32)``;
- secret key: ``"Ed" | kdf "\\0\\0" (unencrypted) | "B2" | salt (32) | opslimit (8) | memlimit (8) |
  key id (8) | seed + public key (64) | BLAKE2b-256 checksum (32)``; we write it unencrypted, mode
  0600 (a server signs unattended; the file's permissions are its protection);
- signature: ``"ED" | key id | Ed25519(BLAKE2b-512(message))``, then a "trusted comment" line and
  ``Ed25519(signature | trusted comment)``, so the trusted comment is authenticated too.

The key id shown to people is minisign's: the 8 id bytes read as a little-endian number, in hex.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ncbackup import platform
from ncbackup.errors import ConfigError, IntegrityError
from ncbackup.stages.keys import create_private_file

SIGNATURE_SUFFIX = ".minisig"
PUBLIC_SUFFIX = ".pub"
MAX_SIGNATURE_BYTES = 4096     # a minisig file is ~300 bytes; anything far larger is not one

_ALG_PUBLIC = b"Ed"            # key algorithm tag in public and secret keys
_ALG_PREHASHED = b"ED"         # signature over BLAKE2b-512(message): what we write, minisign's default
_ALG_LEGACY = b"Ed"            # signature over the message itself: read, never written
_KDF_NONE = b"\x00\x00"
_CHECKSUM_ALG = b"B2"
_SECRET_KEY_BYTES = 2 + 2 + 2 + 32 + 8 + 8 + 8 + 64 + 32


class SignatureError(IntegrityError):
    """A signature is missing, malformed, from an untrusted key, or does not match."""

    def __init__(self, message: str, *, key_id: str | None = None) -> None:
        super().__init__(message)
        self.key_id = key_id


class UntrustedSignerError(SignatureError):
    """A valid-looking signature by a key the reading side does not trust."""


class UnsignedError(SignatureError):
    """A set made before signing existed: no signature to check."""


def format_key_id(raw: bytes) -> str:
    """minisign's display form of an 8-byte key id: little-endian number, 16 upper-case hex digits."""
    return f"{int.from_bytes(raw, 'little'):016X}"


@dataclass(frozen=True)
class PublicKey:
    key_id: bytes                 # 8 bytes
    key: bytes                    # 32 bytes, Ed25519
    source: str = field(default="", compare=False)   # where it was read from, for messages

    @property
    def id_text(self) -> str:
        return format_key_id(self.key_id)

    def encoded(self) -> str:
        """The base64 line of the public key file (what ``minisign -P`` takes)."""
        return base64.b64encode(_ALG_PUBLIC + self.key_id + self.key).decode("ascii")

    def file_text(self) -> str:
        return f"untrusted comment: minisign public key {self.id_text}\n{self.encoded()}\n"


@dataclass(frozen=True)
class SecretKey:
    key_id: bytes
    seed: bytes = field(repr=False)   # 32 bytes; never in a repr, a log or a message

    @property
    def public(self) -> PublicKey:
        raw = Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return PublicKey(self.key_id, raw)

    def _sign_raw(self, data: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(data)

    def sign(self, message: bytes, *, trusted_comment: str) -> bytes:
        """A minisign detached signature (the ``.minisig`` file's bytes) of message."""
        if "\n" in trusted_comment or "\r" in trusted_comment:
            raise ValueError("a trusted comment is one line")
        signature = self._sign_raw(hashlib.blake2b(message, digest_size=64).digest())
        global_signature = self._sign_raw(signature + trusted_comment.encode("utf-8"))
        return (
            f"untrusted comment: signature from ncbackup key {self.public.id_text}\n"
            f"{base64.b64encode(_ALG_PREHASHED + self.key_id + signature).decode('ascii')}\n"
            f"trusted comment: {trusted_comment}\n"
            f"{base64.b64encode(global_signature).decode('ascii')}\n"
        ).encode()


def generate_key() -> SecretKey:
    return SecretKey(key_id=os.urandom(8), seed=os.urandom(32))


# --- key files --------------------------------------------------------------------------------


def _base64_line(text: str, *, what: str) -> bytes:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or not lines[0].startswith("untrusted comment:"):
        raise ValueError(f"{what} must be an 'untrusted comment:' line followed by a base64 line")
    try:
        return base64.b64decode(lines[1], validate=True)
    except ValueError:
        raise ValueError(f"the second line of {what} is not base64") from None


def parse_public_key(text: str, *, source: str = "") -> PublicKey:
    """A minisign public key from its file text, or from the bare base64 line; ValueError when it is not one."""
    stripped = text.strip()
    if "\n" not in stripped and not stripped.startswith("untrusted comment:"):
        stripped = f"untrusted comment: key\n{stripped}"
    raw = _base64_line(stripped, what="a minisign public key")
    if len(raw) != 42 or raw[:2] != _ALG_PUBLIC:
        raise ValueError("it is not an Ed25519 minisign public key")
    return PublicKey(key_id=raw[2:10], key=raw[10:], source=source)


def read_public_key(path: Path) -> PublicKey:
    """Read a public key file; ConfigError naming the file when it is missing or not a minisign public key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"signing public key file {path} does not exist; give the path of a .pub file written by "
                          "ncbackup (SIGNING_KEY.pub) or minisign") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"signing public key file {path} cannot be read ({getattr(error, 'strerror', None) or error}); "
                          "fix its permissions or give another file") from None
    try:
        return parse_public_key(text, source=str(path))
    except ValueError as error:
        raise ConfigError(f"{path} is not a minisign public key ({error}); give the SIGNING_KEY.pub file of the "
                          "server that made the backups") from None


def parse_secret_key(data: bytes) -> SecretKey:
    """An unencrypted minisign secret key; ValueError when it is not one (or is password-protected)."""
    try:
        raw = _base64_line(data.decode("utf-8"), what="a minisign secret key")
    except UnicodeDecodeError:
        raise ValueError("it is not text") from None
    if len(raw) != _SECRET_KEY_BYTES or raw[:2] != _ALG_PUBLIC or raw[4:6] != _CHECKSUM_ALG:
        raise ValueError("it is not an Ed25519 minisign secret key")
    if raw[2:4] != _KDF_NONE:
        raise ValueError("it is protected by a password; ncbackup signs unattended and needs an unencrypted key "
                         "(minisign -G -W), protected by its file mode 0600")
    key_id, secret, checksum = raw[54:62], raw[62:126], raw[126:158]
    expected = hashlib.blake2b(_ALG_PUBLIC + key_id + secret, digest_size=32).digest()
    # minisign 0.11 leaves the checksum of an unencrypted key at zero; any other value must match.
    if checksum != bytes(32) and checksum != expected:
        raise ValueError("its checksum does not match: the file is damaged")
    key = SecretKey(key_id=key_id, seed=secret[:32])
    if key.public.key != secret[32:]:
        raise ValueError("its public half does not match its secret half: the file is damaged")
    return key


def secret_key_bytes(key: SecretKey) -> bytes:
    secret = key.seed + key.public.key
    checksum = hashlib.blake2b(_ALG_PUBLIC + key.key_id + secret, digest_size=32).digest()
    raw = _ALG_PUBLIC + _KDF_NONE + _CHECKSUM_ALG + bytes(32 + 8 + 8) + key.key_id + secret + checksum
    return (
        f"untrusted comment: ncbackup signing secret key {key.public.id_text} (unencrypted; keep it mode 0600)\n"
        f"{base64.b64encode(raw).decode('ascii')}\n"
    ).encode("ascii")


def public_key_path(secret_path: Path) -> Path:
    """``SIGNING_KEY.pub``: where the public half of a signing key lives."""
    secret_path = Path(secret_path)
    return secret_path.with_name(secret_path.name + PUBLIC_SUFFIX)


def read_secret_key(path: Path) -> SecretKey:
    """Read the signing key; ConfigError when missing, unreadable, readable by others, or not a minisign secret key."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"signing key {path} does not exist; create it with `ncbackup keygen --signing-key {path}` "
                          "or remove SIGNING_KEY so the default one is used", key="SIGNING_KEY") from None
    except OSError as error:
        raise ConfigError(f"signing key {path} cannot be read ({error.strerror}); run as a user who can read it",
                          key="SIGNING_KEY") from None
    if platform.is_readable_by_others(path):
        raise ConfigError(f"signing key {path} is readable by other users: anyone who reads it can forge backup sets; "
                          f"run `chmod 600 {path}`", key="SIGNING_KEY")
    try:
        return parse_secret_key(data)
    except ValueError as error:
        raise ConfigError(f"signing key {path} is not usable ({error}); point SIGNING_KEY at a key made by "
                          "`ncbackup keygen --signing-key`", key="SIGNING_KEY") from None


def write_signing_key(path: Path) -> SecretKey:
    """Create a new signing key at path (0600, never overwriting) and its public half at path.pub (0644)."""
    path = Path(path)
    key = generate_key()
    create_private_file(path, secret_key_bytes(key), what="signing key", config_key="SIGNING_KEY")
    public_path = public_key_path(path)
    temp = public_path.with_name(f".{public_path.name}.tmp")
    temp.write_text(key.public.file_text(), encoding="ascii")
    os.replace(temp, public_path)
    return key


def load_or_create_signing_key(path: Path) -> tuple[SecretKey, list[str]]:
    """The run's signing key; created (with a loud warning) when the file does not exist yet. Also repairs a lost .pub."""
    path = Path(path)
    warnings: list[str] = []
    if not path.exists() and not path.is_symlink():
        key = write_signing_key(path)
        warnings.append(
            f"SIGNING_KEY {path} did not exist: created a NEW signing key there (key id {key.public.id_text}, public key "
            f"{key.public.encoded()} in {public_key_path(path)}); COPY {public_key_path(path)} SOMEWHERE SAFE: a "
            "restore on another machine trusts sets only with it (--trust-signer)"
        )
        return key, warnings
    key = read_secret_key(path)
    public_path = public_key_path(path)
    if not public_path.exists():
        public_path.write_text(key.public.file_text(), encoding="ascii")
    return key, warnings


# --- verification and trust -------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    algorithm: bytes
    key_id: bytes
    signature: bytes
    trusted_comment: str
    global_signature: bytes

    @property
    def key_id_text(self) -> str:
        return format_key_id(self.key_id)


def parse_signature(data: bytes) -> Signature:
    """Parse a ``.minisig`` file; SignatureError when it is not one."""
    if len(data) > MAX_SIGNATURE_BYTES:
        raise SignatureError("the signature file is too large to be a minisign signature")
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise SignatureError("the signature file is not text") from None
    lines = [line.rstrip("\r") for line in lines]
    if len(lines) < 4 or not lines[0].startswith("untrusted comment:") or not lines[2].startswith("trusted comment: "):
        raise SignatureError("the signature file is not in minisign's format")
    try:
        raw = base64.b64decode(lines[1], validate=True)
        global_signature = base64.b64decode(lines[3], validate=True)
    except ValueError:
        raise SignatureError("the signature file is not in minisign's format (bad base64)") from None
    if len(raw) != 74 or raw[:2] not in (_ALG_PREHASHED, _ALG_LEGACY) or len(global_signature) != 64:
        raise SignatureError("the signature file is not an Ed25519 minisign signature")
    return Signature(raw[:2], raw[2:10], raw[10:], lines[2][len("trusted comment: "):], global_signature)


def _check(key: PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(key.key).verify(signature, data)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Trust:
    """Who the reading side trusts: public keys (SIGNING_KEY.pub, TRUSTED_SIGNERS, --trust-signer), and
    whether sets without a signature (made before signing existed) may be read at all."""

    keys: tuple[PublicKey, ...] = ()
    allow_unsigned: bool = False

    def key_for(self, key_id: bytes) -> PublicKey | None:
        return next((key for key in self.keys if key.key_id == key_id), None)

    def describe(self) -> str:
        if not self.keys:
            return "no key"
        return ", ".join(key.id_text for key in self.keys)


def verify(message: bytes, signature_file: bytes, trust: Trust, *, what: str) -> Signature:
    """Check a detached signature against the trusted keys; return it, or raise SignatureError (one sentence, naming what)."""
    signature = parse_signature(signature_file)
    key = trust.key_for(signature.key_id)
    if key is None:
        raise UntrustedSignerError(
            f"{what} is signed by key {signature.key_id_text}, which is not trusted here (trusted: {trust.describe()}); "
            "if that key is yours, pass its public key file with --trust-signer FILE or list it in TRUSTED_SIGNERS",
            key_id=signature.key_id_text,
        )
    signed = hashlib.blake2b(message, digest_size=64).digest() if signature.algorithm == _ALG_PREHASHED else message
    if not _check(key, signature.signature, signed):
        raise SignatureError(
            f"{what} does not match its signature by key {signature.key_id_text}: it was changed after it was signed; "
            "do not trust this set, use another one",
            key_id=signature.key_id_text,
        )
    if not _check(key, signature.global_signature, signature.signature + signature.trusted_comment.encode("utf-8")):
        raise SignatureError(
            f"the trusted comment of {what}'s signature was changed after signing; do not trust this set, use another one",
            key_id=signature.key_id_text,
        )
    return signature


def trust_from_files(paths: Iterable[Path], *, allow_unsigned: bool = False) -> Trust:
    keys: dict[bytes, PublicKey] = {}
    for path in paths:
        key = read_public_key(path)
        keys.setdefault(key.key_id + key.key, key)
    return Trust(keys=tuple(keys.values()), allow_unsigned=allow_unsigned)
