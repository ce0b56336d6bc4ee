"""S3 storage against a real moto server over HTTP, driven by the unmodified boto3 client."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from ncbackup.errors import ConfigError, StorageError
from ncbackup.storage.s3 import S3Storage
from tests.integration.servers.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Faults, moto_in_a_child_process
from tests.integration.storage.helpers import TrickleStream, general, random_bytes, read_all, storage_section

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def make_storage(tmp_path, endpoint_url, bucket="backups", **args) -> S3Storage:
    settings = {"BUCKET": bucket, "ENDPOINT_URL": endpoint_url, "REGION": "us-east-1", "CHUNK_SIZE_MB": "5"}
    settings.update(args)
    return S3Storage.from_section(storage_section("s3", settings), general(tmp_path))


@pytest.fixture
def bucket(s3_env):
    s3_env.client().create_bucket(Bucket="backups")
    return "backups"


def test_multipart_put_streams_chunks_and_get_returns_the_same_bytes(tmp_path, s3_env, bucket):
    storage = make_storage(tmp_path, s3_env.endpoint_url, CONCURRENCY="2")
    data = random_bytes(12 * MIB + 123)  # three chunks of 5 MiB, the last short
    storage.put("20261126T030000Z/files.tar.zst.age.000", TrickleStream(data))

    raw = s3_env.client().head_object(Bucket="backups", Key="web1/20261126T030000Z/files.tar.zst.age.000")
    assert raw["ContentLength"] == len(data)
    assert raw["ETag"].strip('"').endswith("-3")  # really a 3-part multipart upload
    assert hashlib.sha256(read_all(storage.get("20261126T030000Z/files.tar.zst.age.000"))).digest() == \
        hashlib.sha256(data).digest()
    assert [(o.key, o.size_bytes) for o in storage.list("20261126T030000Z/")] == \
        [("20261126T030000Z/files.tar.zst.age.000", len(data))]


def test_small_object_roundtrip_list_and_delete(tmp_path, s3_env, bucket):
    storage = make_storage(tmp_path, s3_env.endpoint_url)
    storage.put("set1/manifest.json", TrickleStream(b'{"a": 1}'))
    storage.put("set1/empty", TrickleStream(b""))
    assert read_all(storage.get("set1/manifest.json")) == b'{"a": 1}'
    assert read_all(storage.get("set1/empty")) == b""
    assert sorted(o.key for o in storage.list()) == ["set1/empty", "set1/manifest.json"]
    storage.delete("set1/manifest.json")
    storage.delete("set1/manifest.json")  # missing is not an error
    assert [o.key for o in storage.list()] == ["set1/empty"]


def test_prefix_option_replaces_hostname_prefix(tmp_path, s3_env, bucket):
    storage = make_storage(tmp_path, s3_env.endpoint_url, PREFIX="/nc/backups/")
    storage.put("s/f", TrickleStream(b"x"))
    keys = [o["Key"] for o in s3_env.client().list_objects_v2(Bucket="backups")["Contents"]]
    assert keys == ["nc/backups/s/f"]
    assert storage.name == "s3://backups/nc/backups/"


def test_flexible_checksum_mode_roundtrips_multipart(tmp_path, s3_env, bucket):
    storage = make_storage(tmp_path, s3_env.endpoint_url, FLEXIBLE_CHECKSUMS="True")
    data = random_bytes(11 * MIB)
    storage.put("s/part", TrickleStream(data))
    storage.put("s/manifest.json", TrickleStream(b"{}"))
    assert read_all(storage.get("s/part")) == data
    assert read_all(storage.get("s/manifest.json")) == b"{}"


def test_third_party_endpoint_gets_content_md5_and_no_2025_checksum_headers(tmp_path, s3_env, bucket, fault_proxy):
    faults = Faults()
    proxy = fault_proxy(faults)
    storage = make_storage(tmp_path, proxy.endpoint_url)
    storage.put("s/big", TrickleStream(random_bytes(6 * MIB)))
    storage.put("s/small", TrickleStream(b"hello"))
    assert faults.put_headers
    for headers in faults.put_headers:
        assert "content-md5" in headers
        assert not [name for name in headers if name.startswith("x-amz-checksum-") or name == "x-amz-sdk-checksum-algorithm"]
        assert "aws-chunked" not in headers.get("content-encoding", "")
        assert "x-amz-trailer" not in headers


def test_put_retries_throttling_503_then_succeeds(tmp_path, s3_env, bucket, fault_proxy):
    faults = Faults(fail_first=3, fail_status=503, fail_method="PUT")
    proxy = fault_proxy(faults)
    storage = make_storage(tmp_path, proxy.endpoint_url)
    data = random_bytes(7 * MIB)
    storage.put("s/part", TrickleStream(data))
    assert faults.failures_sent == 3
    assert read_all(storage.get("s/part")) == data


def test_get_and_list_retry_server_errors_500(tmp_path, s3_env, bucket, fault_proxy):
    faults = Faults()
    proxy = fault_proxy(faults)
    storage = make_storage(tmp_path, proxy.endpoint_url)
    storage.put("s/part", TrickleStream(b"payload"))
    faults.fail_first, faults.fail_status, faults.fail_method, faults.failures_sent = 2, 500, "GET", 0
    assert read_all(storage.get("s/part")) == b"payload"
    faults.failures_sent = 0
    assert [o.key for o in storage.list()] == ["s/part"]
    assert faults.failures_sent == 2


def test_corrupted_chunk_is_detected_and_no_object_appears(tmp_path, s3_env, bucket, fault_proxy):
    # moto stores what it receives; the ETag check catches the flipped byte and the upload is aborted.
    proxy = fault_proxy(Faults(corrupt_first=1))
    storage = make_storage(tmp_path, proxy.endpoint_url)
    with pytest.raises(StorageError, match="stored different bytes"):
        storage.put("s/part", TrickleStream(random_bytes(11 * MIB)))
    client = s3_env.client()
    assert "Contents" not in client.list_objects_v2(Bucket="backups")
    assert not client.list_multipart_uploads(Bucket="backups").get("Uploads")


def test_corrupted_small_object_is_removed(tmp_path, s3_env, bucket, fault_proxy):
    proxy = fault_proxy(Faults(corrupt_first=1))
    storage = make_storage(tmp_path, proxy.endpoint_url)
    with pytest.raises(StorageError, match="stored different bytes"):
        storage.put("s/manifest.json", TrickleStream(b"{}" * 100))
    assert "Contents" not in s3_env.client().list_objects_v2(Bucket="backups")


def test_server_dying_mid_upload_leaves_no_object_and_a_clear_error(tmp_path, s3_env, bucket, fault_proxy):
    proxy = fault_proxy(Faults(die_after_puts=1))  # the first chunk arrives, then the server is gone
    storage = make_storage(tmp_path, proxy.endpoint_url, MAX_ATTEMPTS="2", CONCURRENCY="1", CONNECT_TIMEOUT="2")
    with pytest.raises(StorageError, match="cannot reach the S3 endpoint"):
        storage.put("s/part", TrickleStream(random_bytes(16 * MIB)))
    assert "Contents" not in s3_env.client().list_objects_v2(Bucket="backups")


def test_missing_bucket_is_a_clear_error(tmp_path, s3_env):
    storage = make_storage(tmp_path, s3_env.endpoint_url, bucket="nope")
    with pytest.raises(StorageError, match="bucket 'nope' does not exist"):
        storage.put("s/part", TrickleStream(b"x"))
    with pytest.raises(StorageError, match="bucket 'nope' does not exist"):
        list(storage.list())
    [line] = storage.check()
    assert not line.ok and "bucket 'nope' does not exist" in line.text


def test_wrong_credentials_are_a_clear_error(tmp_path, s3_env, bucket, monkeypatch):
    s3_env.require_auth(True)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    storage = make_storage(tmp_path, s3_env.endpoint_url)
    with pytest.raises(StorageError, match="refused the S3 credentials") as caught:
        storage.put("s/part", TrickleStream(b"x"))
    assert "not-the-secret" not in str(caught.value)


def test_unreachable_endpoint_is_a_clear_error(tmp_path, s3_env):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    storage = make_storage(tmp_path, f"http://127.0.0.1:{port}", MAX_ATTEMPTS="1", CONNECT_TIMEOUT="2")
    with pytest.raises(StorageError, match=f"cannot reach the S3 endpoint http://127.0.0.1:{port}"):
        storage.put("s/part", TrickleStream(b"x"))
    [line] = storage.check()
    assert not line.ok


def test_missing_key_get_is_a_storage_error(tmp_path, s3_env, bucket):
    storage = make_storage(tmp_path, s3_env.endpoint_url)
    with pytest.raises(StorageError, match="does not exist"):
        storage.get("s/none")


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The backoff waits with_retries asks for, recorded instead of slept."""
    from ncbackup.storage import retry as retry_module

    recorded: list[float] = []
    monkeypatch.setattr(retry_module.time, "sleep", recorded.append)
    return recorded


def test_missing_bucket_key_and_wrong_credentials_fail_at_once_through_with_retries(tmp_path, s3_env, waits,
                                                                                    fault_proxy, monkeypatch):
    from ncbackup.storage.retry import with_retries

    faults = Faults()
    proxy = fault_proxy(faults)
    missing_bucket = with_retries(make_storage(tmp_path, proxy.endpoint_url, bucket="nope", MAX_ATTEMPTS="1"), attempts=5)
    with pytest.raises(StorageError, match="bucket 'nope' does not exist") as caught:
        list(missing_bucket.list())
    assert caught.value.is_permanent
    assert faults.requests_seen == 1 and waits == []

    s3_env.client().create_bucket(Bucket="backups")
    storage = with_retries(make_storage(tmp_path, proxy.endpoint_url, MAX_ATTEMPTS="1"), attempts=5)
    faults.requests_seen = 0
    with pytest.raises(StorageError, match="does not exist"):
        storage.get("s/none")
    assert faults.requests_seen == 1 and waits == []

    s3_env.require_auth(True)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    refused = with_retries(make_storage(tmp_path, proxy.endpoint_url, MAX_ATTEMPTS="1"), attempts=5)
    faults.requests_seen = 0
    with pytest.raises(StorageError, match="refused the S3 credentials"):
        refused.put("s/part", io.BytesIO(b"x"))
    assert faults.requests_seen == 1 and waits == []


def test_server_errors_are_retried_by_with_retries(tmp_path, s3_env, bucket, waits, fault_proxy):
    from ncbackup.storage.retry import with_retries

    faults = Faults()
    proxy = fault_proxy(faults)
    # MAX_ATTEMPTS 1: botocore does not retry by itself, so each 500 reaches with_retries.
    storage = with_retries(make_storage(tmp_path, proxy.endpoint_url, MAX_ATTEMPTS="1"), attempts=5)
    storage.put("s/part", io.BytesIO(b"payload"))
    faults.fail_first, faults.fail_status, faults.fail_method, faults.failures_sent = 2, 500, "GET", 0
    assert [o.key for o in storage.list()] == ["s/part"]
    assert faults.failures_sent == 2
    assert waits == [1.0, 2.0]


def test_credentials_file_is_used_instead_of_the_environment(tmp_path, s3_env, bucket, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[backup]\naws_access_key_id = {ACCESS_KEY_ID}\naws_secret_access_key = {SECRET_ACCESS_KEY}\n"
    )
    storage = make_storage(tmp_path, s3_env.endpoint_url, CREDENTIALS_FILE=str(credentials), PROFILE="backup")
    storage.put("s/f", TrickleStream(b"data"))
    assert read_all(storage.get("s/f")) == b"data"
    assert storage.check()[0].ok


def test_no_credentials_anywhere_is_a_clear_error(tmp_path, s3_env, bucket, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    storage = make_storage(tmp_path, s3_env.endpoint_url, MAX_ATTEMPTS="1")
    with pytest.raises(StorageError, match="no S3 credentials were found"):
        storage.put("s/f", TrickleStream(b"data"))


def test_credentials_in_the_config_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="must not be in the config") as caught:
        make_storage(tmp_path, "http://127.0.0.1:1", AWS_SECRET_ACCESS_KEY="s3cr3t")
    assert "s3cr3t" not in str(caught.value)


def test_missing_profile_and_credentials_file_are_config_errors(tmp_path, s3_env):
    with pytest.raises(ConfigError, match="CREDENTIALS_FILE"):
        make_storage(tmp_path, s3_env.endpoint_url, CREDENTIALS_FILE=str(tmp_path / "none"))
    with pytest.raises(ConfigError, match="PROFILE"):
        make_storage(tmp_path, s3_env.endpoint_url, PROFILE="does-not-exist")


def test_oss_destination_defaults_to_aliyun_endpoint_virtual_addressing_and_md5_only(tmp_path):
    storage = S3Storage.from_section(
        storage_section("oss", {"BUCKET": "b", "REGION": "cn-hangzhou"}), general(tmp_path),
    )
    config = storage._client.meta.config
    assert storage._client.meta.endpoint_url == "https://oss-cn-hangzhou.aliyuncs.com"
    assert config.s3["addressing_style"] == "virtual"
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    with pytest.raises(ConfigError, match="REGION"):
        S3Storage.from_section(storage_section("oss", {"BUCKET": "b"}), general(tmp_path))


def test_aws_keeps_default_checksums_and_legacy_bucket_name(tmp_path):
    section = storage_section("s3", {"REGION": "eu-west-1"}, BUCKET_NAME="cncbackup")
    storage = S3Storage.from_section(section, general(tmp_path))
    assert storage.bucket == "cncbackup"
    assert storage._client.meta.config.request_checksum_calculation == "when_supported"
    assert storage.name == "s3://cncbackup/web1/"
    assert storage._client.meta.config.retries["mode"] == "standard"


def test_memory_stays_bounded_for_a_stream_larger_than_memory_budget(tmp_path, s3_env):
    # A separate process uploads 256 MiB from a generator; its peak RSS must stay far below that.
    # moto keeps what it stores in RAM: it runs in a child process too, so the 256 MiB (and moto's
    # copies of the parts) do not grow the pytest process.
    from tests.support import need

    need(Path("/proc/self/status").exists(), "peak RSS is read from /proc (Linux)")
    with moto_in_a_child_process() as server:
        server.client().create_bucket(Bucket="backups")
        peak_rss_bytes = _upload_256_mib_and_measure(server.endpoint_url)
        head = server.client().head_object(Bucket="backups", Key="web1/s/big")
    assert head["ContentLength"] == 256 * MIB
    assert peak_rss_bytes < 200 * MIB, peak_rss_bytes
    print(f"peak RSS {peak_rss_bytes / MIB:.0f} MiB for a 256 MiB stream")


def _upload_256_mib_and_measure(endpoint_url: str) -> int:
    """Upload 256 MiB of zeros to s3://backups/web1/s/big from a separate process; return its peak RSS."""
    import sys

    from ncbackup.process import run

    script = f"""
import io, sys
from ncbackup.storage.s3 import S3Storage, S3Options
class Zeros(io.RawIOBase):
    left = 256 << 20
    def readable(self): return True
    def readinto(self, buffer):
        size = min(len(buffer), 1 << 20, self.left)
        buffer[:size] = bytes(size)
        self.left -= size
        return size
options = S3Options(BUCKET="backups", ENDPOINT_URL="{endpoint_url}", REGION="us-east-1",
                    CHUNK_SIZE_MB=8, CONCURRENCY=4)
S3Storage(options, base_prefix="web1").put("s/big", Zeros())
# VmHWM, not ru_maxrss: ru_maxrss survives exec and would report the forking parent's peak.
print([int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:")][0])
"""
    return int(run([sys.executable, "-c", script], timeout_seconds=300).text.strip())
