"""minisign-format keys and signatures, checked against the stock minisign binary in both directions."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ncbackup.errors import ConfigError
from ncbackup.signing import (
    SignatureError,
    Trust,
    UntrustedSignerError,
    load_or_create_signing_key,
    parse_secret_key,
    public_key_path,
    read_public_key,
    read_secret_key,
    verify,
    write_signing_key,
)
from tests.support import need_binary

MESSAGE = b'{"format_version": 2, "set_id": "20261126T030000Z"}\n' * 50


def test_our_signature_verifies_with_stock_minisign_and_a_change_does_not(tmp_path: Path) -> None:
    minisign = need_binary("minisign")
    key = write_signing_key(tmp_path / "signing.key")
    message = tmp_path / "manifest.json"
    message.write_bytes(MESSAGE)
    (tmp_path / "manifest.json.minisig").write_bytes(key.sign(MESSAGE, trusted_comment="ncbackup set web1/x"))
    checked = subprocess.run([minisign, "-V", "-p", str(tmp_path / "signing.key.pub"), "-m", str(message)],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    assert "Trusted comment: ncbackup set web1/x" in checked.stdout
    message.write_bytes(MESSAGE + b" ")
    assert subprocess.run([minisign, "-V", "-p", str(tmp_path / "signing.key.pub"), "-m", str(message)],
                          capture_output=True, check=False).returncode != 0


def test_minisign_made_keys_and_signatures_are_read(tmp_path: Path) -> None:
    minisign = need_binary("minisign")
    made = subprocess.run([minisign, "-G", "-W", "-p", str(tmp_path / "m.pub"), "-s", str(tmp_path / "m.key")],
                          capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    (tmp_path / "m").write_bytes(MESSAGE)
    signed = subprocess.run([minisign, "-S", "-s", str(tmp_path / "m.key"), "-m", str(tmp_path / "m"), "-t", "theirs"],
                            capture_output=True, text=True, check=False)
    assert signed.returncode == 0, signed.stderr
    public = read_public_key(tmp_path / "m.pub")
    signature = verify(MESSAGE, (tmp_path / "m.minisig").read_bytes(), Trust((public,)), what="m")
    assert signature.trusted_comment == "theirs" and signature.key_id_text == public.id_text
    # The secret key minisign wrote (unencrypted) is usable as SIGNING_KEY, and what it signs minisign accepts.
    (tmp_path / "m.key").chmod(0o600)
    key = read_secret_key(tmp_path / "m.key")
    assert key.public == public


def test_a_wrong_key_a_changed_message_and_a_changed_comment_are_refused(tmp_path: Path) -> None:
    key = write_signing_key(tmp_path / "a.key")
    other = write_signing_key(tmp_path / "b.key")
    signature = key.sign(MESSAGE, trusted_comment="ok")
    with pytest.raises(UntrustedSignerError, match=f"signed by key {key.public.id_text}.*--trust-signer"):
        verify(MESSAGE, signature, Trust((other.public,)), what="set X")
    with pytest.raises(SignatureError, match="changed after it was signed"):
        verify(MESSAGE + b"x", signature, Trust((key.public,)), what="set X")
    forged = signature.replace(b"trusted comment: ok", b"trusted comment: no")
    with pytest.raises(SignatureError, match="trusted comment"):
        verify(MESSAGE, forged, Trust((key.public,)), what="set X")
    for garbage in (b"", b"x" * 10_000, b"untrusted comment: a\nnot base64!\ntrusted comment: b\nxx\n", bytes(range(256))):
        with pytest.raises(SignatureError):
            verify(MESSAGE, garbage, Trust((key.public,)), what="set X")


def test_signing_key_is_created_once_0600_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.key"
    key, warnings = load_or_create_signing_key(path)
    assert len(warnings) == 1 and "NEW signing key" in warnings[0] and key.public.encoded() in warnings[0]
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_public_key(public_key_path(path)) == key.public
    again, warnings = load_or_create_signing_key(path)
    assert again == key and warnings == []
    with pytest.raises(ConfigError, match="already exists"):
        write_signing_key(path)
    # A lost .pub is written again from the secret key.
    public_key_path(path).unlink()
    load_or_create_signing_key(path)
    assert read_public_key(public_key_path(path)) == key.public


@pytest.mark.parametrize("mode", [0o640, 0o604])
def test_a_signing_key_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "signing.key"
    write_signing_key(path)
    path.chmod(mode)
    with pytest.raises(ConfigError, match="readable by other users.*chmod 600"):
        read_secret_key(path)


def test_a_password_protected_or_damaged_key_says_what_to_do(tmp_path: Path) -> None:
    minisign = need_binary("minisign")
    made = subprocess.run([minisign, "-G", "-p", str(tmp_path / "p.pub"), "-s", str(tmp_path / "p.key")],
                          input="pw\npw\n", capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    with pytest.raises(ValueError, match="password"):
        parse_secret_key((tmp_path / "p.key").read_bytes())
    with pytest.raises(ValueError):
        parse_secret_key(b"untrusted comment: x\nAAAA\n")
    (tmp_path / "not.pub").write_text("hello\n")
    with pytest.raises(ConfigError, match="not a minisign public key"):
        read_public_key(tmp_path / "not.pub")
