"""host_storages (for `ncbackup status --all-hosts`) on real local, S3 (moto) and SFTP (sshd) storages: every host
folder beside the storage's own, each as a storage that reads and writes exactly that folder; None when the storage
has no host folder. Plus `ncbackup status --all-hosts` reading a fleet from S3."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from bench.fleet import write_fake_set
from ncbackup.cli import main as cli_main
from ncbackup.signing import read_secret_key
from ncbackup.storage.base import host_storages, read_workers
from ncbackup.storage.local import LocalStorage
from ncbackup.storage.registry import build_storage
from ncbackup.storage.retry import with_retries
from tests.integration.storage.helpers import general, read_all, storage_section
from tests.integration.storage.test_sftp import ssh_args
from tests.support import ensure_signing_key

pytestmark = pytest.mark.integration
HOSTS = ["db1", "web1", "web2"]


def _fill(storage_for_host) -> None:
    for host in HOSTS:
        storage_for_host(host).put("20261126T030000Z/manifest.json", io.BytesIO(host.encode()))


def _check(storage, expected_names) -> None:
    found = host_storages(storage)
    assert found is not None
    assert [name for name, _ in found] == expected_names
    for name, sibling in found:
        assert read_all(sibling.get("20261126T030000Z/manifest.json")) == name.encode()
        assert [info.key for info in sibling.list()] == ["20261126T030000Z/manifest.json"]
        assert name in sibling.name


def test_local_host_storages_are_the_folders_beside_the_base(tmp_path):
    root = tmp_path / "backups"
    _fill(lambda host: LocalStorage(root / host))
    (root / "not-a-host.txt").write_text("a file, not a host folder")
    _check(with_retries(LocalStorage(root / "web1")), HOSTS)
    assert read_workers(LocalStorage(root / "web1")) > 1


def test_s3_host_storages_share_the_client_and_stay_in_their_prefix(tmp_path, s3_env):
    s3_env.client().create_bucket(Bucket="fleet")
    def for_host(host: str, prefix: str = "site-a/"):
        return build_storage(storage_section("s3", {"BUCKET": "fleet", "ENDPOINT_URL": s3_env.endpoint_url,
                                                    "REGION": "us-east-1", "PREFIX": f"{prefix}{host}/"}),
                             general(tmp_path))
    _fill(for_host)
    for_host("other", prefix="site-b/").put("20261126T030000Z/manifest.json", io.BytesIO(b"x"))
    storage = for_host("web1")
    _check(storage, HOSTS)
    assert all(sibling._client is storage._client for _, sibling in host_storages(storage))
    root = build_storage(storage_section("s3", {"BUCKET": "fleet", "ENDPOINT_URL": s3_env.endpoint_url,
                                                "REGION": "us-east-1", "PREFIX": "/"}), general(tmp_path))
    assert host_storages(root) is None


def test_sftp_host_storages_are_the_remote_folders_beside_the_base(tmp_path, sshd):
    remote = tmp_path / "remote"
    remote.mkdir()
    def for_host(host: str):
        return build_storage(storage_section("sftp", ssh_args(sshd, remote)), general(tmp_path, hostname=host))
    _fill(for_host)
    storage = for_host("web1")
    _check(storage, HOSTS)
    assert read_workers(storage) == 1
    no_prefix = build_storage(storage_section("sftp", ssh_args(sshd, remote, PREFIX="/")), general(tmp_path))
    assert host_storages(no_prefix) is None


def test_status_all_hosts_reads_a_fleet_from_s3(tmp_path, s3_env, capsys):
    s3_env.client().create_bucket(Bucket="fleet")
    signer = read_secret_key(ensure_signing_key(tmp_path))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    config = tmp_path / "conf.json"
    config.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work")},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "s3", "ARGS_DICT": {
            "BUCKET": "fleet", "ENDPOINT_URL": s3_env.endpoint_url, "REGION": "us-east-1"}}},
    }))
    for number, host in enumerate(HOSTS):
        storage = build_storage(storage_section("s3", {"BUCKET": "fleet", "ENDPOINT_URL": s3_env.endpoint_url,
                                                       "REGION": "us-east-1", "PREFIX": f"{host}/"}), general(tmp_path))
        for day in range(3):
            write_fake_set(storage, signer, host=host, moment=now - timedelta(days=day + number * 2, hours=1),
                           size_bytes=1000 * (day + 1))
    code = cli_main(["status", "-c", str(config), "--all-hosts", "--json"])
    document = json.loads(capsys.readouterr().out)
    hosts = {host["host"]: host for host in document["hosts"]}
    assert sorted(hosts) == HOSTS and all(host["sets"] == 3 for host in hosts.values())
    assert hosts["db1"]["is_stale"] is False and hosts["web2"]["is_stale"] is True     # web2's newest: 4 days
    assert hosts["web1"]["recent_sizes_bytes"] == [3000, 2000, 1000] and hosts["web1"]["trend_percent"] == -66.7
    assert code == 1
