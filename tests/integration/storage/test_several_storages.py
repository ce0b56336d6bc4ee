"""One backup set written in one pass to several remote storages (tee), one of them failing.

Real servers: moto S3, the test sshd (SFTP and rsync), rclone on a local remote. The set is then
read back from each storage that succeeded, verified against its manifest, decrypted and compared.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from ncbackup.engine.backupset import NamedStorage, PipelineSpec, write_backup_set
from ncbackup.engine.restore import open_stream, verify_set
from ncbackup.errors import StorageError
from ncbackup.setformat import list_sets
from ncbackup.sources.base import StreamReport
from ncbackup.stages.age import AgeStage
from ncbackup.stages.compress import ZstdStage
from ncbackup.stages.keys import read_key_file, write_identity_file
from ncbackup.stages.registry import compression_for, decryption_for
from ncbackup.storage.registry import build_storage
from tests.integration.storage.helpers import general, storage_section
from tests.integration.storage.test_sftp import ssh_args
from tests.support import SIGNER, TRUST, need_binary, read_manifest

pytestmark = pytest.mark.integration

PART_SIZE_BYTES = 5 * 1024 * 1024 + 17


class BytesStream:
    def __init__(self, name: str, data: bytes) -> None:
        self.name, self.kind, self.suffix = name, "files", ".tar"
        self.data = data

    def write_to(self, sink, report: StreamReport) -> None:
        for start in range(0, len(self.data), 1 << 20):
            sink.write(self.data[start:start + (1 << 20)])


class OneStreamSource:
    report = StreamReport()   # what the source says about itself (sources/base.Source)

    def __init__(self, stream) -> None:
        self.stream = stream

    def streams(self):
        yield self.stream

    def describe(self) -> str:
        return "one test stream"

    def check(self):
        return []


def test_one_pass_feeds_every_storage_and_a_failing_one_does_not_stop_the_others(tmp_path, s3_env, sshd):
    need_binary("rclone")
    need_binary("rsync")
    s3_env.client().create_bucket(Bucket="backups")
    settings = general(tmp_path)
    remote_sftp, remote_rsync = tmp_path / "sftp", tmp_path / "rsync"
    remote_sftp.mkdir()
    remote_rsync.mkdir()
    rclone_config = tmp_path / "rclone.conf"
    rclone_config.write_text("[disk]\ntype = local\n")
    sections = {
        "STORAGE_S3": storage_section("s3", {"BUCKET": "backups", "ENDPOINT_URL": s3_env.endpoint_url,
                                             "REGION": "us-east-1", "CHUNK_SIZE_MB": "5"}),
        "STORAGE_MISSING_BUCKET": storage_section("s3", {"BUCKET": "no-such-bucket", "ENDPOINT_URL": s3_env.endpoint_url,
                                                         "REGION": "us-east-1", "MAX_ATTEMPTS": "1"}),
        "STORAGE_SFTP": storage_section("sftp", ssh_args(sshd, remote_sftp)),
        "STORAGE_RSYNC": storage_section("rsync", ssh_args(sshd, remote_rsync)),
        "STORAGE_RCLONE": storage_section("rclone", {"REMOTE": f"disk:{tmp_path / 'rclone'}",
                                                     "RCLONE_CONFIG": str(rclone_config)}),
    }
    storages = {name: build_storage(section, settings) for name, section in sections.items()}
    identity = tmp_path / "identity.txt"
    write_identity_file(identity)
    key = read_key_file(identity)
    data = os.urandom(12 * 1024 * 1024)  # incompressible: three parts after zstd and age

    result = write_backup_set(
        PipelineSpec(signer=SIGNER,
            sources=[OneStreamSource(BytesStream("files", data))],
            compression=ZstdStage(level=1),
            encryption=AgeStage(recipients=key.recipients, identities=()),
            part_size_bytes=PART_SIZE_BYTES,
            storages=[NamedStorage(name, storage) for name, storage in storages.items()],
        ),
        hostname="web1",
    )

    outcomes = {outcome.section_name: outcome for outcome in result.storages}
    assert not result.is_complete  # partly failed: one storage did not get the set
    assert outcomes["STORAGE_MISSING_BUCKET"].error is not None
    assert "bucket 'no-such-bucket' does not exist" in outcomes["STORAGE_MISSING_BUCKET"].error
    good = [name for name in storages if name != "STORAGE_MISSING_BUCKET"]
    assert all(outcomes[name].error is None for name in good), {n: outcomes[n].error for n in good}
    with pytest.raises(StorageError, match="does not exist"):
        list_sets(storages["STORAGE_MISSING_BUCKET"], TRUST)

    expected = hashlib.sha256(data).hexdigest()
    for name in good:
        storage = storages[name]
        [info] = list_sets(storage, TRUST)
        assert info.is_complete and info.set_id == result.set_id, name
        manifest = read_manifest(storage, result.set_id)
        [stream] = manifest.streams
        assert len(stream.parts) == 3, name
        verify_set(storage, read_manifest(storage, result.set_id), key_file=identity, must_decrypt=True)
        reader = open_stream(storage, manifest, "files")
        try:
            plain = compression_for(stream.codec).reader(decryption_for(stream.cipher, identity).reader(reader)).read()
        finally:
            reader.close()
        assert hashlib.sha256(plain).hexdigest() == expected, name
