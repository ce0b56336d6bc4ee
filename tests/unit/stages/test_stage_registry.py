"""Stages from COMPRESSION / ENCRYPTION sections and from manifest names; the KEY_FILE rules of the original."""

from __future__ import annotations

import io
import os
import stat
import subprocess
from pathlib import Path

import pytest

from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.errors import ConfigError, DecryptError
from ncbackup.stages.keys import read_key_file, write_identity_file
from ncbackup.stages.registry import (
    BYTES_PER_MB,
    compression_for,
    compression_from_section,
    decryption_for,
    encryption_from_section,
)
from tests.support import need_binary


@pytest.fixture
def general(tmp_path: Path) -> GeneralSettings:
    return GeneralSettings(hostname="web1", work_folder=tmp_path / "work")


def _section(name: str, module: str, **parameters) -> SectionSettings:
    return SectionSettings(name=name, action="execute", module=module, parameters=parameters)


def _round_trip(writer_stage, reader_stage, data: bytes) -> bytes:
    out = io.BytesIO()
    writer = writer_stage.writer(out)
    writer.write(data)
    writer.close()
    return reader_stage.reader(io.BytesIO(out.getvalue())).read()


def test_no_compression_section_means_zstd_level_3(general) -> None:
    stage = compression_from_section(None, general)
    assert (stage.name, stage.suffix, stage.describe()["level"]) == ("zstd", ".zst", 3)


@pytest.mark.parametrize(
    ("parameters", "name", "level"),
    [({"ALGORITHM": "gzip", "LEVEL": "9"}, "gzip", 9), ({"ALGORITHM": "ZSTD", "LEVEL": "19", "THREADS": "2"}, "zstd", 19),
     ({"ALGORITHM": "none"}, "none", None), ({"OBJECTIVES": "/var/backups", "TAR_COMMAND": "tar"}, "zstd", 3)],
)
def test_compression_section_parameters(general, parameters, name, level) -> None:
    stage = compression_from_section(_section("COMPRESSION", "compression", **parameters), general)
    assert stage.name == name
    assert stage.describe().get("level") == level
    data = os.urandom(1000) + b"a" * 100_000
    assert _round_trip(stage, compression_for(stage.name), data) == data


@pytest.mark.parametrize("parameters", [{"ALGORITHM": "lz4"}, {"LEVEL": "99"}, {"ALGORITHM": "gzip", "LEVEL": "0"}, {"LEVEL": "fast"}])
def test_bad_compression_settings_are_config_errors(general, parameters) -> None:
    with pytest.raises(ConfigError, match="COMPRESSION"):
        compression_from_section(_section("COMPRESSION", "compression", **parameters), general)


def test_no_encryption_section_stores_unencrypted_with_a_warning(general) -> None:
    choice = encryption_from_section(None, general)
    assert choice.stage.name == "none" and choice.part_size_bytes is None
    assert any("unencrypted" in warning for warning in choice.warnings)


def test_missing_key_file_is_created_as_age_identity_with_loud_warning(general, tmp_path: Path, caplog) -> None:
    key_file = tmp_path / "etc" / "nc-backup-py" / "key_file"
    choice = encryption_from_section(_section("ENCRYPTION", "encryption", KEY_FILE=str(key_file), FILE_SIZE="2"), general)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert read_key_file(key_file).kind == "age-identity"
    assert choice.stage.name == "age" and choice.part_size_bytes == 2 * BYTES_PER_MB
    assert any(str(key_file) in warning and "SAFE" in warning for warning in choice.warnings)
    assert str(key_file) in caplog.text
    secret = [line for line in key_file.read_text().splitlines() if line.startswith("AGE-SECRET")][0]
    assert secret not in caplog.text and all(secret not in warning for warning in choice.warnings)
    # The next run finds the key and says nothing loud.
    again = encryption_from_section(_section("ENCRYPTION", "encryption", KEY_FILE=str(key_file)), general)
    assert again.warnings == () and again.part_size_bytes == 4000 * BYTES_PER_MB


@pytest.mark.parametrize(("file_size", "expected"), [("0", None), ("0.5", None), ("1", BYTES_PER_MB), (" 100 ", 100 * BYTES_PER_MB)])
def test_file_size_in_mb_and_below_one_means_one_part(general, tmp_path: Path, file_size, expected) -> None:
    key_file = tmp_path / "key"
    write_identity_file(key_file)
    choice = encryption_from_section(_section("ENCRYPTION", "encryption", KEY_FILE=str(key_file), FILE_SIZE=file_size), general)
    assert choice.part_size_bytes == expected


def test_recipient_only_key_file_writes_age_that_only_the_identity_reads(general, tmp_path: Path) -> None:
    identity = tmp_path / "identity"
    recipient = write_identity_file(identity)
    server_key = tmp_path / "server_key"
    server_key.write_text(recipient + "\n")
    choice = encryption_from_section(_section("ENCRYPTION", "encryption", KEY_FILE=str(server_key)), general)
    data = os.urandom(200_000)
    assert _round_trip(choice.stage, decryption_for("age", identity), data) == data
    with pytest.raises(DecryptError, match="only public recipients"):
        decryption_for("age", server_key)


def test_legacy_passphrase_key_file_writes_openssl_format_with_warning(general, tmp_path: Path) -> None:
    openssl = need_binary("openssl")
    key_file = tmp_path / "key_file"
    key_file.write_text("0123456789abcdef" * 4 + "\n")
    os.chmod(key_file, 0o600)
    choice = encryption_from_section(_section("ENCRYPTION", "encryption", KEY_FILE=str(key_file)), general)
    assert choice.stage.name == "openssl-legacy" and choice.stage.suffix == ".crypt"
    assert any("ncbackup keygen" in warning for warning in choice.warnings)
    data = os.urandom(100_000)
    out = io.BytesIO()
    writer = choice.stage.writer(out)
    writer.write(data)
    writer.close()
    encrypted = tmp_path / "data.crypt"
    encrypted.write_bytes(out.getvalue())
    result = subprocess.run(
        [openssl, "enc", "-d", "-aes-256-cbc", "-md", "md5", "-pass", f"file:{key_file}", "-in", str(encrypted)],
        capture_output=True, check=True,
    )
    assert result.stdout == data
    assert _round_trip(choice.stage, decryption_for("openssl-legacy", key_file), data) == data


def test_decryption_refuses_mismatched_key_kinds(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy"
    legacy.write_text("abcdef\n")
    legacy.chmod(0o600)
    identity = tmp_path / "identity"
    write_identity_file(identity)
    with pytest.raises(DecryptError, match="legacy passphrase"):
        decryption_for("age", legacy)
    with pytest.raises(DecryptError, match="legacy OpenSSL"):
        decryption_for("openssl-legacy", identity)
    with pytest.raises(DecryptError, match="--key-file"):
        decryption_for("age", None)
    with pytest.raises(DecryptError, match="unknown cipher"):
        decryption_for("rot13", identity)
    with pytest.raises(DecryptError, match="unknown compression"):
        compression_for("lzma")
    assert decryption_for("none", None).name == "none"
