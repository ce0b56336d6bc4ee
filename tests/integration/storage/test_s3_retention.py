"""The S3 side of retention against a real moto server: batch delete, Object Lock, and the write-only IAM split."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ncbackup.errors import StorageError
from ncbackup.storage.base import bucket_location, delete_keys, prune_support, read_workers, retained_until
from ncbackup.storage.retry import with_retries
from tests.integration.servers.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Faults
from tests.integration.storage.helpers import TrickleStream, random_bytes, read_all
from tests.integration.storage.test_cli_remote import config_file, run_cli, site  # noqa: F401 - site is a fixture
from tests.integration.storage.test_cli_remote import storage as cli_storage
from tests.integration.storage.test_s3 import make_storage

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


@pytest.fixture
def bucket(s3_env):
    s3_env.client().create_bucket(Bucket="backups")
    return "backups"


@pytest.fixture
def locked_bucket(s3_env):
    s3_env.client().create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
    return "locked"


def put_raw(s3_env, keys: list[str], bucket: str = "backups") -> None:
    client = s3_env.client()
    for key in keys:
        client.put_object(Bucket=bucket, Key=f"web1/{key}", Body=b"x")


def stored_keys(s3_env, bucket: str = "backups") -> list[str]:
    pages = s3_env.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


# -- batch delete --------------------------------------------------------------------------------


def test_delete_many_of_1001_keys_takes_two_requests_and_removes_them_all(tmp_path, s3_env, bucket, fault_proxy):
    keys = [f"20200101T000000Z/part.{index:04d}" for index in range(1001)]
    put_raw(s3_env, [*keys, "20200102T000000Z/keep"])
    faults = Faults()
    proxy = fault_proxy(faults)
    storage = make_storage(tmp_path, proxy.endpoint_url)

    assert delete_keys(storage, keys) == {}

    assert [method for method, _path, _headers in faults.requests] == ["POST", "POST"]
    assert all("delete" in path for _method, path, _headers in faults.requests)
    assert stored_keys(s3_env) == ["web1/20200102T000000Z/keep"]


def test_a_failed_request_fails_its_batch_only_and_names_each_key(tmp_path, s3_env, bucket, fault_proxy):
    keys = [f"20200101T000000Z/part.{index:04d}" for index in range(1001)]
    put_raw(s3_env, keys)
    proxy = fault_proxy(Faults(fail_first=1, fail_status=500, fail_method="POST"))
    storage = make_storage(tmp_path, proxy.endpoint_url, MAX_ATTEMPTS="1")

    failures = delete_keys(storage, keys)

    # The first 1000 keys went in the refused request, in the given order; the 1001st in the second, which worked.
    assert list(failures) == keys[:1000]
    assert "20200101T000000Z/part.0007" in failures["20200101T000000Z/part.0007"]
    assert stored_keys(s3_env) == [f"web1/{key}" for key in keys[:1000]]


class _DeleteErrorsServer:
    """An S3 endpoint that answers every DeleteObjects with per-key errors for the keys it is given."""

    def __init__(self, errors: dict[str, tuple[str, str]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = "".join(f"<Error><Key>{key}</Key><Code>{code}</Code><Message>{message}</Message></Error>"
                               for key, (code, message) in errors.items())
                payload = f'<?xml version="1.0" encoding="UTF-8"?><DeleteResult>{body}</DeleteResult>'.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_per_key_errors_of_the_answer_become_one_sentence_per_key(tmp_path, s3_env):
    server = _DeleteErrorsServer({
        "web1/20200101T000000Z/a.000": ("AccessDenied", "Access Denied"),
        "web1/20200101T000000Z/b.000": ("InternalError", "try again"),
    })
    try:
        storage = make_storage(tmp_path, server.endpoint_url)
        failures = delete_keys(storage, ["20200101T000000Z/a.000", "20200101T000000Z/b.000", "20200101T000000Z/c.000"])
    finally:
        server.close()
    assert set(failures) == {"20200101T000000Z/a.000", "20200101T000000Z/b.000"}
    denied = failures["20200101T000000Z/a.000"]
    assert "s3://backups/web1/20200101T000000Z/a.000 was not removed: access denied" in denied
    assert "s3:DeleteObject" in denied
    assert "InternalError try again" in failures["20200101T000000Z/b.000"]


def test_delete_many_sends_content_md5_for_s3_compatible_stores(tmp_path, s3_env, bucket, fault_proxy):
    put_raw(s3_env, ["20200101T000000Z/a"])
    faults = Faults()
    proxy = fault_proxy(faults)
    storage = make_storage(tmp_path, proxy.endpoint_url)
    assert delete_keys(storage, ["20200101T000000Z/a"]) == {}
    [(method, path, headers)] = faults.requests
    assert method == "POST" and "delete" in path and "content-md5" in headers


def test_capabilities_pass_through_with_retries(tmp_path, s3_env, bucket):
    storage = with_retries(make_storage(tmp_path, s3_env.endpoint_url), attempts=2, first_wait_seconds=0)
    put_raw(s3_env, ["20200101T000000Z/a"])
    assert prune_support(storage) is None
    assert bucket_location(storage) == ("backups", "web1/")
    assert read_workers(storage) == 16
    assert retained_until(storage, "20200101T000000Z/a") is None
    assert delete_keys(storage, ["20200101T000000Z/a"]) == {}
    assert stored_keys(s3_env) == []


# -- Object Lock ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["governance", "COMPLIANCE"])
def test_object_lock_days_lock_single_and_multipart_puts(tmp_path, s3_env, locked_bucket, fault_proxy, mode):
    faults = Faults()
    proxy = fault_proxy(faults)
    storage = make_storage(tmp_path, proxy.endpoint_url, bucket="locked", OBJECT_LOCK_DAYS="3", OBJECT_LOCK_MODE=mode)
    before = datetime.now(UTC)
    storage.put("20261126T030000Z/manifest.json", TrickleStream(b'{"a": 1}'))
    storage.put("20261126T030000Z/files.tar.zst.age.000", TrickleStream(random_bytes(6 * MIB)))  # two chunks
    after = datetime.now(UTC)

    def is_about_3_days_ahead(until: datetime) -> bool:
        return before + timedelta(days=3, seconds=-2) <= until <= after + timedelta(days=3, seconds=2)

    # Every request that creates an object (the single PUT, and CreateMultipartUpload) carries the lock.
    creating = [headers for method, path, headers in faults.requests
                if (method == "PUT" and "partNumber" not in path) or (method == "POST" and path.endswith("?uploads"))]
    assert len(creating) == 2
    for headers in creating:
        assert headers["x-amz-object-lock-mode"] == mode.upper()
        assert is_about_3_days_ahead(datetime.fromisoformat(headers["x-amz-object-lock-retain-until-date"]))
    # AWS refuses a locked PUT (and UploadPart) without Content-MD5 or a checksum header.
    assert all("content-md5" in headers for method, path, headers in faults.requests if method == "PUT")

    # What the server stored, read back. moto 5.2 does not implement GetObjectRetention (GET ?retention answers
    # the object itself) and drops the lock of a multipart upload, so the single PUT's lock is read with HEAD.
    head = s3_env.client().head_object(Bucket="locked", Key="web1/20261126T030000Z/manifest.json")
    assert head["ObjectLockMode"] == mode.upper()
    assert is_about_3_days_ahead(head["ObjectLockRetainUntilDate"])
    assert retained_until(storage, "20261126T030000Z/manifest.json") == head["ObjectLockRetainUntilDate"]
    assert read_all(storage.get("20261126T030000Z/manifest.json")) == b'{"a": 1}'


def test_retained_until_is_none_without_a_lock(tmp_path, s3_env, locked_bucket, bucket):
    put_raw(s3_env, ["20200101T000000Z/a"], bucket="locked")
    put_raw(s3_env, ["20200101T000000Z/a"], bucket="backups")
    assert retained_until(make_storage(tmp_path, s3_env.endpoint_url, bucket="locked"), "20200101T000000Z/a") is None
    assert retained_until(make_storage(tmp_path, s3_env.endpoint_url), "20200101T000000Z/a") is None
    assert retained_until(make_storage(tmp_path, s3_env.endpoint_url), "20200101T000000Z/missing") is None


def test_check_says_whether_the_bucket_has_object_lock(tmp_path, s3_env, locked_bucket, bucket):
    [_, locked] = make_storage(tmp_path, s3_env.endpoint_url, bucket="locked", OBJECT_LOCK_DAYS="30").check()
    assert locked.ok and "has Object Lock enabled" in locked.text and "30 day(s) in governance mode" in locked.text

    [_, plain] = make_storage(tmp_path, s3_env.endpoint_url, OBJECT_LOCK_DAYS="30").check()
    assert not plain.ok
    assert "bucket 'backups' does not have Object Lock enabled, but OBJECT_LOCK_DAYS is set" in plain.text

    assert len(make_storage(tmp_path, s3_env.endpoint_url).check()) == 1   # no lock asked: no lock line


# -- the write-only split (moto enforces IAM once require_auth(True)) --------------------------------


BACKUP_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketObjectLockConfiguration"],
         "Resource": "arn:aws:s3:::backups"},
        {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload",
                                       "s3:ListMultipartUploadParts"],
         "Resource": "arn:aws:s3:::backups/*"},
    ],
}
PRUNE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketObjectLockConfiguration"],
         "Resource": "arn:aws:s3:::backups"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectRetention", "s3:DeleteObject"],
         # AWS checks DeleteObjects key by key against backups/*; moto checks the request against the bucket ARN.
         "Resource": ["arn:aws:s3:::backups/*", "arn:aws:s3:::backups"]},
    ],
}


def iam_user(s3_env, name: str, policy: dict) -> tuple[str, str]:
    import boto3

    iam = boto3.client("iam", endpoint_url=s3_env.endpoint_url, region_name="us-east-1",
                       aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_put_only_credentials_back_up_but_cannot_delete_and_prune_credentials_can(tmp_path, s3_env, bucket, monkeypatch):
    backup_key = iam_user(s3_env, "backup-server", BACKUP_POLICY)
    prune_key = iam_user(s3_env, "prune-machine", PRUNE_POLICY)
    s3_env.require_auth(True)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", backup_key[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", backup_key[1])
    backup = make_storage(tmp_path, s3_env.endpoint_url)
    backup.put("20200101T000000Z/manifest.json", TrickleStream(b"{}"))
    backup.put("20200101T000000Z/files.000", TrickleStream(random_bytes(6 * MIB)))   # multipart
    assert [o.key for o in backup.list()] == ["20200101T000000Z/files.000", "20200101T000000Z/manifest.json"]

    failures = delete_keys(backup, ["20200101T000000Z/files.000"])
    assert list(failures) == ["20200101T000000Z/files.000"]
    assert "access denied" in failures["20200101T000000Z/files.000"]
    assert "s3://backups/web1/20200101T000000Z/files.000" in failures["20200101T000000Z/files.000"]

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", prune_key[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", prune_key[1])
    prune = make_storage(tmp_path, s3_env.endpoint_url)
    assert delete_keys(prune, ["20200101T000000Z/files.000", "20200101T000000Z/manifest.json"]) == {}
    s3_env.require_auth(False)
    assert stored_keys(s3_env) == []


def test_a_backup_run_with_put_only_credentials_works_and_never_deletes(
    tmp_path, s3_env, bucket, fault_proxy, site, ncbackup_cmd,  # noqa: F811 - site is the fixture imported above
):
    data, key = site
    backup_key = iam_user(s3_env, "backup-server", BACKUP_POLICY)
    s3_env.require_auth(True)
    faults = Faults()
    proxy = fault_proxy(faults)
    path = config_file(tmp_path, data, key, {"STORAGE_S3": cli_storage("s3", {
        "BUCKET": "backups", "ENDPOINT_URL": proxy.endpoint_url, "REGION": "us-east-1", "CHUNK_SIZE_MB": "5",
    })})
    env = {"AWS_ACCESS_KEY_ID": backup_key[0], "AWS_SECRET_ACCESS_KEY": backup_key[1]}

    ran = run_cli(ncbackup_cmd, "run", "-c", str(path), env=env)

    assert ran.returncode == 0, ran.stdout + ran.stderr
    methods = [(method, request_path) for method, request_path, _headers in faults.requests]
    assert any(method == "PUT" for method, _ in methods)
    assert [m for m in methods if m[0] == "DELETE" or (m[0] == "POST" and "delete" in m[1])] == []
    listed = run_cli(ncbackup_cmd, "list", "-c", str(path), "--json", env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr


def test_retained_until_asks_the_bucket_once_and_heads_no_object_without_object_lock(tmp_path, s3_env, bucket,
                                                                                       fault_proxy):
    put_raw(s3_env, [f"2020010{day}T000000Z/a" for day in range(1, 6)])
    faults = Faults()
    storage = make_storage(tmp_path, fault_proxy(faults).endpoint_url)
    assert [retained_until(storage, f"2020010{day}T000000Z/a") for day in range(1, 6)] == [None] * 5
    assert [(method, path) for method, path, _headers in faults.requests] == [("GET", "/backups?object-lock")]


def test_a_damaged_upload_on_a_put_only_server_reports_the_damage_not_the_refused_removal(tmp_path, s3_env, bucket,
                                                                                          fault_proxy, monkeypatch):
    backup_key = iam_user(s3_env, "backup-server", BACKUP_POLICY)
    s3_env.require_auth(True)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", backup_key[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", backup_key[1])
    storage = make_storage(tmp_path, fault_proxy(Faults(corrupt_first=1)).endpoint_url)
    with pytest.raises(StorageError, match="stored different bytes"):
        storage.put("20200101T000000Z/manifest.json", TrickleStream(b"{}" * 100))
