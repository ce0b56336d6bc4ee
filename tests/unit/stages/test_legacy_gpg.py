"""GnuPG symmetric backups (the original's Python 2.6 path) made by the real gpg, decrypted by us."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

from ncbackup.errors import DecryptError
from ncbackup.stages.legacy_gpg import decrypt_to_file, looks_like_openpgp
from tests.support import need_binary

KEY_HEX = "9d3e0b7c2a41f8e65d0c1b3a7f9e2d4c"


@pytest.fixture
def gpg_home(tmp_path):
    """A temporary GNUPGHOME for the test's own gpg runs; its agent is stopped afterwards."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    yield home
    gpgconf = need_binary("gpgconf")
    subprocess.run([gpgconf, "--homedir", str(home), "--kill", "gpg-agent"], check=False, capture_output=True)


def _gpg_encrypt(gpg_home: Path, plain: Path, out: Path, key: Path, *extra: str) -> None:
    gpg = need_binary("gpg")
    subprocess.run(
        [gpg, "--homedir", str(gpg_home), "--batch", "--yes", "--quiet", "--symmetric", *extra,
         "--passphrase-file", str(key), "--output", str(out), str(plain)],
        check=True, capture_output=True,
    )


def _key(tmp_path: Path, text: str = KEY_HEX + "\n") -> Path:
    key = tmp_path / "key_file"
    key.write_text(text)
    key.chmod(0o600)
    return key


def _decrypt(path_or_bytes, key: Path) -> tuple[bytes, list[str]]:
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    out = io.BytesIO()
    # decrypt_to_file hands output to gpg as its stdout: it needs a real file.
    out_path = key.parent / "decrypted.out"
    with open(out_path, "w+b") as output:
        warnings = decrypt_to_file(lambda: io.BytesIO(data), output, key_file=key, what="test data")
    out.write(out_path.read_bytes())
    return out.getvalue(), warnings


def test_decrypts_real_gpg_symmetric_aes(tmp_path, gpg_home):
    key = _key(tmp_path)
    plain = tmp_path / "backup.tar.gz"
    plain.write_bytes(os.urandom(700_000))
    crypt = tmp_path / "backup.tar.gz.gpg"
    _gpg_encrypt(gpg_home, plain, crypt, key, "--cipher-algo", "AES")
    assert looks_like_openpgp(crypt.read_bytes()[:16])

    data, warnings = _decrypt(crypt, key)
    assert data == plain.read_bytes()
    assert warnings == []


def test_decrypts_split_parts_joined(tmp_path, gpg_home):
    split = need_binary("split")
    key = _key(tmp_path)
    plain = tmp_path / "20171106_105027.tar.gz"
    plain.write_bytes(os.urandom(250_000))
    crypt = tmp_path / "20171106_105027.tar.gz.crypt"
    _gpg_encrypt(gpg_home, plain, crypt, key, "--cipher-algo", "AES")
    subprocess.run([split, "-d", "-a", "3", "-b", "100000", str(crypt), f"{crypt}."], check=True)
    parts = sorted(tmp_path.glob("20171106_105027.tar.gz.crypt.*"))
    assert len(parts) == 3

    data, _ = _decrypt(b"".join(p.read_bytes() for p in parts), key)
    assert data == plain.read_bytes()


def test_wrong_key_is_decrypt_error_without_the_key_in_message(tmp_path, gpg_home):
    key = _key(tmp_path)
    plain = tmp_path / "p"
    plain.write_bytes(b"secret data " * 1000)
    crypt = tmp_path / "p.gpg"
    _gpg_encrypt(gpg_home, plain, crypt, key, "--cipher-algo", "AES")
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    wrong_key = _key(wrong, "not-the-key\n")

    with pytest.raises(DecryptError, match="wrong key or corrupted data") as caught:
        _decrypt(crypt, wrong_key)
    assert "not-the-key" not in str(caught.value)


def test_data_without_integrity_check_decrypts_with_a_warning(tmp_path, gpg_home):
    key = _key(tmp_path)
    plain = tmp_path / "old"
    plain.write_bytes(os.urandom(50_000))
    crypt = tmp_path / "old.gpg"
    # What gpg 2.0 wrote by default: CAST5 without MDC.
    _gpg_encrypt(gpg_home, plain, crypt, key, "--cipher-algo", "CAST5", "--rfc2440")

    data, warnings = _decrypt(crypt, key)
    assert data == plain.read_bytes()
    assert len(warnings) == 1 and "integrity check" in warnings[0]


def test_corrupted_gpg_data_is_decrypt_error(tmp_path, gpg_home):
    key = _key(tmp_path)
    plain = tmp_path / "p"
    plain.write_bytes(os.urandom(100_000))
    crypt = tmp_path / "p.gpg"
    _gpg_encrypt(gpg_home, plain, crypt, key, "--cipher-algo", "AES")
    damaged = bytearray(crypt.read_bytes())
    damaged[50_000] ^= 0x01

    with pytest.raises(DecryptError):
        _decrypt(bytes(damaged), key)


def test_recognises_openpgp_but_not_other_formats():
    assert looks_like_openpgp(b"-----BEGIN PGP MESSAGE-----\n")
    assert not looks_like_openpgp(b"Salted__12345678")
    assert not looks_like_openpgp(b"age-encryption.org/v1\n")
    assert not looks_like_openpgp(b"")
