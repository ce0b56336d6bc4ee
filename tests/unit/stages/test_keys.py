"""KEY_FILE classification, identity creation (0600, never overwritten) and refusal of secrets others may read."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from ncbackup import platform
from ncbackup.errors import ConfigError
from ncbackup.stages.keys import (
    bech32_decode,
    bech32_encode,
    generate_identity,
    read_key_file,
    recipient_fingerprint,
    refuse_if_readable_by_others,
    write_identity_file,
)
from tests.support import need, need_binary, run_python_unprivileged, unreadable_file


def test_identity_file_is_0600_and_matches_age_keygen(tmp_path: Path) -> None:
    age_keygen = need_binary("age-keygen")
    path = tmp_path / "sub" / "key.txt"
    recipient = write_identity_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert recipient.startswith("age1")
    shown = subprocess.run([age_keygen, "-y", str(path)], capture_output=True, text=True, check=True).stdout.strip()
    assert shown == recipient


def test_write_identity_file_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "key.txt"
    path.write_text("old passphrase that protects old backups\n")
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        write_identity_file(path)
    assert path.read_text() == "old passphrase that protects old backups\n"


def test_age_keygen_identity_is_classified_with_its_recipient(tmp_path: Path) -> None:
    age_keygen = need_binary("age-keygen")
    path = tmp_path / "key.txt"
    subprocess.run([age_keygen, "-o", str(path)], capture_output=True, check=True)
    public = [line.split(": ")[1] for line in path.read_text().splitlines() if "public key" in line][0]
    material = read_key_file(path)
    assert material.kind == "age-identity"
    assert material.recipients == (public,)
    assert material.can_decrypt


def test_recipients_file_with_comments_and_ssh_keys_is_write_only(tmp_path: Path) -> None:
    path = tmp_path / "recipients.txt"
    _, first = _pair(tmp_path / "a")
    _, second = _pair(tmp_path / "b")
    path.write_text(
        f"# ops team\n{first}\n\n  {second}  \n"
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn1Oi4Ck0nOVGbXHTB+8V3wsJ6P7qnNwbJfbcdiHa+X admin@host\n"
    )
    material = read_key_file(path)
    assert material.kind == "recipients"
    assert len(material.recipients) == 3
    assert not material.can_decrypt


def _pair(path: Path) -> tuple[Path, str]:
    return path, write_identity_file(path)


@pytest.mark.parametrize(
    "content",
    [b"0123456789abcdef" * 4 + b"\n", b"0123456789abcdef\n", b"my secret phrase", b"\xff\xfebinary\n",
     b"age1 is my passphrase\n", b"Age1Secret\n"],
)
def test_anything_else_is_a_legacy_passphrase_without_newlines(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "key_file"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    material = read_key_file(path)
    assert material.kind == "passphrase"
    assert material.passphrase == content.replace(b"\n", b"")
    assert material.warnings == ()


def test_secrets_never_appear_in_repr(tmp_path: Path) -> None:
    identity_path = tmp_path / "id.txt"
    write_identity_file(identity_path)
    secret_line = [line for line in identity_path.read_text().splitlines() if line.startswith("AGE-SECRET")][0]
    assert secret_line not in repr(read_key_file(identity_path))
    legacy = tmp_path / "legacy"
    legacy.write_text("hunter2hunter2\n")
    legacy.chmod(0o600)
    assert "hunter2" not in repr(read_key_file(legacy))


SECRET_KINDS = {
    "age identity": "# created: today\nAGE-SECRET-KEY-1{identity}\n",
    "ssh private key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    "legacy passphrase": "abcdef0123456789abcdef0123456789\n",
}


def write_secret(path: Path, kind: str, mode: int) -> None:
    text = SECRET_KINDS[kind]
    if "{identity}" in text:
        identity = generate_identity()[0]
        text = f"# created: today\n{identity}\n"
    path.write_text(text)
    os.chmod(path, mode)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
@pytest.mark.parametrize("kind", list(SECRET_KINDS))
def test_a_secret_key_file_others_may_read_is_refused_in_one_sentence(tmp_path: Path, kind: str, mode: int) -> None:
    need(platform.IS_POSIX, "POSIX permissions")
    path = tmp_path / "key_file"
    write_secret(path, kind, mode)
    with pytest.raises(ConfigError) as caught:
        read_key_file(path)
    message = str(caught.value)
    assert "can be read by other users" in message and f"chmod 600 {path}" in message and f"{mode:04o}" in message
    assert "KEY_FILE" in message and "\n" not in message


@pytest.mark.parametrize("kind", list(SECRET_KINDS))
def test_a_secret_key_file_only_its_owner_reads_is_accepted(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "key_file"
    write_secret(path, kind, 0o600)
    assert read_key_file(path).can_decrypt


def test_a_recipients_only_key_file_may_be_readable_by_everyone(tmp_path: Path) -> None:
    path = tmp_path / "recipients"
    path.write_text(f"# public\n{generate_identity()[1]}\n")
    os.chmod(path, 0o644)
    assert read_key_file(path).kind == "recipients"


def test_refuse_if_readable_by_others_serves_other_secret_files(tmp_path: Path) -> None:
    need(platform.IS_POSIX, "POSIX permissions")
    signing_key = tmp_path / "signing.key"
    signing_key.write_text("secret\n")
    signing_key.chmod(0o600)
    refuse_if_readable_by_others(signing_key, "signing key file", key="SIGNING_KEY_FILE")
    signing_key.chmod(0o640)
    with pytest.raises(ConfigError, match=r"SIGNING_KEY_FILE: signing key file .* can be read by other users"):
        refuse_if_readable_by_others(signing_key, "signing key file", key="SIGNING_KEY_FILE")


READ_KEY_FILE = """
import sys
from ncbackup.errors import ConfigError
from ncbackup.stages.keys import read_key_file
try:
    read_key_file(sys.argv[1])
except ConfigError as error:
    sys.exit(str(error))
"""


def test_unreadable_key_file_is_a_clear_error() -> None:
    # Root reads every file: read it as an unprivileged user who may reach the folder, not read the file.
    with unreadable_file("key_file", "abc\n") as path:
        completed = run_python_unprivileged(["-c", READ_KEY_FILE, str(path)])
    assert completed.returncode == 1
    assert completed.stderr == (f"KEY_FILE: key file {path} cannot be read (Permission denied); "
                                "run as a user who can read it or fix its permissions\n")


def test_unreadable_key_path_is_a_clear_error(tmp_path: Path) -> None:
    # A directory where a key file should be: unreadable as a file for any user, root included.
    with pytest.raises(ConfigError, match="cannot be read"):
        read_key_file(tmp_path)


def test_missing_and_empty_key_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_key_file(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        read_key_file(empty)


def test_bech32_round_trip_and_checksum() -> None:
    data = bytes(range(32))
    encoded = bech32_encode("age", data)
    assert bech32_decode(encoded) == ("age", data)
    broken = encoded[:-1] + ("q" if encoded[-1] != "q" else "p")
    assert bech32_decode(broken) is None


def test_fingerprint_ignores_ssh_comment() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn1Oi4Ck0nOVGbXHTB+8V3wsJ6P7qnNwbJfbcdiHa+X"
    assert recipient_fingerprint(key + " a@b") == recipient_fingerprint(key)
    assert len(recipient_fingerprint(key)) == 16


def test_identity_with_an_extra_offsite_recipient_encrypts_to_both(tmp_path: Path) -> None:
    server_identity = tmp_path / "server.txt"
    server_recipient = write_identity_file(server_identity)
    offsite_recipient = write_identity_file(tmp_path / "offsite.txt")
    combined = tmp_path / "key_file"
    combined.write_text(server_identity.read_text() + f"# offsite copy\n{offsite_recipient}\n")
    os.chmod(combined, 0o600)
    material = read_key_file(combined)
    assert material.kind == "age-identity"
    assert material.recipients == (server_recipient, offsite_recipient)


@pytest.mark.parametrize("bad_line", ["AGE-SECRET-KEY-1NOTVALID", "age1tooshort", "AGE-SECRET-KEY-1QQQQ"])
def test_damaged_age_key_line_is_an_error_not_a_passphrase(tmp_path: Path, bad_line: str) -> None:
    path = tmp_path / "key_file"
    path.write_text(f"# my key\n{bad_line}\n")
    with pytest.raises(ConfigError, match="key line 1 is neither"):
        read_key_file(path)
