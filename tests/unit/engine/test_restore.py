"""Reading sets back: real sets written by write_backup_set, then damaged on disk the ways storage fails."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ncbackup.engine.backupset import NamedStorage, PipelineSpec, write_backup_set
from ncbackup.engine.restore import (
    RestoreOptions,
    open_plain_stream,
    open_stream,
    plain_suffix,
    restore_set,
    verify_set,
)
from ncbackup.errors import BackupError, DecryptError, IntegrityError, SourceError
from ncbackup.sources.base import CheckLine, StreamReport
from ncbackup.stages.age import AgeStage
from ncbackup.stages.compress import GzipStage, NoCompression, ZstdStage
from ncbackup.stages.keys import write_identity_file
from ncbackup.stages.legacy_openssl import LegacyOpenSSLStage
from ncbackup.stages.registry import NoEncryption
from ncbackup.storage.local import LocalStorage
from tests.support import SIGNER, read_manifest

PART_BYTES = 64 * 1024


@dataclass
class BytesStream:
    """A stream of fixed bytes (kind "blob" has no restorer: restore writes it as a plain file)."""

    name: str
    data: bytes
    kind: str = "blob"
    suffix: str = ".bin"
    fails: bool = False

    def write_to(self, sink, report: StreamReport) -> None:
        for start in range(0, len(self.data), 100_000):
            sink.write(self.data[start:start + 100_000])
        if self.fails:
            raise SourceError("the dump died halfway")


@dataclass
class BytesSource:
    report = StreamReport()   # what the source says about itself (sources/base.Source)

    items: list[BytesStream]

    def streams(self) -> Iterator[BytesStream]:
        yield from self.items

    def describe(self) -> str:
        return "test bytes"

    def check(self) -> list[CheckLine]:
        return []


def _data(size_bytes: int, seed: int = 0) -> bytes:
    text = b"".join(b"line %d of a compressible log file\n" % i for i in range(size_bytes // 70))
    return (text + os.urandom(size_bytes))[:size_bytes] if seed == 0 else hashlib.sha256(b"%d" % seed).digest() * (size_bytes // 32)


@dataclass
class WrittenSet:
    storage: LocalStorage
    set_id: str
    key_file: Path
    streams: dict[str, bytes]

    def part_path(self, name: str) -> Path:
        return self.storage.base / self.set_id / name

    def parts(self, stream: str) -> list[str]:
        manifest = read_manifest(self.storage, self.set_id)
        return [p.name for p in manifest.stream(stream).parts]


def _write_set(tmp_path: Path, *, cipher: str = "age", codec: str = "zstd", streams=None, subdir: str = "b") -> WrittenSet:
    key_file = tmp_path / f"key-{subdir}.txt"
    if cipher == "age":
        if not key_file.exists():
            write_identity_file(key_file)
        recipient = key_file.read_text().splitlines()[1].split(": ")[1]
        encryption = AgeStage(recipients=[recipient])
    elif cipher == "openssl-legacy":
        key_file.write_text("0123456789abcdef" * 4 + "\n")
        key_file.chmod(0o600)
        encryption = LegacyOpenSSLStage(b"0123456789abcdef" * 4)
    else:
        encryption = NoEncryption()
    compression = {"zstd": ZstdStage(threads=0), "gzip": GzipStage(), "none": NoCompression()}[codec]
    streams = streams or [BytesStream("files", _data(300_000), suffix=".tar"), BytesStream("mysql-3306-shop", _data(5_000), suffix=".sql")]
    storage = LocalStorage(tmp_path / subdir / "web1")
    result = write_backup_set(
        PipelineSpec(signer=SIGNER,
            sources=[BytesSource(list(streams))], compression=compression, encryption=encryption,
            part_size_bytes=PART_BYTES, storages=[NamedStorage("STORAGE", storage)],
        ),
        hostname="web1",
    )
    assert result.manifest is not None
    return WrittenSet(storage, result.set_id, key_file, {s.name: s.data for s in streams if not s.fails})


def _read_plain(written: WrittenSet, stream: str, key_file: Path | None = None) -> bytes:
    with open_plain_stream(written.storage, read_manifest(written.storage, written.set_id), stream,
                           key_file=key_file or written.key_file) as (plain, stored):
        out = b""
        while chunk := plain.read(50_000):
            out += chunk
        assert stored.drain() == 0
    return out


# --- reading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cipher,codec", [("age", "zstd"), ("openssl-legacy", "gzip"), ("none", "none"), ("age", "none")])
def test_plain_stream_round_trips_every_cipher_and_codec(tmp_path, cipher, codec):
    written = _write_set(tmp_path, cipher=cipher, codec=codec)
    assert len(written.parts("files")) > 1, "the test needs a multi-part stream"
    for name, data in written.streams.items():
        assert _read_plain(written, name) == data


def test_stored_stream_is_the_parts_concatenated(tmp_path):
    written = _write_set(tmp_path)
    parts = written.parts("files")
    joined = b"".join(written.part_path(name).read_bytes() for name in parts)
    with open_stream(written.storage, read_manifest(written.storage, written.set_id), "files") as stored:
        assert stored.read() == joined
        assert stored.parts_checked == len(parts)


def test_plain_suffix_drops_compression_and_cipher(tmp_path):
    written = _write_set(tmp_path)
    manifest = read_manifest(written.storage, written.set_id)
    assert plain_suffix(manifest.stream("files")) == ".tar"
    assert plain_suffix(manifest.stream("mysql-3306-shop")) == ".sql"


# --- verify ---------------------------------------------------------------------------------------


def test_verify_good_set_decrypts_every_stream(tmp_path):
    written = _write_set(tmp_path)
    report = verify_set(written.storage, read_manifest(written.storage, written.set_id), key_file=written.key_file)
    assert report.streams_checked == 2
    assert report.parts_checked == sum(len(written.parts(s)) for s in written.streams)
    assert sorted(report.decrypted_streams) == ["files", "mysql-3306-shop"]
    assert report.warnings == [] and report.notes == []


def test_verify_without_key_checks_hashes_and_says_so(tmp_path):
    written = _write_set(tmp_path)
    report = verify_set(written.storage, read_manifest(written.storage, written.set_id), key_file=None)
    assert report.decrypted_streams == []
    assert report.parts_checked == sum(len(written.parts(s)) for s in written.streams)
    assert "not decrypted" in report.notes[0]


def test_verify_with_recipients_only_key_checks_hashes_only(tmp_path):
    written = _write_set(tmp_path)
    recipients = tmp_path / "recipients.txt"
    recipients.write_text(written.key_file.read_text().splitlines()[1].split(": ")[1] + "\n")
    report = verify_set(written.storage, read_manifest(written.storage, written.set_id), key_file=recipients)
    assert report.decrypted_streams == []
    assert "only recipients" in report.notes[0]
    with pytest.raises(DecryptError):
        verify_set(written.storage, read_manifest(written.storage, written.set_id), key_file=recipients, must_decrypt=True)


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_verify_names_the_bit_flipped_part(tmp_path):
    written = _write_set(tmp_path)
    second = written.parts("files")[1]
    _flip_byte(written.part_path(second), 1000)
    for key_file in (written.key_file, None):
        with pytest.raises(IntegrityError, match=rf"part {second} of set {written.set_id}.*SHA-256"):
            verify_set(written.storage, read_manifest(written.storage, written.set_id), key_file=key_file)


def test_verify_names_the_first_bad_part_when_two_are_bad(tmp_path):
    written = _write_set(tmp_path)
    parts = written.parts("files")
    _flip_byte(written.part_path(parts[2]), 5)
    _flip_byte(written.part_path(parts[1]), 5)
    with pytest.raises(IntegrityError, match=rf"part {parts[1]} "):
        verify_set(written.storage, read_manifest(written.storage, written.set_id), key_file=None)


def test_verify_names_a_truncated_part(tmp_path):
    written = _write_set(tmp_path)
    first = written.parts("files")[0]
    path = written.part_path(first)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IntegrityError, match=rf"part {first} .*truncated"):
        verify_set(written.storage, read_manifest(written.storage, written.set_id), key_file=written.key_file)


def test_verify_names_a_missing_part(tmp_path):
    written = _write_set(tmp_path)
    last = written.parts("files")[-1]
    written.part_path(last).unlink()
    with pytest.raises(IntegrityError, match=rf"part {last} .*missing"):
        verify_set(written.storage, read_manifest(written.storage, written.set_id), key_file=written.key_file)


def test_verify_names_a_part_copied_from_another_set(tmp_path):
    """Same stream, same part name, another night: its size or hash cannot match this manifest."""
    written = _write_set(tmp_path)
    other = _write_set(tmp_path, subdir="other")
    name = written.parts("files")[1]
    written.part_path(name).write_bytes(other.part_path(name).read_bytes())
    with pytest.raises(IntegrityError, match=rf"part {name} .*another set"):
        verify_set(written.storage, read_manifest(written.storage, written.set_id), key_file=written.key_file)


def test_verify_with_wrong_identity_is_decrypt_error(tmp_path):
    written = _write_set(tmp_path)
    stranger = tmp_path / "stranger.txt"
    write_identity_file(stranger)
    with pytest.raises(DecryptError):
        verify_set(written.storage, read_manifest(written.storage, written.set_id), key_file=stranger)


def test_verify_legacy_set_with_wrong_passphrase_fails(tmp_path):
    written = _write_set(tmp_path, cipher="openssl-legacy", codec="gzip")
    assert verify_set(written.storage, read_manifest(written.storage, written.set_id), key_file=written.key_file).decrypted_streams
    wrong = tmp_path / "wrong_key"
    wrong.write_text("f" * 64 + "\n")
    wrong.chmod(0o600)
    with pytest.raises((DecryptError, IntegrityError)):
        verify_set(written.storage, read_manifest(written.storage, written.set_id), key_file=wrong)


def test_verify_incomplete_set_is_refused(tmp_path):
    written = _write_set(tmp_path)
    written.part_path("manifest.json").unlink()
    with pytest.raises(BackupError, match="incomplete"):
        verify_set(written.storage, read_manifest(written.storage, written.set_id), key_file=written.key_file)


def test_verify_reports_failed_stream_and_unlisted_file(tmp_path):
    written = _write_set(tmp_path, streams=[BytesStream("files", _data(100_000)), BytesStream("mysql-x", b"partial", fails=True)])
    written.part_path("stray.000").write_bytes(b"not ours")
    report = verify_set(written.storage, read_manifest(written.storage, written.set_id), key_file=written.key_file)
    assert report.decrypted_streams == ["files"]
    assert any("mysql-x failed during the backup" in w for w in report.warnings)
    assert any("stray.000" in w for w in report.warnings)


# --- restore (streams without a restorer become plain files) ----------------------------------------


def test_restore_writes_plain_streams_into_target(tmp_path):
    written = _write_set(tmp_path)
    target = tmp_path / "target"
    report = restore_set(written.storage, read_manifest(written.storage, written.set_id),
                         options=RestoreOptions(target=target, key_file=written.key_file))
    assert (target / "files.tar").read_bytes() == written.streams["files"]
    assert (target / "mysql-3306-shop.sql").read_bytes() == written.streams["mysql-3306-shop"]
    assert len(report.restored) == 2


def test_restore_only_the_named_stream(tmp_path):
    written = _write_set(tmp_path)
    target = tmp_path / "target"
    restore_set(written.storage, read_manifest(written.storage, written.set_id),
                options=RestoreOptions(target=target, key_file=written.key_file, stream_names=("mysql-3306-shop",)))
    assert sorted(p.name for p in target.iterdir()) == ["mysql-3306-shop.sql"]


def test_restore_refuses_unknown_stream_naming_the_real_ones(tmp_path):
    written = _write_set(tmp_path)
    with pytest.raises(IntegrityError, match="files, mysql-3306-shop"):
        restore_set(written.storage, read_manifest(written.storage, written.set_id),
                    options=RestoreOptions(target=tmp_path / "t", key_file=written.key_file, stream_names=("nope",)))


def test_restore_refuses_non_empty_target_unless_forced(tmp_path):
    written = _write_set(tmp_path)
    target = tmp_path / "target"
    target.mkdir()
    (target / "precious.txt").write_text("keep")
    manifest = read_manifest(written.storage, written.set_id)
    with pytest.raises(BackupError, match="not empty.*--force"):
        restore_set(written.storage, manifest, options=RestoreOptions(target=target, key_file=written.key_file))
    assert sorted(p.name for p in target.iterdir()) == ["precious.txt"]
    restore_set(written.storage, manifest, options=RestoreOptions(target=target, key_file=written.key_file, force=True))
    assert (target / "files.tar").read_bytes() == written.streams["files"]
    assert (target / "precious.txt").read_text() == "keep"


@pytest.mark.parametrize("cipher", ["age", "none", "openssl-legacy"])
def test_restore_of_damaged_last_part_leaves_no_file(tmp_path, cipher):
    """Even when the cipher cannot notice (none, legacy CBC), the part hash stops the restore before the rename."""
    written = _write_set(tmp_path, cipher=cipher, codec="none")
    last = written.parts("files")[-1]
    _flip_byte(written.part_path(last), 3)
    target = tmp_path / "target"
    with pytest.raises(IntegrityError, match=rf"part {last} "):
        restore_set(written.storage, read_manifest(written.storage, written.set_id),
                    options=RestoreOptions(target=target, key_file=written.key_file, stream_names=("files",)))
    assert list(target.iterdir()) == []


def test_restore_with_recipients_only_key_says_which_key_is_needed(tmp_path):
    written = _write_set(tmp_path)
    recipients = tmp_path / "recipients.txt"
    recipients.write_text(written.key_file.read_text().splitlines()[1].split(": ")[1] + "\n")
    target = tmp_path / "target"
    with pytest.raises(DecryptError, match="recipients"):
        restore_set(written.storage, read_manifest(written.storage, written.set_id),
                    options=RestoreOptions(target=target, key_file=recipients))
    assert list(target.iterdir()) == []


def test_restore_skips_failed_stream_with_a_warning_but_refuses_it_by_name(tmp_path):
    written = _write_set(tmp_path, streams=[BytesStream("files", _data(100_000)), BytesStream("mysql-x", b"partial", fails=True)])
    manifest = read_manifest(written.storage, written.set_id)
    report = restore_set(written.storage, manifest, options=RestoreOptions(target=tmp_path / "t", key_file=written.key_file))
    assert any("mysql-x" in w for w in report.warnings)
    with pytest.raises(BackupError, match="failed during the backup"):
        restore_set(written.storage, manifest,
                    options=RestoreOptions(target=tmp_path / "t2", key_file=written.key_file, stream_names=("mysql-x",)))


# --- dispatch to the restorer of each kind ---------------------------------------------------------


def _add_restorer(monkeypatch, kind, restorer):
    """Make restore find restorer for stream kind (restore looks restorers up through sources/kinds.py)."""
    from ncbackup.sources import kinds

    real = kinds.restorer_for
    monkeypatch.setattr(kinds, "restorer_for", lambda wanted: restorer if wanted == kind else real(wanted))


def test_database_stream_goes_to_its_restorer_only_with_to_database(tmp_path, monkeypatch):

    received = []

    def recording_restorer(reader, request):
        received.append((reader.read(), request))
        return ["loaded"]

    _add_restorer(monkeypatch, "testdb", recording_restorer)
    dump = _data(200_000)
    written = _write_set(tmp_path, streams=[BytesStream("testdb-main", dump, kind="testdb", suffix=".sql")])
    manifest = read_manifest(written.storage, written.set_id)

    # Without --to-database: a plain dump file, the restorer is not called.
    restore_set(written.storage, manifest, options=RestoreOptions(target=tmp_path / "files", key_file=written.key_file))
    assert (tmp_path / "files" / "testdb-main.sql").read_bytes() == dump
    assert received == []

    # With it: the restorer gets the plain bytes and the request; no target is needed.
    report = restore_set(written.storage, manifest, options=RestoreOptions(
        target=None, key_file=written.key_file, to_database=True, database="copy",
        options_by_kind={"testdb": {"CREDENTIAL_PATH": "/etc/x.cnf"}},
    ))
    ((data, request),) = received
    assert data == dump
    assert request.to_database and request.database == "copy" and request.kind == "testdb"
    assert request.options == {"CREDENTIAL_PATH": "/etc/x.cnf"}
    assert report.warnings == ["loaded"]


def test_sqlite_stream_without_to_database_is_a_valid_database_file(tmp_path):
    import sqlite3

    source_db = tmp_path / "app.db"
    with sqlite3.connect(source_db) as connection:
        connection.execute("CREATE TABLE t (x TEXT)")
        connection.executemany("INSERT INTO t VALUES (?)", [(f"row {i}",) for i in range(1000)])
    connection.close()
    written = _write_set(tmp_path, streams=[BytesStream("sqlite-app", source_db.read_bytes(), kind="sqlite", suffix=".sqlite")])
    restore_set(written.storage, read_manifest(written.storage, written.set_id),
                options=RestoreOptions(target=tmp_path / "out", key_file=written.key_file))
    restored = tmp_path / "out" / "sqlite-app.sqlite"
    assert restored.read_bytes() == source_db.read_bytes()
    connection = sqlite3.connect(restored)
    assert connection.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1000
    connection.close()


@pytest.mark.parametrize("cipher", ["none", "openssl-legacy"])
def test_unauthenticated_stream_with_damaged_part_never_reaches_its_restorer(tmp_path, monkeypatch, cipher):

    calls = []
    _add_restorer(monkeypatch, "testdb", lambda reader, request: calls.append(reader.read(10)) or [])
    written = _write_set(tmp_path, cipher=cipher, codec="none",
                         streams=[BytesStream("testdb-main", _data(300_000), kind="testdb", suffix=".sql")])
    last = written.parts("testdb-main")[-1]
    _flip_byte(written.part_path(last), 7)
    with pytest.raises(IntegrityError, match=rf"part {last} "):
        restore_set(written.storage, read_manifest(written.storage, written.set_id),
                    options=RestoreOptions(target=None, key_file=written.key_file, to_database=True))
    assert calls == []


def test_missing_key_file_says_to_pass_the_original_key_not_to_make_one(tmp_path):
    written = _write_set(tmp_path)
    missing = tmp_path / "nowhere" / "key.txt"
    with pytest.raises(DecryptError, match="does not exist; pass the identity") as caught:
        restore_set(written.storage, read_manifest(written.storage, written.set_id),
                    options=RestoreOptions(target=tmp_path / "t", key_file=missing))
    assert "keygen" not in str(caught.value)
    report = verify_set(written.storage, read_manifest(written.storage, written.set_id), key_file=missing)
    assert "does not exist" in report.notes[0] and report.decrypted_streams == []


# --- the reading threads ----------------------------------------------------------------------------


def _restore_threads() -> list[str]:
    import threading

    return [thread.name for thread in threading.enumerate() if thread.name.startswith("restore-")]


def test_reading_threads_are_gone_after_a_whole_stream(tmp_path):
    written = _write_set(tmp_path)
    assert _read_plain(written, "files") == written.streams["files"]
    assert _restore_threads() == []


def test_consumer_failure_stops_the_reading_threads(tmp_path):
    written = _write_set(tmp_path, streams=[BytesStream("files", _data(3_000_000), suffix=".tar")])
    manifest = read_manifest(written.storage, written.set_id)
    with pytest.raises(BackupError, match="the consumer failed"):
        with open_plain_stream(written.storage, manifest, "files", key_file=written.key_file) as (plain, _stored):
            assert plain.read(1000)
            raise BackupError("the consumer failed")
    assert _restore_threads() == []


def test_damaged_part_read_by_the_thread_is_named_in_the_consumer(tmp_path):
    written = _write_set(tmp_path, streams=[BytesStream("files", _data(3_000_000), suffix=".tar")])
    parts = written.parts("files")
    _flip_byte(written.part_path(parts[3]), 100)
    manifest = read_manifest(written.storage, written.set_id)
    with pytest.raises(IntegrityError, match=rf"part {parts[3]} of set {written.set_id}"):
        with open_plain_stream(written.storage, manifest, "files", key_file=written.key_file) as (plain, _stored):
            while plain.read(1 << 20):
                pass
    assert _restore_threads() == []
