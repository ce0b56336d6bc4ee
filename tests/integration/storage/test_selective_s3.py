"""Selective restore from a real moto S3 server: Range GETs only, through with_retries, fewer bytes than two parts."""

from __future__ import annotations

import io
import os

import pytest

from ncbackup.engine.backupset import NamedStorage, PipelineSpec, write_backup_set
from ncbackup.engine.restore import RestoreOptions, restore_set
from ncbackup.sources.files import FilesetOptions, FilesSource
from ncbackup.stages.age import AgeStage
from ncbackup.stages.compress import ZstdStage
from ncbackup.stages.keys import write_identity_file
from ncbackup.storage.base import get_range
from ncbackup.storage.retry import with_retries
from tests.integration.servers.s3 import Faults
from tests.integration.storage.test_s3 import make_storage
from tests.support import SIGNER, read_manifest

pytestmark = pytest.mark.integration

PART_BYTES = 1 << 20


@pytest.fixture
def bucket(s3_env):
    s3_env.client().create_bucket(Bucket="backups")
    return "backups"


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    from ncbackup.storage import retry as retry_module

    recorded: list[float] = []
    monkeypatch.setattr(retry_module.time, "sleep", recorded.append)
    return recorded


def test_one_file_from_a_set_on_s3_costs_less_than_two_parts(tmp_path, s3_env, bucket, fault_proxy):
    data = tmp_path / "data"
    (data / "bulk").mkdir(parents=True)
    for index in range(5):
        (data / "bulk" / f"{index}.bin").write_bytes(os.urandom(1_200_000))
    (data / "wanted.txt").write_bytes(b"the one file we need\n" * 5000)
    key_file = tmp_path / "key.txt"
    write_identity_file(key_file)
    recipient = key_file.read_text().splitlines()[1].split(": ")[1]
    faults = Faults()
    storage = with_retries(make_storage(tmp_path, fault_proxy(faults).endpoint_url), attempts=3)
    result = write_backup_set(
        PipelineSpec(signer=SIGNER, sources=[FilesSource(FilesetOptions(include=[data]))],
                     compression=ZstdStage(threads=0, seek_frame_bytes=256 * 1024), encryption=AgeStage(recipients=[recipient]),
                     part_size_bytes=PART_BYTES, storages=[NamedStorage("STORAGE", storage)]),
        hostname="web1",
    )
    manifest = read_manifest(storage, result.set_id)
    assert len(manifest.stream("files").parts) >= 5
    faults.requests.clear()
    member = str(data / "wanted.txt").lstrip("/")
    report = restore_set(storage, manifest, options=RestoreOptions(target=tmp_path / "out", paths=(member,), key_file=key_file))
    assert (tmp_path / "out" / member).read_bytes() == (data / "wanted.txt").read_bytes()
    (read,) = report.selective
    assert read.bytes_read < 2 * PART_BYTES < read.set_bytes
    ranged = [headers for method, path, headers in faults.requests if method == "GET" and ".tar.zst.age." in path]
    assert ranged and all(headers.get("range", "").startswith("bytes=") for headers in ranged)


def test_ranged_get_is_retried_by_with_retries(tmp_path, s3_env, bucket, fault_proxy, waits):
    faults = Faults()
    # MAX_ATTEMPTS 1: botocore does not retry by itself, so each 500 reaches with_retries.
    storage = with_retries(make_storage(tmp_path, fault_proxy(faults).endpoint_url, MAX_ATTEMPTS="1"), attempts=3)
    data = bytes(range(256)) * 100
    storage.put("s/obj", io.BytesIO(data))
    faults.fail_first, faults.fail_status, faults.fail_method, faults.failures_sent = 2, 500, "GET", 0
    assert get_range(storage, "s/obj", 300, 10) == data[300:310]
    assert faults.failures_sent == 2 and waits == [1.0, 2.0]
    assert faults.requests[-1][2].get("range") == "bytes=300-309"
