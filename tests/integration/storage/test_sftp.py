"""SFTP/SCP storage against a real OpenSSH sshd started by the tests."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from ncbackup.errors import ConfigError, StorageError
from ncbackup.storage.registry import STORAGES, build_storage
from ncbackup.storage.sftp import SftpStorage
from tests.integration.servers.sshd import _keygen
from tests.integration.storage.helpers import TrickleStream, general, random_bytes, read_all, storage_section
from tests.support import small_tmpfs

pytestmark = pytest.mark.integration

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def ssh_args(server, remote_dir: Path, **extra) -> dict:
    args = {
        "REMOTE_HOST": server.host, "PORT": str(server.port), "REMOTE_USER": server.user,
        "REMOTE_DIR": str(remote_dir), "IDENTITY_FILE": str(server.client_key),
        "KNOWN_HOSTS": str(server.known_hosts),
    }
    args.update(extra)
    return args


def make_storage(tmp_path, server, remote_dir, destination="sftp", **extra) -> SftpStorage:
    return build_storage(storage_section(destination, ssh_args(server, remote_dir, **extra)), general(tmp_path))


@pytest.fixture
def remote_dir(tmp_path) -> Path:
    folder = tmp_path / "remote"
    folder.mkdir()
    return folder


def test_scp_ssh_and_sftp_destinations_are_the_sftp_storage():
    assert STORAGES["sftp"] is STORAGES["scp"] is STORAGES["ssh"] is SftpStorage


def test_put_get_list_delete_roundtrip_under_hostname_folder(tmp_path, sshd, remote_dir):
    storage = make_storage(tmp_path, sshd, remote_dir, destination="scp")
    data = random_bytes(5 * 1024 * 1024 + 7)
    storage.put("20261126T030000Z/files.tar.zst.age.000", TrickleStream(data))
    storage.put("20261126T030000Z/manifest.json", TrickleStream(b"{}"))

    assert (remote_dir / "web1" / "20261126T030000Z" / "files.tar.zst.age.000").read_bytes() == data
    assert read_all(storage.get("20261126T030000Z/files.tar.zst.age.000")) == data
    assert [(o.key, o.size_bytes) for o in storage.list("20261126T030000Z/")] == [
        ("20261126T030000Z/files.tar.zst.age.000", len(data)), ("20261126T030000Z/manifest.json", 2),
    ]
    storage.delete("20261126T030000Z/files.tar.zst.age.000")
    storage.delete("20261126T030000Z/files.tar.zst.age.000")
    storage.delete("20261126T030000Z/manifest.json")
    assert list(storage.list()) == []
    assert not (remote_dir / "web1" / "20261126T030000Z").exists()  # empty set folder removed


def test_put_replaces_an_existing_part_atomically(tmp_path, sshd, remote_dir):
    storage = make_storage(tmp_path, sshd, remote_dir)
    storage.put("s/p", TrickleStream(b"old"))
    storage.put("s/p", TrickleStream(b"new contents"))
    assert read_all(storage.get("s/p")) == b"new contents"
    assert os.listdir(remote_dir / "web1" / "s") == ["p"]


def test_a_stream_dying_midway_leaves_no_part_and_no_temp_file(tmp_path, sshd, remote_dir):
    class Dies(io.RawIOBase):
        sent = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            if self.sent > 3 * 1024 * 1024:
                raise RuntimeError("source died")
            buffer[:] = bytes(len(buffer))
            self.sent += len(buffer)
            return len(buffer)

    storage = make_storage(tmp_path, sshd, remote_dir)
    with pytest.raises(RuntimeError, match="source died"):
        storage.put("s/p", Dies())
    assert os.listdir(remote_dir / "web1" / "s") == []
    assert list(storage.list()) == []


def test_unknown_host_key_is_refused_by_default(tmp_path, sshd, remote_dir):
    storage = make_storage(tmp_path, sshd, remote_dir, KNOWN_HOSTS=str(tmp_path / "empty_known_hosts"))
    with pytest.raises(StorageError, match="is not in .*empty_known_hosts.*TRUST_ON_FIRST_USE") as caught:
        storage.put("s/p", TrickleStream(b"x"))
    assert caught.value.is_permanent   # with_retries gives up at once
    [line] = storage.check()
    assert not line.ok


def test_trust_on_first_use_records_the_host_key_0600_and_then_it_is_checked(tmp_path, sshd, remote_dir):
    known_hosts = tmp_path / "ssh" / "known_hosts"
    storage = make_storage(tmp_path, sshd, remote_dir, KNOWN_HOSTS=str(known_hosts), TRUST_ON_FIRST_USE="True")
    storage.put("s/p", TrickleStream(b"x"))
    assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o600
    assert sshd.host_key_public.read_text().split()[1] in known_hosts.read_text()
    strict = make_storage(tmp_path, sshd, remote_dir, KNOWN_HOSTS=str(known_hosts))
    assert read_all(strict.get("s/p")) == b"x"


def test_host_key_mismatch_is_refused_even_with_trust_on_first_use(tmp_path, sshd, remote_dir):
    other = tmp_path / "other_host_key"
    _keygen(other)
    key_type, key_data = Path(f"{other}.pub").read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{sshd.host}]:{sshd.port} {key_type} {key_data}\n")
    storage = make_storage(tmp_path, sshd, remote_dir, KNOWN_HOSTS=str(known_hosts), TRUST_ON_FIRST_USE="yes")
    with pytest.raises(StorageError, match="does not match.*man-in-the-middle") as caught:
        storage.put("s/p", TrickleStream(b"x"))
    assert caught.value.is_permanent   # with_retries gives up at once
    assert list(remote_dir.iterdir()) == []


def test_a_key_the_server_does_not_accept_is_a_clear_error(tmp_path, sshd, remote_dir):
    stranger = tmp_path / "stranger_key"
    _keygen(stranger)
    storage = make_storage(tmp_path, sshd, remote_dir, IDENTITY_FILE=str(stranger))
    with pytest.raises(StorageError, match="refused the SSH key .*stranger_key.*authorized_keys") as caught:
        storage.put("s/p", TrickleStream(b"x"))
    assert caught.value.is_permanent   # with_retries gives up at once


def test_missing_identity_file_is_a_config_error(tmp_path, sshd, remote_dir):
    with pytest.raises(ConfigError, match="IDENTITY_FILE .* does not exist"):
        make_storage(tmp_path, sshd, remote_dir, IDENTITY_FILE=str(tmp_path / "nope"))


def test_missing_remote_dir_is_a_clear_error_and_is_not_created(tmp_path, sshd):
    missing = tmp_path / "no-such-dir"
    storage = make_storage(tmp_path, sshd, missing)
    with pytest.raises(StorageError, match="REMOTE_DIR .*no-such-dir does not exist") as caught:
        storage.put("s/p", TrickleStream(b"x"))
    assert caught.value.is_permanent   # with_retries gives up at once
    assert not missing.exists()
    [line] = storage.check()
    assert not line.ok and "does not exist" in line.text


def test_missing_part_get_is_a_storage_error(tmp_path, sshd, remote_dir):
    storage = make_storage(tmp_path, sshd, remote_dir)
    with pytest.raises(StorageError, match="does not exist") as caught:
        storage.get("s/none")
    assert caught.value.is_permanent   # with_retries gives up at once


def test_unreachable_port_is_a_clear_error(tmp_path, sshd, remote_dir):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    storage = make_storage(tmp_path, sshd, remote_dir, PORT=str(port))
    with pytest.raises(StorageError, match=f"cannot reach 127.0.0.1:{port} over SSH") as caught:
        storage.put("s/p", TrickleStream(b"x"))
    assert not caught.value.is_permanent   # worth retrying


@pytest.fixture
def unwritable_dir_and_user(sshd):
    """A folder the SSH user may read but not write: as root, log in as nobody (root ignores modes)."""
    folder = Path(tempfile.mkdtemp(prefix="ncbackup-ro-"))
    try:
        if IS_ROOT:
            folder.chmod(0o755)
            yield folder, "nobody"
        else:
            folder.chmod(0o555)
            yield folder, sshd.user
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


def test_permission_denied_on_the_remote_dir_is_a_clear_error(tmp_path, sshd, unwritable_dir_and_user):
    folder, user = unwritable_dir_and_user
    storage = make_storage(tmp_path, sshd, folder, REMOTE_USER=user)
    with pytest.raises(StorageError, match=f"permission denied .*user '{user}'.*REMOTE_DIR") as caught:
        storage.put("s/p", TrickleStream(b"x"))
    assert caught.value.is_permanent   # with_retries gives up at once
    assert list(folder.iterdir()) == []


def test_remote_disk_full_is_a_clear_error_and_leaves_no_temp_file(tmp_path, sshd):
    with small_tmpfs(tmp_path / "small", size_bytes=1024 * 1024) as folder:
        storage = make_storage(tmp_path, sshd, folder)
        with pytest.raises(StorageError, match="remote disk may be full") as caught:
            storage.put("s/p", TrickleStream(random_bytes(3 * 1024 * 1024)))
        assert not caught.value.is_permanent   # worth retrying
        storage.close()
        assert os.listdir(folder / "web1" / "s") == []


def test_a_dropped_connection_is_reopened_for_the_next_operation(tmp_path, sshd, remote_dir):
    storage = make_storage(tmp_path, sshd, remote_dir)
    storage.put("s/a", TrickleStream(b"first"))
    storage._client.get_transport().close()   # as if the server or a firewall dropped the idle session
    storage.put("s/b", TrickleStream(b"second"))
    assert read_all(storage.get("s/a")) == b"first"
    assert [o.key for o in storage.list()] == ["s/a", "s/b"]
