"""rclone storage with the real rclone binary: a local-path remote and an sftp remote on the test sshd."""

from __future__ import annotations

import pytest

from ncbackup.errors import ConfigError, StorageError
from ncbackup.storage.rclone import RcloneStorage
from ncbackup.storage.registry import build_storage
from tests.integration.storage.helpers import TrickleStream, general, random_bytes, read_all, storage_section
from tests.support import need_binary

pytestmark = pytest.mark.integration


@pytest.fixture
def rclone_config(tmp_path):
    need_binary("rclone")
    config = tmp_path / "rclone.conf"
    config.write_text("[disk]\ntype = local\n")
    return config


def make_storage(tmp_path, config, remote, **args) -> RcloneStorage:
    section = storage_section("rclone", {"REMOTE": remote, "RCLONE_CONFIG": str(config), **args})
    storage = build_storage(section, general(tmp_path))
    assert isinstance(storage, RcloneStorage)
    return storage


def roundtrip(storage: RcloneStorage) -> None:
    data = random_bytes(2 * 1024 * 1024 + 3)
    storage.put("20261126T030000Z/files.tar.zst.age.000", TrickleStream(data))
    storage.put("20261126T030000Z/manifest.json", TrickleStream(b"{}"))
    assert read_all(storage.get("20261126T030000Z/files.tar.zst.age.000")) == data
    assert [(o.key, o.size_bytes) for o in storage.list()] == [
        ("20261126T030000Z/files.tar.zst.age.000", len(data)), ("20261126T030000Z/manifest.json", 2),
    ]
    assert [o.key for o in storage.list("20261126T030000Z/m")] == ["20261126T030000Z/manifest.json"]
    storage.delete("20261126T030000Z/files.tar.zst.age.000")
    storage.delete("20261126T030000Z/files.tar.zst.age.000")
    assert [o.key for o in storage.list()] == ["20261126T030000Z/manifest.json"]
    with pytest.raises(StorageError, match="does not exist"):
        storage.get("20261126T030000Z/files.tar.zst.age.000")
    assert storage.check()[0].ok


def test_local_remote_roundtrip_under_hostname(tmp_path, rclone_config):
    target = tmp_path / "remote"
    storage = make_storage(tmp_path, rclone_config, f"disk:{target}")
    roundtrip(storage)
    assert (target / "web1" / "20261126T030000Z" / "manifest.json").read_bytes() == b"{}"


def test_empty_storage_lists_nothing(tmp_path, rclone_config):
    assert list(make_storage(tmp_path, rclone_config, f"disk:{tmp_path / 'none'}").list()) == []


def test_a_broken_stream_leaves_no_part(tmp_path, rclone_config):
    import io

    class Dies(io.RawIOBase):
        sent = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            if self.sent > 2 * 1024 * 1024:
                raise RuntimeError("source died")
            buffer[:] = bytes(len(buffer))
            self.sent += len(buffer)
            return len(buffer)

    target = tmp_path / "remote"
    storage = make_storage(tmp_path, rclone_config, f"disk:{target}")
    with pytest.raises(RuntimeError, match="source died"):
        storage.put("s/p", Dies())
    assert list(storage.list()) == []
    assert not any(path.is_file() for path in target.rglob("*"))


def test_closing_a_download_early_stops_rclone(tmp_path, rclone_config):
    storage = make_storage(tmp_path, rclone_config, f"disk:{tmp_path / 'remote'}")
    storage.put("s/p", TrickleStream(random_bytes(8 * 1024 * 1024)))
    stream = storage.get("s/p")
    assert len(stream.read(1000)) == 1000
    stream.close()


def test_unknown_remote_is_a_clear_error(tmp_path, rclone_config):
    storage = make_storage(tmp_path, rclone_config, "nosuchremote:x")
    with pytest.raises(StorageError, match="no remote named 'nosuchremote'"):
        storage.put("s/p", TrickleStream(b"x"))
    [line] = storage.check()
    assert not line.ok and "nosuchremote" in line.text


def test_remote_must_look_like_name_colon_path(tmp_path, rclone_config):
    with pytest.raises(ConfigError, match="REMOTE"):
        make_storage(tmp_path, rclone_config, "/just/a/path")


def test_sftp_remote_on_the_test_sshd(tmp_path, sshd):
    need_binary("rclone")
    config = tmp_path / "rclone.conf"
    config.write_text(
        f"[box]\ntype = sftp\nhost = {sshd.host}\nport = {sshd.port}\nuser = {sshd.user}\n"
        f"key_file = {sshd.client_key}\nknown_hosts_file = {sshd.known_hosts}\n"
    )
    target = tmp_path / "remote-sftp"
    target.mkdir()
    roundtrip(make_storage(tmp_path, config, f"box:{target}"))
