"""rsync-over-ssh storage against the real sshd started by the tests, with the real rsync binary."""

from __future__ import annotations

from pathlib import Path

import pytest

from ncbackup.errors import StorageError
from ncbackup.storage.registry import build_storage
from ncbackup.storage.rsync import RsyncStorage
from tests.integration.servers.sshd import _keygen
from tests.integration.storage.helpers import TrickleStream, general, random_bytes, read_all, storage_section
from tests.integration.storage.test_sftp import ssh_args
from tests.support import need_binary, small_tmpfs

pytestmark = pytest.mark.integration


@pytest.fixture
def remote_dir(tmp_path) -> Path:
    need_binary("rsync")
    need_binary("ssh")
    folder = tmp_path / "remote"
    folder.mkdir()
    return folder


def make_storage(tmp_path, server, remote_dir, **extra) -> RsyncStorage:
    storage = build_storage(storage_section("rsync", ssh_args(server, remote_dir, **extra)), general(tmp_path))
    assert isinstance(storage, RsyncStorage)
    return storage


def staged_files(tmp_path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path / "work")) for p in (tmp_path / "work").rglob("*"))


def test_put_get_list_delete_roundtrip_and_staging_is_cleaned(tmp_path, sshd, remote_dir):
    storage = make_storage(tmp_path, sshd, remote_dir)
    data = random_bytes(3 * 1024 * 1024 + 5)
    storage.put("20261126T030000Z/files.tar.zst.age.000", TrickleStream(data))
    storage.put("20261126T030000Z/manifest.json", TrickleStream(b"{}"))
    assert staged_files(tmp_path) == []
    assert (remote_dir / "web1" / "20261126T030000Z" / "files.tar.zst.age.000").read_bytes() == data

    stream = storage.get("20261126T030000Z/files.tar.zst.age.000")
    assert stream.read() == data
    stream.close()
    assert staged_files(tmp_path) == []

    assert [(o.key, o.size_bytes) for o in storage.list()] == [
        ("20261126T030000Z/files.tar.zst.age.000", len(data)), ("20261126T030000Z/manifest.json", 2),
    ]
    assert [o.key for o in storage.list("20261126T030000Z/m")] == ["20261126T030000Z/manifest.json"]
    storage.delete("20261126T030000Z/files.tar.zst.age.000")
    storage.delete("20261126T030000Z/files.tar.zst.age.000")
    storage.delete("20261127T030000Z/never-stored")
    assert [o.key for o in storage.list()] == ["20261126T030000Z/manifest.json"]
    assert not (remote_dir / "web1" / "20261127T030000Z").exists()
    assert storage.check()[0].ok


def test_list_of_an_empty_storage_is_empty(tmp_path, sshd, remote_dir):
    assert list(make_storage(tmp_path, sshd, remote_dir).list()) == []


def test_missing_part_get_is_a_storage_error(tmp_path, sshd, remote_dir):
    with pytest.raises(StorageError, match="does not exist"):
        make_storage(tmp_path, sshd, remote_dir).get("s/none")
    assert staged_files(tmp_path) == []


def test_missing_remote_dir_is_a_clear_error(tmp_path, sshd):
    storage = make_storage(tmp_path, sshd, tmp_path / "no-such-dir")
    with pytest.raises(StorageError, match="does not exist"):
        storage.put("s/p", TrickleStream(b"x"))
    assert not (tmp_path / "no-such-dir").exists()
    assert staged_files(tmp_path) == []


def test_unknown_host_key_is_refused_and_trust_on_first_use_records_it(tmp_path, sshd, remote_dir):
    known_hosts = tmp_path / "known_hosts_rsync"
    storage = make_storage(tmp_path, sshd, remote_dir, KNOWN_HOSTS=str(known_hosts))
    with pytest.raises(StorageError, match="is not in .*TRUST_ON_FIRST_USE"):
        storage.put("s/p", TrickleStream(b"x"))
    trusting = make_storage(tmp_path, sshd, remote_dir, KNOWN_HOSTS=str(known_hosts), TRUST_ON_FIRST_USE="true")
    trusting.put("s/p", TrickleStream(b"x"))
    assert sshd.host_key_public.read_text().split()[1] in known_hosts.read_text()
    assert read_all(storage.get("s/p")) == b"x"


def test_host_key_mismatch_is_refused(tmp_path, sshd, remote_dir):
    other = tmp_path / "other_host_key"
    _keygen(other)
    key_type, key_data = Path(f"{other}.pub").read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{sshd.host}]:{sshd.port} {key_type} {key_data}\n")
    storage = make_storage(tmp_path, sshd, remote_dir, KNOWN_HOSTS=str(known_hosts), TRUST_ON_FIRST_USE="true")
    with pytest.raises(StorageError, match="does not match.*man-in-the-middle"):
        storage.put("s/p", TrickleStream(b"x"))
    assert list(remote_dir.iterdir()) == []


def test_a_key_the_server_does_not_accept_is_a_clear_error(tmp_path, sshd, remote_dir):
    stranger = tmp_path / "stranger_key"
    _keygen(stranger)
    storage = make_storage(tmp_path, sshd, remote_dir, IDENTITY_FILE=str(stranger))
    with pytest.raises(StorageError, match="refused the SSH key"):
        storage.put("s/p", TrickleStream(b"x"))


def test_remote_disk_full_is_a_clear_error(tmp_path, sshd):
    need_binary("rsync")
    with small_tmpfs(tmp_path / "small", size_bytes=1024 * 1024) as folder:
        storage = make_storage(tmp_path, sshd, folder)
        with pytest.raises(StorageError, match="disk .* full"):
            storage.put("s/p", TrickleStream(random_bytes(3 * 1024 * 1024)))
        assert list(storage.list()) == []
        assert staged_files(tmp_path) == []
