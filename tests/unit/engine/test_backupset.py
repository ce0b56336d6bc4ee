"""The streaming pipeline end to end: real files and bytes through zstd, age, splitting and real local storages."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from ncbackup.engine.backupset import NamedStorage, PipelineSpec, write_backup_set, write_to_folder
from ncbackup.errors import SourceError, StorageError
from ncbackup.setformat import list_sets, set_id_for, utc_now
from ncbackup.sources.base import StreamReport
from ncbackup.sources.files import FilesetOptions, FilesSource
from ncbackup.stages.age import AgeStage
from ncbackup.stages.compress import GzipStage, NoCompression, ZstdStage
from ncbackup.stages.keys import read_key_file, write_identity_file
from ncbackup.stages.registry import NoEncryption
from ncbackup.storage.local import LocalStorage
from tests.support import SIGNER, TRUST, need_binary, read_manifest, small_tmpfs

# --- helpers: a deterministic stream source (the pipeline is what is under test here) ----------------


def _pattern(size_bytes: int, seed: bytes = b"seed") -> bytes:
    block = b"".join(hashlib.sha256(seed + bytes([i])).digest() for i in range(256))  # 8 KiB, incompressible
    text = b"compressible line of a log file\n" * 256
    return ((block + text) * (size_bytes // (len(block) + len(text)) + 1))[:size_bytes]


class BytesStream:
    def __init__(self, name: str, data: bytes, *, kind: str = "files", suffix: str = ".tar", fail_after_bytes: int | None = None) -> None:
        self.name, self.kind, self.suffix = name, kind, suffix
        self.data = data
        self.fail_after_bytes = fail_after_bytes

    def write_to(self, sink, report: StreamReport) -> None:
        for start in range(0, len(self.data), 1 << 20):
            if self.fail_after_bytes is not None and start >= self.fail_after_bytes:
                raise SourceError(f"dump of {self.name} died: server went away")
            sink.write(self.data[start:start + (1 << 20)])
        report.metadata["bytes"] = len(self.data)
        report.warn(f"/secret/path/of/{self.name} changed while read")


class StreamsSource:
    report = StreamReport()   # what the source says about itself (sources/base.Source)

    def __init__(self, *streams) -> None:
        self._streams = streams

    def streams(self):
        yield from self._streams

    def describe(self) -> str:
        return "test streams"

    def check(self):
        return []


class FailingStorage:
    """A real local storage that breaks while writing its part number fail_on_part (like a dying disk)."""

    def __init__(self, base: Path, *, fail_on_part: int = 1) -> None:
        self.inner = LocalStorage(base)
        self.name = f"failing:{base}"
        self.fail_on_part = fail_on_part

    def put(self, key: str, stream) -> None:
        if key.endswith(f".{self.fail_on_part:03d}"):
            stream.read(1000)
            raise StorageError(f"i/o error on {self.name} writing {key}; replace the disk")
        self.inner.put(key, stream)

    def get(self, key: str):
        return self.inner.get(key)

    def list(self, prefix: str = ""):
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


@pytest.fixture
def identity(tmp_path: Path) -> Path:
    path = tmp_path / "identity.txt"
    write_identity_file(path)
    return path


def _age(identity: Path, *, with_identity: bool = False) -> AgeStage:
    material = read_key_file(identity)
    return AgeStage(recipients=material.recipients, identities=material.identities if with_identity else ())


def _decode(set_folder: Path, file_name: str, identity: Path) -> bytes:
    """Concatenate the parts in order and run them through the Debian age and zstd binaries."""
    age = need_binary("age")
    zstd = need_binary("zstd")
    parts = sorted(set_folder.glob(f"{file_name}.*"), key=lambda p: int(p.suffix[1:]))
    encrypted = b"".join(part.read_bytes() for part in parts)
    compressed = subprocess.run([age, "-d", "-i", str(identity)], input=encrypted, capture_output=True, check=True).stdout
    return subprocess.run([zstd, "-d", "-c"], input=compressed, capture_output=True, check=True).stdout


# --- tests -------------------------------------------------------------------------------------------


def test_set_goes_to_two_storages_and_a_failing_one_stays_incomplete(tmp_path: Path, identity: Path) -> None:
    data = os.urandom(3_000_000) + _pattern(2_000_000)
    a, b, broken = tmp_path / "a" / "web1", tmp_path / "b" / "web1", tmp_path / "broken" / "web1"
    spec = PipelineSpec(signer=SIGNER,
        sources=[StreamsSource(BytesStream("files", data))],
        compression=ZstdStage(),
        encryption=_age(identity),
        part_size_bytes=1_000_000,
        storages=[
            NamedStorage("STORAGE", LocalStorage(a)),
            NamedStorage("STORAGE_BROKEN", FailingStorage(broken, fail_on_part=1)),
            NamedStorage("STORAGE_2", LocalStorage(b)),
        ],
    )
    result = write_backup_set(spec, hostname="web1")
    assert not result.is_complete
    outcomes = {o.section_name: o.error for o in result.storages}
    assert outcomes["STORAGE"] is None and outcomes["STORAGE_2"] is None
    assert "i/o error" in outcomes["STORAGE_BROKEN"]
    for folder in (a, b):
        set_folder = folder / result.set_id
        assert (set_folder / "manifest.json").is_file()
        assert _decode(set_folder, "files.tar.zst.age", identity) == data
    # The broken storage keeps what it got, never a manifest: it is listed incomplete.
    assert not (broken / result.set_id / "manifest.json").exists()
    assert [(s.set_id, s.is_complete) for s in list_sets(LocalStorage(broken), TRUST)] == [(result.set_id, False)]
    assert [(s.set_id, s.is_complete) for s in list_sets(LocalStorage(a), TRUST)] == [(result.set_id, True)]


def test_manifest_lists_every_part_with_size_and_sha256(tmp_path: Path, identity: Path) -> None:
    data = os.urandom(3_500_000)
    storage = LocalStorage(tmp_path / "web1")
    spec = PipelineSpec(signer=SIGNER,
        sources=[StreamsSource(BytesStream("files", data),
                               BytesStream("mysql-3306-shop", _pattern(100_000, b"db"), kind="mysql", suffix=".sql"))],
        compression=ZstdStage(level=1), encryption=_age(identity), part_size_bytes=700_000,
        storages=[NamedStorage("STORAGE", storage)],
    )
    result = write_backup_set(spec, hostname="web1")
    assert result.is_complete and not result.failed_streams
    manifest = read_manifest(storage, result.set_id)
    assert manifest == result.manifest
    assert manifest.host == "web1" and manifest.finished_at >= manifest.started_at
    files = manifest.stream("files")
    assert (files.kind, files.codec, files.cipher, files.file_name) == ("files", "zstd", "age", "files.tar.zst.age")
    assert files.recipient_fingerprints and files.metadata == {"bytes": len(data)} and files.bytes_in == len(data)
    assert files.warning_count == 1
    on_disk = sorted(p.name for p in (tmp_path / "web1" / result.set_id).iterdir())
    listed = sorted([p.name for s in manifest.streams for p in s.parts] + ["manifest.json", "manifest.json.minisig"])
    assert on_disk == listed
    for stream in manifest.streams:
        for part in stream.parts:
            content = (tmp_path / "web1" / result.set_id / part.name).read_bytes()
            assert (len(content), hashlib.sha256(content).hexdigest()) == (part.size_bytes, part.sha256)
        assert stream.bytes_out == sum(p.size_bytes for p in stream.parts)
    assert all(p.size_bytes == 700_000 for p in files.parts[:-1])
    assert manifest.stream("mysql-3306-shop").file_name == "mysql-3306-shop.sql.zst.age"


def test_real_files_backup_restores_with_stock_tools_and_manifest_names_no_file(tmp_path: Path, identity: Path) -> None:
    tar = need_binary("tar")
    tree = tmp_path / "data" / "very-private-project"
    (tree / "sub").mkdir(parents=True)
    (tree / "secret-plans.txt").write_bytes(b"world domination\n" * 1000)
    (tree / "sub" / "blob.bin").write_bytes(os.urandom(2_000_000))
    source = FilesSource(FilesetOptions.model_validate({"FILESET_INCLUDE": str(tree)}))
    storage = LocalStorage(tmp_path / "backups" / "web1")
    spec = PipelineSpec(signer=SIGNER,
        sources=[source], compression=ZstdStage(), encryption=_age(identity), part_size_bytes=500_000,
        storages=[NamedStorage("STORAGE", storage)],
    )
    progress: list[tuple[str, int]] = []
    result = write_backup_set(spec, hostname="web1", on_progress=lambda name, total: progress.append((name, total)))
    assert result.is_complete, result
    set_folder = tmp_path / "backups" / "web1" / result.set_id
    archive = _decode(set_folder, "files.tar.zst.age", identity)
    target = tmp_path / "restored"
    target.mkdir()
    subprocess.run([tar, "-x", "-C", str(target)], input=archive, check=True)
    restored = target / tree.relative_to("/")
    assert (restored / "secret-plans.txt").read_bytes() == (tree / "secret-plans.txt").read_bytes()
    assert (restored / "sub" / "blob.bin").read_bytes() == (tree / "sub" / "blob.bin").read_bytes()
    manifest_text = (set_folder / "manifest.json").read_text()
    for word in ("secret-plans", "very-private-project", "blob.bin", "AGE-SECRET-KEY"):
        assert word not in manifest_text
    final_progress = {name: total for name, total in progress}
    assert final_progress["files"] == result.streams[0].bytes_in > 2_000_000


def test_failed_source_is_recorded_and_the_next_stream_goes_on(tmp_path: Path, identity: Path) -> None:
    storage = LocalStorage(tmp_path / "web1")
    good = _pattern(2_000_000, b"good")
    spec = PipelineSpec(signer=SIGNER,
        sources=[StreamsSource(
            BytesStream("mysql-3306-shop", _pattern(4_000_000), kind="mysql", suffix=".sql", fail_after_bytes=3_000_000),
            BytesStream("mysql-3306-blog", good, kind="mysql", suffix=".sql"),
        )],
        compression=NoCompression(), encryption=_age(identity), part_size_bytes=1_000_000,
        storages=[NamedStorage("STORAGE", storage)],
    )
    result = write_backup_set(spec, hostname="web1")
    failed = {s.name: s.error for s in result.streams}
    assert "server went away" in failed["mysql-3306-shop"] and failed["mysql-3306-blog"] is None
    manifest = read_manifest(storage, result.set_id)
    assert manifest.stream("mysql-3306-shop").status == "failed"
    assert "server went away" in manifest.stream("mysql-3306-shop").error
    assert manifest.stream("mysql-3306-blog").status == "ok"
    set_folder = tmp_path / "web1" / result.set_id
    age = need_binary("age")
    blog = b"".join(p.read_bytes() for p in sorted(set_folder.glob("mysql-3306-blog.sql.age.*")))
    assert subprocess.run([age, "-d", "-i", str(identity)], input=blog, capture_output=True, check=True).stdout == good
    # The failed stream's half-written part was not stored; its whole parts are listed in the manifest.
    on_disk = sorted(p.name for p in set_folder.glob("mysql-3306-shop*"))
    assert on_disk == [p.name for p in manifest.stream("mysql-3306-shop").parts]
    assert not list(set_folder.glob(".ncbackup-tmp-*"))


def test_duplicate_stream_names_get_numbered(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "web1")
    spec = PipelineSpec(signer=SIGNER,
        sources=[StreamsSource(BytesStream("files", b"one")), StreamsSource(BytesStream("files", b"two"), BytesStream("files", b"three"))],
        compression=NoCompression(), encryption=NoEncryption(), part_size_bytes=None,
        storages=[NamedStorage("STORAGE", storage)],
    )
    result = write_backup_set(spec, hostname="web1")
    assert [s.name for s in result.streams] == ["files", "files-2", "files-3"]
    set_folder = tmp_path / "web1" / result.set_id
    assert [(set_folder / f"{n}.tar.000").read_bytes() for n in ("files", "files-2", "files-3")] == [b"one", b"two", b"three"]


def test_empty_stream_gets_one_part_that_decrypts_to_nothing(tmp_path: Path, identity: Path) -> None:
    storage = LocalStorage(tmp_path / "web1")
    spec = PipelineSpec(signer=SIGNER,
        sources=[StreamsSource(BytesStream("files", b""))], compression=GzipStage(), encryption=_age(identity),
        part_size_bytes=1, storages=[NamedStorage("STORAGE", storage)],
    )
    result = write_backup_set(spec, hostname="web1")
    parts = result.manifest.stream("files").parts
    assert len(parts) == result.streams[0].bytes_out  # 1-byte parts
    stored = b"".join((tmp_path / "web1" / result.set_id / p.name).read_bytes() for p in parts)
    reader = GzipStage().reader(_age(identity, with_identity=True).reader(io.BytesIO(stored)))
    assert reader.read() == b""


def test_second_set_in_the_same_second_gets_a_suffix(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "web1")
    now = utc_now()
    for seconds in range(4):  # whichever second the run starts in, it is taken
        storage.put(f"{set_id_for(now + timedelta(seconds=seconds))}/files.tar.000", io.BytesIO(b"earlier run"))
    spec = PipelineSpec(signer=SIGNER,
        sources=[StreamsSource(BytesStream("files", b"x"))], compression=NoCompression(), encryption=NoEncryption(),
        part_size_bytes=None, storages=[NamedStorage("STORAGE", storage)],
    )
    result = write_backup_set(spec, hostname="web1")
    assert result.set_id.endswith("-2")
    assert (tmp_path / "web1" / result.set_id / "manifest.json").is_file()


def test_when_every_storage_fails_the_set_stops_without_manifest(tmp_path: Path, identity: Path) -> None:
    spec = PipelineSpec(signer=SIGNER,
        sources=[StreamsSource(BytesStream("files", _pattern(3_000_000)), BytesStream("other", b"never written"))],
        compression=NoCompression(), encryption=_age(identity), part_size_bytes=1_000_000,
        storages=[NamedStorage("STORAGE", FailingStorage(tmp_path / "broken", fail_on_part=0))],
    )
    result = write_backup_set(spec, hostname="web1")
    assert not result.is_complete and result.error
    assert "i/o error" in result.storages[0].error
    assert [s.name for s in result.streams] == ["files"]
    assert not list((tmp_path / "broken").rglob("manifest.json"))


def test_full_destination_disk_leaves_set_incomplete_and_reported(tmp_path: Path, identity: Path) -> None:
    with small_tmpfs(tmp_path / "small", size_bytes=2 * 1024 * 1024) as small:
        roomy = LocalStorage(tmp_path / "roomy" / "web1")
        spec = PipelineSpec(signer=SIGNER,
            sources=[StreamsSource(BytesStream("files", os.urandom(5_000_000)))],
            compression=ZstdStage(), encryption=_age(identity), part_size_bytes=1_000_000,
            storages=[NamedStorage("STORAGE_SMALL", LocalStorage(small / "web1")), NamedStorage("STORAGE_ROOMY", roomy)],
        )
        result = write_backup_set(spec, hostname="web1")
        outcomes = {o.section_name: o.error for o in result.storages}
        assert not result.is_complete
        assert "no space left on" in outcomes["STORAGE_SMALL"]
        assert outcomes["STORAGE_ROOMY"] is None
        assert [s.is_complete for s in list_sets(LocalStorage(small / "web1"), TRUST)] == [False]
        assert [s.is_complete for s in list_sets(roomy, TRUST)] == [True]


def test_write_to_folder_makes_plain_files_without_manifest(tmp_path: Path, identity: Path) -> None:
    data = _pattern(2_500_000)
    unsplit = write_to_folder(
        PipelineSpec(signer=SIGNER, sources=[StreamsSource(BytesStream("files", data))], compression=ZstdStage(),
                     encryption=NoEncryption(), part_size_bytes=None),
        tmp_path / "compressed",
    )
    assert unsplit.is_complete and unsplit.set_id is None
    assert sorted(p.name for p in (tmp_path / "compressed").iterdir()) == ["files.tar.zst"]
    zstd = need_binary("zstd")
    plain = subprocess.run([zstd, "-d", "-c", str(tmp_path / "compressed" / "files.tar.zst")], capture_output=True, check=True).stdout
    assert plain == data
    split = write_to_folder(
        PipelineSpec(signer=SIGNER, sources=[StreamsSource(BytesStream("files", data))], compression=ZstdStage(),
                     encryption=_age(identity), part_size_bytes=400_000),
        tmp_path / "encrypted",
    )
    names = sorted(p.name for p in (tmp_path / "encrypted").iterdir())
    assert names == [f"files.tar.zst.age.{i:03d}" for i in range(len(split.streams[0].parts))]
    assert _decode(tmp_path / "encrypted", "files.tar.zst.age", identity) == data


RSS_PROBE = r"""
import hashlib, resource, sys
from pathlib import Path
from ncbackup.engine.backupset import NamedStorage, PipelineSpec, write_backup_set
from ncbackup.stages.age import AgeStage
from ncbackup.stages.compress import ZstdStage
from ncbackup.stages.keys import read_key_file
from ncbackup.signing import generate_key

class CountingStorage:
    name = "counting"
    def __init__(self): self.bytes = 0
    def put(self, key, stream):
        while True:
            chunk = stream.read(4 << 20)
            if not chunk: return
            if "/manifest.json" not in key: self.bytes += len(chunk)
    def get(self, key): raise KeyError(key)
    def list(self, prefix=""): return iter(())
    def delete(self, key): pass

class BigStream:
    name, kind, suffix = "files", "files", ".tar"
    def write_to(self, sink, report):
        block = b"".join(hashlib.sha256(bytes([i, j])).digest() for i in range(256) for j in range(16))  # 128 KiB
        chunk = (block + bytes(len(block))) * 4   # 1 MiB, half incompressible
        for _ in range(int(sys.argv[2])):
            sink.write(chunk)

material = read_key_file(Path(sys.argv[1]))
storages = [NamedStorage("A", CountingStorage()), NamedStorage("B", CountingStorage())]
from ncbackup.sources.base import StreamReport
source = type("S", (), {"streams": lambda self: iter([BigStream()]), "describe": lambda self: "big",
                        "report": StreamReport()})()
spec = PipelineSpec(signer=generate_key(), sources=[source], compression=ZstdStage(level=3),
                    encryption=AgeStage(recipients=material.recipients), part_size_bytes=100 << 20, storages=storages)
result = write_backup_set(spec, hostname="probe")
assert result.streams[0].bytes_in == int(sys.argv[2]) << 20, result
assert storages[0].storage.bytes == storages[1].storage.bytes == result.streams[0].bytes_out
# VmHWM belongs to this process image alone; ru_maxrss would carry over the high-water mark of the
# (possibly large) pytest process this child was forked from.
print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')))
"""


def test_one_gib_stream_keeps_memory_flat(tmp_path: Path, identity: Path) -> None:
    # A resource bound, not a timing: peak RSS of the whole process while 1 GiB streams to two storages.
    probe = subprocess.run([sys.executable, "-c", RSS_PROBE, str(identity), "1024"], capture_output=True, text=True, check=False)
    assert probe.returncode == 0, probe.stderr
    peak_rss_mib = int(probe.stdout.strip()) / 1024
    assert peak_rss_mib < 300, f"peak RSS {peak_rss_mib:.0f} MiB"


def test_legacy_passphrase_set_is_read_by_openssl_and_gzip(tmp_path: Path) -> None:
    openssl = need_binary("openssl")
    gzip_binary = need_binary("gzip")
    from ncbackup.stages.legacy_openssl import LegacyOpenSSLStage

    key_file = tmp_path / "key_file"
    key_file.write_text("0123456789abcdef" * 4 + "\n")
    data = os.urandom(1_500_000) + _pattern(1_000_000)
    storage = LocalStorage(tmp_path / "web1")
    spec = PipelineSpec(signer=SIGNER,
        sources=[StreamsSource(BytesStream("files", data))], compression=GzipStage(),
        encryption=LegacyOpenSSLStage.from_key_file(key_file), part_size_bytes=600_000,
        storages=[NamedStorage("STORAGE", storage)],
    )
    result = write_backup_set(spec, hostname="web1")
    assert result.is_complete and result.manifest.stream("files").file_name == "files.tar.gz.crypt"
    set_folder = tmp_path / "web1" / result.set_id
    joined = tmp_path / "joined.crypt"
    joined.write_bytes(b"".join(p.read_bytes() for p in sorted(set_folder.glob("files.tar.gz.crypt.*"))))
    # The original tool's runbook: openssl enc -d -aes-256-cbc -md md5 on the joined parts, then gunzip.
    compressed = subprocess.run(
        [openssl, "enc", "-d", "-aes-256-cbc", "-md", "md5", "-pass", f"file:{key_file}", "-in", str(joined)],
        capture_output=True, check=True,
    ).stdout
    assert subprocess.run([gzip_binary, "-d", "-c"], input=compressed, capture_output=True, check=True).stdout == data


# --- a part whose upload failed is repaired from a sibling storage ----------------------------------


class FlakyStorage:
    """A real local storage whose put of the keys in fail_keys breaks once (mid-write), then works."""

    def __init__(self, base: Path, *, fail_keys: set[str], times: int = 1, is_permanent: bool = False) -> None:
        self.inner = LocalStorage(base)
        self.name = f"flaky:{base}"
        self.fail_keys = fail_keys
        self.failures_left = {key: times for key in fail_keys}
        self.is_permanent = is_permanent
        self.puts: list[str] = []

    def put(self, key: str, stream) -> None:
        self.puts.append(key)
        suffix = key.rpartition("/")[2]
        if self.failures_left.get(suffix, 0) > 0:
            self.failures_left[suffix] -= 1
            stream.read(1000)
            raise StorageError(f"connection reset writing {key}", is_permanent=self.is_permanent)
        self.inner.put(key, stream)

    def get(self, key: str):
        return self.inner.get(key)

    def list(self, prefix: str = ""):
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


class CorruptingStorage(LocalStorage):
    """A local storage that hands out one flipped byte on every get (a rotting disk)."""

    def get(self, key: str):
        data = bytearray(super().get(key).read())
        if data:
            data[len(data) // 2] ^= 0x01
        return io.BytesIO(bytes(data))


@pytest.fixture
def no_repair_waits(monkeypatch):
    import ncbackup.engine.repair as repair

    monkeypatch.setattr(repair, "REPAIR_FIRST_WAIT_SECONDS", 0.0)


def _three_part_spec(identity: Path, storages) -> tuple[PipelineSpec, bytes]:
    data = _pattern(2_500_000)
    spec = PipelineSpec(signer=SIGNER, sources=[StreamsSource(BytesStream("files", data))], compression=NoCompression(),
                        encryption=_age(identity), part_size_bytes=1_000_000, storages=storages)
    return spec, data


def test_a_part_that_failed_once_is_copied_from_the_sibling_and_the_set_is_complete_everywhere(tmp_path, identity, no_repair_waits):
    from ncbackup.engine.restore import verify_set

    flaky = FlakyStorage(tmp_path / "flaky" / "web1", fail_keys={"files.tar.age.001"})
    steady = LocalStorage(tmp_path / "steady" / "web1")
    spec, _ = _three_part_spec(identity, [NamedStorage("FLAKY", flaky), NamedStorage("STEADY", steady)])
    result = write_backup_set(spec, hostname="web1")
    assert result.is_complete, result.storages
    assert len(result.repairs) == 1 and "files.tar.age.001" in result.repairs[0] and "connection reset" in result.repairs[0]
    assert any("copied from" in warning for warning in result.warnings)
    # The flaky storage got parts .000 and .002 while streaming, and .001 again at the end.
    assert [key.rpartition("/")[2] for key in flaky.puts] == [
        "files.tar.age.000", "files.tar.age.001", "files.tar.age.002", "files.tar.age.001", "manifest.json",
        "manifest.json.minisig"]
    set_folder = lambda base: tmp_path / base / "web1" / result.set_id  # noqa: E731
    for name in ("files.tar.age.000", "files.tar.age.001", "files.tar.age.002"):
        assert (set_folder("flaky") / name).read_bytes() == (set_folder("steady") / name).read_bytes()
    # verify raises on the first bad part; here every part checks out and decrypts to the end.
    report = verify_set(flaky, read_manifest(flaky, result.set_id), key_file=identity, must_decrypt=True)
    assert report.parts_checked == 3 and report.decrypted_streams == ["files"]


def test_a_part_that_keeps_failing_leaves_that_storage_incomplete_and_the_other_complete(tmp_path, identity, no_repair_waits):
    flaky = FlakyStorage(tmp_path / "flaky" / "web1", fail_keys={"files.tar.age.001"}, times=99)
    steady = LocalStorage(tmp_path / "steady" / "web1")
    spec, _ = _three_part_spec(identity, [NamedStorage("FLAKY", flaky), NamedStorage("STEADY", steady)])
    result = write_backup_set(spec, hostname="web1")
    outcomes = {o.section_name: o.error for o in result.storages}
    assert outcomes["STEADY"] is None
    assert "files.tar.age.001 failed" in outcomes["FLAKY"] and "copying it from" in outcomes["FLAKY"]
    assert not (tmp_path / "flaky" / "web1" / result.set_id / "manifest.json").exists()
    assert (tmp_path / "steady" / "web1" / result.set_id / "manifest.json").exists()
    assert not result.is_complete and result.repairs == []


def test_a_copy_that_does_not_match_the_manifest_is_removed_and_reported(tmp_path, identity, no_repair_waits):
    flaky = FlakyStorage(tmp_path / "flaky" / "web1", fail_keys={"files.tar.age.001"})
    rotting = CorruptingStorage(tmp_path / "rotting" / "web1")
    spec, _ = _three_part_spec(identity, [NamedStorage("FLAKY", flaky), NamedStorage("ROTTING", rotting)])
    result = write_backup_set(spec, hostname="web1")
    outcomes = {o.section_name: o.error for o in result.storages}
    assert "does not match the manifest" in outcomes["FLAKY"]
    assert not (tmp_path / "flaky" / "web1" / result.set_id / "files.tar.age.001").exists()
    assert not (tmp_path / "flaky" / "web1" / result.set_id / "manifest.json").exists()


def test_two_failed_parts_in_a_row_drop_the_storage_for_the_rest_of_the_set(tmp_path, identity, no_repair_waits):
    flaky = FlakyStorage(tmp_path / "flaky" / "web1", fail_keys={"files.tar.age.000", "files.tar.age.001"}, times=99)
    steady = LocalStorage(tmp_path / "steady" / "web1")
    spec, _ = _three_part_spec(identity, [NamedStorage("FLAKY", flaky), NamedStorage("STEADY", steady)])
    result = write_backup_set(spec, hostname="web1")
    assert "connection reset" in {o.section_name: o.error for o in result.storages}["FLAKY"]
    assert [key.rpartition("/")[2] for key in flaky.puts] == ["files.tar.age.000", "files.tar.age.001"]
    assert result.repairs == []


def test_a_permanent_error_drops_the_storage_at_once(tmp_path, identity, no_repair_waits):
    flaky = FlakyStorage(tmp_path / "flaky" / "web1", fail_keys={"files.tar.age.000"}, is_permanent=True)
    steady = LocalStorage(tmp_path / "steady" / "web1")
    spec, _ = _three_part_spec(identity, [NamedStorage("FLAKY", flaky), NamedStorage("STEADY", steady)])
    result = write_backup_set(spec, hostname="web1")
    assert "connection reset" in {o.section_name: o.error for o in result.storages}["FLAKY"]
    assert [key.rpartition("/")[2] for key in flaky.puts] == ["files.tar.age.000"]
