"""``ncbackup decrypt`` and the original's ``encryption/encryption.py -d``, run as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, need_binary

KEY_HEX = "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc"


def _key(folder: Path, text: str = KEY_HEX + "\n") -> Path:
    key = folder / "key_file"
    key.write_text(text)
    key.chmod(0o600)
    return key


def _make_tar_gz(tmp_path: Path) -> Path:
    tar = need_binary("tar")
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (tree / "etc" / "blob.bin").write_bytes(os.urandom(400_000))
    archive = tmp_path / "20171106_105027.tar.gz"
    subprocess.run([tar, "-czf", str(archive), "-C", str(tree), "etc"], check=True)
    return archive


def _original_openssl_parts(tmp_path: Path, key: Path, part_bytes: int = 150_000) -> tuple[Path, Path]:
    """Parts as nc-backup-py made them: openssl enc, then split into .000, .001, ..."""
    openssl = need_binary("openssl")
    split = need_binary("split")
    archive = _make_tar_gz(tmp_path)
    store = tmp_path / "downloaded"
    store.mkdir()
    crypt = store / "20171106_105027.tar.gz.crypt"
    subprocess.run(
        [openssl, "enc", "-aes-256-cbc", "-md", "md5", "-in", str(archive), "-out", str(crypt), "-pass", f"file:{key}"],
        check=True, capture_output=True,
    )
    subprocess.run([split, "-d", "-a", "3", "-b", str(part_bytes), str(crypt), f"{crypt}."], check=True)
    crypt.unlink()
    return archive, crypt


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_decrypt_joins_openssl_parts_by_prefix(tmp_path, ncbackup_cmd):
    key = _key(tmp_path)
    archive, prefix = _original_openssl_parts(tmp_path, key)
    assert len(list(prefix.parent.iterdir())) == 3
    out = tmp_path / "restored.tar.gz"

    result = _run([*ncbackup_cmd, "decrypt", "--key-file", str(key), "--input", str(prefix), "--output", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == archive.read_bytes()
    assert KEY_HEX not in result.stdout + result.stderr


def test_decrypt_given_part_000_takes_all_its_parts(tmp_path, ncbackup_cmd):
    key = _key(tmp_path)
    archive, prefix = _original_openssl_parts(tmp_path, key)
    out = tmp_path / "restored.tar.gz"
    result = _run(
        [*ncbackup_cmd, "decrypt", "--key-file", str(key), "--input", f"{prefix}.000", "--output", str(out)], tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == archive.read_bytes()


def test_original_encryption_py_command_line_decrypts(tmp_path):
    key = _key(tmp_path)
    archive, prefix = _original_openssl_parts(tmp_path, key)
    out = tmp_path / "out" / "backup.tar.gz"
    out.parent.mkdir()
    out.write_bytes(b"old content the original would have replaced")
    result = _run(
        [sys.executable, str(REPO / "encryption" / "encryption.py"), "-d", "--KEY_FILE", str(key),
         "--OBJECTIVES", str(prefix), "--DESTINATION", str(out), "--HOME_FOLDER", "/opt/nc-backup-py"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == archive.read_bytes()
    tar = need_binary("tar")
    listing = subprocess.run([tar, "-tzf", str(out)], capture_output=True, text=True, check=True).stdout
    assert "etc/hosts" in listing


def test_encryption_py_objectives_is_a_prefix_with_a_wild_card_at_the_end(tmp_path):
    """As the original's README promised; a prefix naming the parts of two files is refused, listing them."""
    key = _key(tmp_path)
    archive, prefix = _original_openssl_parts(tmp_path, key)
    out = tmp_path / "backup.tar.gz"
    argv = [sys.executable, str(REPO / "encryption" / "encryption.py"), "-d", "--KEY_FILE", str(key),
            "--DESTINATION", str(out), "--HOME_FOLDER", "/opt/nc-backup-py"]
    result = _run([*argv, "--OBJECTIVES", str(prefix.parent / "20171106_10")], tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == archive.read_bytes()

    (prefix.parent / "20171107_105027.tar.gz.crypt.000").write_bytes(b"Salted__another night")
    out.unlink()
    result = _run([*argv, "--OBJECTIVES", str(prefix.parent / "2017")], tmp_path)
    assert result.returncode == 3
    assert "matches the parts of 2 files (20171106_105027.tar.gz.crypt, 20171107_105027.tar.gz.crypt)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not out.exists()


def test_encryption_py_without_d_refuses_clearly(tmp_path):
    key = _key(tmp_path)
    result = _run(
        [sys.executable, str(REPO / "encryption" / "encryption.py"), "--KEY_FILE", str(key),
         "--OBJECTIVES", str(tmp_path), "--DESTINATION", str(tmp_path / "x"), "--HOME_FOLDER", "/opt"],
        tmp_path,
    )
    assert result.returncode == 3
    assert "only decrypts" in result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_key_exits_2_with_one_sentence_and_no_output(tmp_path, ncbackup_cmd):
    key = _key(tmp_path)
    _archive, prefix = _original_openssl_parts(tmp_path, key)
    wrong_dir = tmp_path / "wrong"
    wrong_dir.mkdir()
    wrong = _key(wrong_dir, "0" * 64 + "\n")
    out = tmp_path / "restored.tar.gz"

    result = _run([*ncbackup_cmd, "decrypt", "--key-file", str(wrong), "--input", str(prefix), "--output", str(out)], tmp_path)
    assert result.returncode == 2
    assert "wrong key or corrupted data" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ncbackup")] == []


def test_missing_middle_part_is_named(tmp_path, ncbackup_cmd):
    key = _key(tmp_path)
    _archive, prefix = _original_openssl_parts(tmp_path, key, part_bytes=100_000)
    Path(f"{prefix}.001").unlink()
    out = tmp_path / "restored.tar.gz"
    result = _run([*ncbackup_cmd, "decrypt", "--key-file", str(key), "--input", str(prefix), "--output", str(out)], tmp_path)
    assert result.returncode == 2
    assert "part number 1 is missing" in result.stderr
    assert not out.exists()


def test_truncated_last_part_leaves_no_output(tmp_path, ncbackup_cmd):
    key = _key(tmp_path)
    _archive, prefix = _original_openssl_parts(tmp_path, key)
    last = sorted(prefix.parent.iterdir())[-1]
    last.write_bytes(last.read_bytes()[:-5])
    out = tmp_path / "restored.tar.gz"
    result = _run([*ncbackup_cmd, "decrypt", "--key-file", str(key), "--input", str(prefix), "--output", str(out)], tmp_path)
    assert result.returncode == 2
    assert "wrong key or corrupted data" in result.stderr
    assert not out.exists()


def test_existing_output_is_refused_without_force(tmp_path, ncbackup_cmd):
    key = _key(tmp_path)
    archive, prefix = _original_openssl_parts(tmp_path, key)
    out = tmp_path / "restored.tar.gz"
    out.write_bytes(b"keep me")
    argv = [*ncbackup_cmd, "decrypt", "--key-file", str(key), "--input", str(prefix), "--output", str(out)]
    result = _run(argv, tmp_path)
    assert result.returncode == 2 and "already exists" in result.stderr
    assert out.read_bytes() == b"keep me"
    assert _run([*argv, "--force"], tmp_path).returncode == 0
    assert out.read_bytes() == archive.read_bytes()


@pytest.fixture
def gpg_home(tmp_path):
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    yield home
    gpgconf = need_binary("gpgconf")
    subprocess.run([gpgconf, "--homedir", str(home), "--kill", "gpg-agent"], check=False, capture_output=True)


def test_decrypts_gpg_backup_split_the_python26_way(tmp_path, ncbackup_cmd, gpg_home):
    """The original's 2.6 path: gpg -c, then ``split --bytes=NM file file`` (parts fileaa, fileab...)."""
    gpg = need_binary("gpg")
    split = need_binary("split")
    key = _key(tmp_path)
    archive = _make_tar_gz(tmp_path)
    store = tmp_path / "downloaded"
    store.mkdir()
    crypt = store / "20171106_105027.tar.gz.crypt"
    subprocess.run(
        [gpg, "--homedir", str(gpg_home), "--batch", "--yes", "--quiet", "--symmetric", "--cipher-algo", "AES",
         "--passphrase-file", str(key), "--output", str(crypt), str(archive)],
        check=True, capture_output=True,
    )
    subprocess.run([split, "--bytes=150000", str(crypt), str(crypt)], check=True)
    crypt.unlink()
    assert sorted(p.name[-2:] for p in store.iterdir()) == ["aa", "ab", "ac"]
    out = tmp_path / "restored.tar.gz"

    result = _run([*ncbackup_cmd, "decrypt", "--key-file", str(key), "--input", str(crypt), "--output", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == archive.read_bytes()


def test_gpg_wrong_key_leaves_no_output(tmp_path, ncbackup_cmd, gpg_home):
    gpg = need_binary("gpg")
    key = _key(tmp_path)
    archive = _make_tar_gz(tmp_path)
    crypt = tmp_path / "b.tar.gz.gpg"
    subprocess.run(
        [gpg, "--homedir", str(gpg_home), "--batch", "--yes", "--quiet", "--symmetric", "--cipher-algo", "AES",
         "--passphrase-file", str(key), "--output", str(crypt), str(archive)],
        check=True, capture_output=True,
    )
    wrong_dir = tmp_path / "wrong"
    wrong_dir.mkdir()
    out = tmp_path / "out.tar.gz"
    result = _run(
        [*ncbackup_cmd, "decrypt", "--key-file", str(_key(wrong_dir, "nope\n")), "--input", str(crypt), "--output", str(out)],
        tmp_path,
    )
    assert result.returncode == 2
    assert "wrong key or corrupted data" in result.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ncbackup")] == []


def test_decrypts_age_file_made_by_real_age(tmp_path, ncbackup_cmd):
    age = need_binary("age")
    age_keygen = need_binary("age-keygen")
    identity = tmp_path / "key.txt"
    subprocess.run([age_keygen, "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run([age_keygen, "-y", str(identity)], check=True, capture_output=True, text=True).stdout.strip()
    archive = _make_tar_gz(tmp_path)
    crypt = tmp_path / "files.tar.gz.age"
    subprocess.run([age, "-r", recipient, "-o", str(crypt), str(archive)], check=True)
    out = tmp_path / "out.tar.gz"

    result = _run([*ncbackup_cmd, "decrypt", "--key-file", str(identity), "--input", str(crypt), "--output", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == archive.read_bytes()

    # A write-only key file (recipients only) cannot decrypt: say so, exit 2.
    recipients = tmp_path / "recipients.txt"
    recipients.write_text(recipient + "\n")
    other = tmp_path / "other.tar.gz"
    result = _run([*ncbackup_cmd, "decrypt", "--key-file", str(recipients), "--input", str(crypt), "--output", str(other)], tmp_path)
    assert result.returncode == 2
    assert "recipients" in result.stderr and "cannot decrypt" in result.stderr
    assert not other.exists()


def test_unencrypted_input_is_explained(tmp_path, ncbackup_cmd):
    key = _key(tmp_path)
    archive = _make_tar_gz(tmp_path)
    result = _run([*ncbackup_cmd, "decrypt", "--key-file", str(key), "--input", str(archive), "--output", str(tmp_path / "o")], tmp_path)
    assert result.returncode == 2
    assert "not encrypted" in result.stderr


def test_age_wrong_identity_or_truncated_file_leaves_no_output(tmp_path, ncbackup_cmd):
    age = need_binary("age")
    age_keygen = need_binary("age-keygen")
    identity = tmp_path / "key.txt"
    subprocess.run([age_keygen, "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run([age_keygen, "-y", str(identity)], check=True, capture_output=True, text=True).stdout.strip()
    plain = tmp_path / "plain.bin"
    plain.write_bytes(os.urandom(300_000))
    crypt = tmp_path / "plain.bin.age"
    subprocess.run([age, "-r", recipient, "-o", str(crypt), str(plain)], check=True)
    stranger = tmp_path / "stranger.txt"
    subprocess.run([age_keygen, "-o", str(stranger)], check=True, capture_output=True)
    out = tmp_path / "out.bin"

    wrong = _run([*ncbackup_cmd, "decrypt", "--key-file", str(stranger), "--input", str(crypt), "--output", str(out)], tmp_path)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert not out.exists()

    crypt.write_bytes(crypt.read_bytes()[:-1000])
    truncated = _run([*ncbackup_cmd, "decrypt", "--key-file", str(identity), "--input", str(crypt), "--output", str(out)], tmp_path)
    assert truncated.returncode == 2 and "Traceback" not in truncated.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ncbackup")] == []


def test_gpg_data_without_integrity_check_decrypts_with_warning_exit_1(tmp_path, ncbackup_cmd, gpg_home):
    gpg = need_binary("gpg")
    key = _key(tmp_path)
    archive = _make_tar_gz(tmp_path)
    crypt = tmp_path / "old.tar.gz.crypt"
    subprocess.run(
        [gpg, "--homedir", str(gpg_home), "--batch", "--yes", "--quiet", "--symmetric", "--cipher-algo", "CAST5",
         "--rfc2440", "--passphrase-file", str(key), "--output", str(crypt), str(archive)],
        check=True, capture_output=True,
    )
    out = tmp_path / "old.tar.gz"
    result = _run([*ncbackup_cmd, "decrypt", "--key-file", str(key), "--input", str(crypt), "--output", str(out)], tmp_path)
    assert result.returncode == 1, result.stderr
    assert "integrity check" in result.stderr
    assert out.read_bytes() == archive.read_bytes()


def test_decrypts_ascii_armored_age_file(tmp_path, ncbackup_cmd):
    age = need_binary("age")
    age_keygen = need_binary("age-keygen")
    identity = tmp_path / "key.txt"
    subprocess.run([age_keygen, "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run([age_keygen, "-y", str(identity)], check=True, capture_output=True, text=True).stdout.strip()
    plain = tmp_path / "plain.bin"
    plain.write_bytes(os.urandom(200_000))
    armored = tmp_path / "plain.bin.age"
    subprocess.run([age, "-a", "-r", recipient, "-o", str(armored), str(plain)], check=True)
    out = tmp_path / "out.bin"
    result = _run([*ncbackup_cmd, "decrypt", "--key-file", str(identity), "--input", str(armored), "--output", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == plain.read_bytes()

    armored.write_bytes(armored.read_bytes()[:-200])
    damaged = _run([*ncbackup_cmd, "decrypt", "--key-file", str(identity), "--input", str(armored),
                    "--output", str(tmp_path / "o2")], tmp_path)
    assert damaged.returncode == 2 and "Traceback" not in damaged.stderr
    assert not (tmp_path / "o2").exists()
