"""`ncbackup keygen` as a user runs it: a 0600 identity, only the public recipient printed, never an overwrite."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from tests.support import need_binary


def test_keygen_writes_0600_identity_and_prints_only_the_recipient(ncbackup_cmd, tmp_path: Path) -> None:
    age_keygen = need_binary("age-keygen")
    key = tmp_path / "keys" / "backup.key"
    result = subprocess.run([*ncbackup_cmd, "keygen", "--output", str(key)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    recipient = subprocess.run([age_keygen, "-y", str(key)], capture_output=True, text=True, check=True).stdout.strip()
    assert result.stdout.strip() == recipient
    secret = [line for line in key.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-1")][0]
    assert secret not in result.stdout and secret not in result.stderr
    assert str(key) in result.stderr and "safe" in result.stderr


def test_keygen_refuses_to_overwrite_an_existing_key(ncbackup_cmd, tmp_path: Path) -> None:
    key = tmp_path / "key_file"
    key.write_text("legacy passphrase protecting old backups\n")
    result = subprocess.run([*ncbackup_cmd, "keygen", "-o", str(key)], capture_output=True, text=True, check=False)
    assert result.returncode == 3
    assert "refusing to overwrite" in result.stderr and "Traceback" not in result.stderr
    assert key.read_text() == "legacy passphrase protecting old backups\n"


def test_keygen_identity_decrypts_what_a_recipient_only_server_wrote(ncbackup_cmd, tmp_path: Path) -> None:
    age = need_binary("age")
    key = tmp_path / "identity.key"
    recipient = subprocess.run([*ncbackup_cmd, "keygen", "-o", str(key)], capture_output=True, text=True, check=True).stdout.strip()
    encrypted = subprocess.run([age, "-r", recipient], input=b"backup bytes", capture_output=True, check=True).stdout
    assert subprocess.run([age, "-d", "-i", str(key)], input=encrypted, capture_output=True, check=True).stdout == b"backup bytes"
