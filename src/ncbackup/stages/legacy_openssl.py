"""The original tool's OpenSSL-compatible encryption (COMPAT.md section 6), both directions, streaming.

Format: ``Salted__`` + 8-byte salt + AES-256-CBC ciphertext with PKCS#7 padding; key and IV come
from EVP_BytesToKey(MD5, one iteration) over passphrase + salt. It is exactly what
``openssl enc -aes-256-cbc -md md5 -pass file:KEY`` writes and ``openssl enc -d ...`` reads, where
the passphrase is the key file's content with newlines removed (what nc-backup-py did).

CBC has no authentication: a wrong key is only noticed at the end (bad padding), and a flipped
bit inside the data garbles plaintext without an error. Backup sets carry SHA-256 per part in the
manifest, which is what catches corruption; this module only reports what padding can tell.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ncbackup.errors import DecryptError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

MAGIC = b"Salted__"
SALT_BYTES = 8
HEADER_BYTES = len(MAGIC) + SALT_BYTES
KEY_BYTES = 32
BLOCK_BYTES = 16
# Big reads keep the per-call Python overhead negligible next to AES itself (a multiple of the block).
READ_CHUNK_BYTES = 1 << 20

WRONG_KEY_MESSAGE = "wrong key or corrupted data"


def passphrase_from_key_file(key_file: Path) -> bytes:
    """Return the passphrase nc-backup-py used: the key file's bytes with every newline removed."""
    try:
        return Path(key_file).read_bytes().replace(b"\n", b"")
    except OSError as error:
        raise DecryptError(
            f"cannot read key file {key_file}: {error.strerror}; check the path and its permissions"
        ) from None


def derive_key_and_iv(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """OpenSSL's EVP_BytesToKey with MD5 and one iteration: (32-byte key, 16-byte IV)."""
    derived = b""
    block = b""
    while len(derived) < KEY_BYTES + BLOCK_BYTES:
        block = hashlib.md5(block + passphrase + salt).digest()  # noqa: S324 - the legacy format demands MD5
        derived += block
    return derived[:KEY_BYTES], derived[KEY_BYTES:KEY_BYTES + BLOCK_BYTES]


def _cipher(passphrase: bytes, salt: bytes) -> Cipher[modes.CBC]:
    key, iv = derive_key_and_iv(passphrase, salt)
    return Cipher(algorithms.AES(key), modes.CBC(iv))


class _EncryptingWriter(io.RawIOBase):
    """Writable stream: plaintext in, legacy ciphertext out to sink; close() pads but leaves sink open."""

    def __init__(self, sink: BinaryIO, passphrase: bytes, *, salt: bytes | None = None) -> None:
        super().__init__()
        self._sink = sink
        salt = os.urandom(SALT_BYTES) if salt is None else salt
        self._encryptor = _cipher(passphrase, salt).encryptor()
        self._padder = padding.PKCS7(BLOCK_BYTES * 8).padder()
        sink.write(MAGIC + salt)

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        if self.closed:
            raise ValueError("write to a closed legacy OpenSSL writer")
        size = memoryview(data).nbytes
        if size:
            out = self._encryptor.update(self._padder.update(bytes(data)))
            if out:
                self._sink.write(out)
        return size

    def close(self) -> None:
        if not self.closed:
            try:
                self._sink.write(self._encryptor.update(self._padder.finalize()) + self._encryptor.finalize())
            finally:
                super().close()


class _DecryptingReader(io.RawIOBase):
    """Readable stream of plaintext from a legacy ciphertext source; bad padding -> DecryptError."""

    def __init__(self, source: BinaryIO, passphrase: bytes, *, what: str = "the data") -> None:
        super().__init__()
        self._source = source
        self._what = what
        header = _read_exactly(source, HEADER_BYTES)
        if len(header) < HEADER_BYTES or not header.startswith(MAGIC):
            raise DecryptError(
                f"{what} is not in the legacy OpenSSL format (no 'Salted__' header); check the file and that it is complete"
            )
        self._decryptor = _cipher(passphrase, header[len(MAGIC):]).decryptor()
        self._unpadder = padding.PKCS7(BLOCK_BYTES * 8).unpadder()
        self._pending = b""
        self._pending_offset = 0
        self._is_eof = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        """Decrypt the next chunk into _pending; at the end of source, check the padding."""
        while self._pending_offset >= len(self._pending) and not self._is_eof:
            chunk = self._source.read(READ_CHUNK_BYTES)
            if chunk:
                self._pending = self._unpadder.update(self._decryptor.update(chunk))
            else:
                self._is_eof = True
                try:
                    tail = self._unpadder.update(self._decryptor.finalize())
                    self._pending = tail + self._unpadder.finalize()
                except ValueError:
                    raise DecryptError(
                        f"cannot decrypt {self._what}: {WRONG_KEY_MESSAGE} (bad padding or truncated); "
                        "check the key file and that every part is present"
                    ) from None
            self._pending_offset = 0

    def readinto(self, buffer: WriteableBuffer) -> int:
        self._fill()
        available = len(self._pending) - self._pending_offset
        if available <= 0:
            return 0
        target = memoryview(buffer)
        count = min(len(target), available)
        target[:count] = self._pending[self._pending_offset:self._pending_offset + count]
        self._pending_offset += count
        return count

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        self._fill()
        start = self._pending_offset
        if start == 0 and size >= len(self._pending):
            # Whole chunk: hand it over without copying.
            out, self._pending = self._pending, b""
            return out
        out = self._pending[start:start + size]
        self._pending_offset += len(out)
        return out

    def readall(self) -> bytes:
        pieces: list[bytes] = []
        while True:
            piece = self.read(READ_CHUNK_BYTES)
            if not piece:
                return b"".join(pieces)
            pieces.append(piece)


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        piece = source.read(size - len(data))
        if not piece:
            break
        data += piece
    return data


def encrypting_writer(sink: BinaryIO, passphrase: bytes) -> BinaryIO:
    """Return a writable stream that writes legacy-format ciphertext of what it is given into sink."""
    return _EncryptingWriter(sink, passphrase)  # type: ignore[return-value]


def decrypting_reader(source: BinaryIO, passphrase: bytes, *, what: str = "the data") -> BinaryIO:
    """Return a readable stream of the plaintext of source; the end raises DecryptError on a wrong key."""
    return _DecryptingReader(source, passphrase, what=what)  # type: ignore[return-value]


class LegacyOpenSSLStage:
    """Stage for the legacy OpenSSL format, keyed by a passphrase (a key file of the original tool)."""

    name = "openssl-legacy"
    suffix = ".crypt"

    def __init__(self, passphrase: bytes) -> None:
        if not passphrase:
            raise DecryptError("the legacy key file is empty; give the key file the backups were made with")
        self._passphrase = passphrase

    @classmethod
    def from_key_file(cls, key_file: Path) -> LegacyOpenSSLStage:
        """Build the stage from a key file of the original tool (newlines removed, as it did)."""
        passphrase = passphrase_from_key_file(key_file)
        if not passphrase:
            raise DecryptError(f"key file {key_file} is empty; give the key file the backups were made with")
        return cls(passphrase)

    def writer(self, sink: BinaryIO) -> BinaryIO:
        return encrypting_writer(sink, self._passphrase)

    def reader(self, source: BinaryIO) -> BinaryIO:
        return decrypting_reader(source, self._passphrase)

    def describe(self) -> dict[str, object]:
        # Never the passphrase, nor anything derived from it.
        return {"cipher": self.name, "algorithm": "aes-256-cbc", "kdf": "evp-bytestokey-md5"}

    def __repr__(self) -> str:
        return "LegacyOpenSSLStage(passphrase=***)"
