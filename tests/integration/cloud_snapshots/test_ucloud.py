"""ucloud-image and ucloud-udisk against a fake UCloud API that checks every signature as UCloud documents it."""

from __future__ import annotations

import logging
import time

import pytest

from ncbackup.errors import BackupError, ConfigError
from ncbackup.snapshots.ucloud import UCloudImageSnapshot, UCloudUDiskSnapshot
from tests.integration.cloud_snapshots.fake_ucloud import PRIVATE_KEY, PUBLIC_KEY, FakeUCloud, FakeUCloudServer
from tests.integration.cloud_snapshots.helpers import (
    config_path,
    general,
    own_prefix,
    snapshot_section,
    write_credentials,
)


@pytest.fixture
def fake():
    fake = FakeUCloud()
    server = FakeUCloudServer(fake)
    fake.url = server.url
    yield fake
    server.close()


@pytest.fixture
def credentials(tmp_path):
    return write_credentials(tmp_path / "ucloud.env", {"PUBLIC_KEY": PUBLIC_KEY, "PRIVATE_KEY": PRIVATE_KEY,
                                                       "PROJECT_ID": "org-test"})


def image(tmp_path, fake, credentials, **parameters) -> UCloudImageSnapshot:
    values = {"METHOD": "ucloud-image", "REGION": "cn-bj2", "BASE_URL": fake.url, "CREDENTIALS_FILE": str(credentials),
              "POLL_SECONDS": "0.05", "WAIT_SECONDS": "5", **parameters}
    return UCloudImageSnapshot.from_section(snapshot_section(values), general(tmp_path), config_path=config_path(tmp_path))


def udisk(tmp_path, fake, credentials, **parameters) -> UCloudUDiskSnapshot:
    values = {"METHOD": "ucloud-udisk", "REGION": "cn-bj2", "ZONE": "cn-bj2-04", "BASE_URL": fake.url,
              "CREDENTIALS_FILE": str(credentials), "POLL_SECONDS": "0.05", "WAIT_SECONDS": "5", **parameters}
    return UCloudUDiskSnapshot.from_section(snapshot_section(values), general(tmp_path), config_path=config_path(tmp_path))


def test_image_per_host_is_created_waited_for_and_recorded(tmp_path, fake, credentials):
    fake.ready_after_describes = 3
    taken = image(tmp_path, fake, credentials, HOST_ID="uhost-aaa uhost-bbb").take()

    assert taken.method == "ucloud-image" and len(taken.ids) == 2
    assert {fake.images[i]["State"] for i in taken.ids} == {"Available"}
    made = fake.images[taken.ids[0]]
    assert made["UHostId"] == "uhost-aaa" and made["ImageName"].startswith(own_prefix(tmp_path))
    assert made["ImageName"].endswith("-uhost-aaa") and made["ImageDescription"].startswith("img_")
    create = next(call for call in fake.calls if call["Action"] == "CreateCustomImage")
    assert create["ProjectId"] == "org-test" and create["Region"] == "cn-bj2"


def test_image_rotation_keeps_the_newest_per_host_and_never_touches_others(tmp_path, fake, credentials):
    foreign = fake.add_image("img_20240101_uhost-aaa")
    other_config = fake.add_image("ncbackup-web1-weekly-20240101T000000Z-uhost-aaa")
    other_host = fake.add_image("ncbackup-db1-nightly-20240101T000000Z-uhost-aaa")
    made = []
    for _ in range(3):
        snapshot = image(tmp_path, fake, credentials, HOST_ID="uhost-aaa uhost-bbb", KEEP="2")
        made.append(snapshot.take().ids)
        assert snapshot.release() == []
    assert set(fake.images) == {foreign, other_config, other_host, *made[1], *made[2]}


def test_udisk_snapshot_with_name_and_comment_then_rotation(tmp_path, fake, credentials):
    foreign = fake.add_snapshot("bs-disk1", "nightly-by-hand")
    made = []
    for _ in range(3):
        snapshot = udisk(tmp_path, fake, credentials, UDISK_ID="bs-disk1", NAME="Data Disk", COMMENT="before backup",
                         KEEP="1")
        made.append(snapshot.take().ids[0])
        assert snapshot.release() == []
    assert set(fake.snapshots) == {foreign, made[2]}
    last = fake.snapshots[made[2]]
    assert last["Name"].startswith(own_prefix(tmp_path)) and last["Name"].endswith("-bs-disk1-data-disk")
    assert last["Comment"] == "before backup"
    deletes = [call for call in fake.calls if call["Action"] == "DeleteUDiskSnapshot"]
    assert deletes and all("UDiskId" not in call and call["Zone"] == "cn-bj2-04" for call in deletes)


def test_wait_is_bounded_and_a_timed_out_snapshot_is_deleted(tmp_path, fake, credentials):
    fake.ready_after_describes = 10_000
    started = time.monotonic()
    with pytest.raises(BackupError) as caught:
        udisk(tmp_path, fake, credentials, UDISK_ID="bs-disk1", WAIT_SECONDS="0.3").take()
    assert time.monotonic() - started < 5          # coarse: the snapshot would never be ready
    assert "was not ready after 0.3 s (WAIT_SECONDS)" in str(caught.value)
    assert fake.snapshots == {}


def test_no_wait_returns_at_once(tmp_path, fake, credentials):
    fake.ready_after_describes = 10_000
    taken = udisk(tmp_path, fake, credentials, UDISK_ID="bs-disk1", WAIT_SECONDS="0").take()
    assert fake.snapshots[taken.ids[0]]["Status"] == "Creating"


def test_failed_snapshot_fails_the_take_and_a_leftover_is_cleaned_up(tmp_path, fake, credentials):
    fake.fail_forever = True
    with pytest.raises(BackupError) as caught:
        udisk(tmp_path, fake, credentials, UDISK_ID="bs-disk1").take()
    assert "failed at the provider" in str(caught.value) and fake.snapshots == {}
    fake.fail_forever = False
    left = fake.add_snapshot("bs-disk1", own_prefix(tmp_path) + "20240101T000000Z-bs-disk1", status="Failed")
    pending = fake.add_snapshot("bs-disk1", own_prefix(tmp_path) + "20240102T000000Z-bs-disk1", status="Creating")
    fake.snapshots[pending]["_pending"] = 10_000
    foreign = fake.add_snapshot("bs-disk1", "someone-elses", status="Failed")
    lines = udisk(tmp_path, fake, credentials, UDISK_ID="bs-disk1").cleanup_leftovers()
    assert len(lines) == 1 and left in lines[0]
    assert set(fake.snapshots) == {pending, foreign}


def test_quota_exceeded_is_one_sentence(tmp_path, fake, credentials):
    fake.quota = 0
    with pytest.raises(BackupError) as caught:
        image(tmp_path, fake, credentials, HOST_ID="uhost-aaa").take()
    text = str(caught.value)
    assert text.startswith("could not create an image of the UHost uhost-aaa: UCloud answered RetCode 8039 (Quota")
    assert "lower KEEP" in text and "\n" not in text


def test_wrong_private_key_is_one_sentence_without_the_key(tmp_path, fake, caplog):
    wrong = write_credentials(tmp_path / "wrong.env", {"PUBLIC_KEY": PUBLIC_KEY, "PRIVATE_KEY": "wrong-private-key-9876"})
    caplog.set_level(logging.DEBUG)
    with pytest.raises(BackupError) as caught:
        udisk(tmp_path, fake, wrong, UDISK_ID="bs-disk1").take()
    text = str(caught.value)
    assert "RetCode 171 (Signature VerifyAC Error); check PUBLIC_KEY and PRIVATE_KEY" in text
    assert "wrong-private-key" not in text + caplog.text and "\n" not in text


def test_credentials_come_from_the_environment_without_a_file(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("UCLOUD_PUBLIC_KEY", PUBLIC_KEY)
    monkeypatch.setenv("UCLOUD_PRIVATE_KEY", PRIVATE_KEY)
    values = {"METHOD": "ucloud-udisk", "REGION": "cn-bj2", "ZONE": "cn-bj2-04", "BASE_URL": fake.url,
              "UDISK_ID": "bs-disk1", "WAIT_SECONDS": "0"}
    snapshot = UCloudUDiskSnapshot.from_section(snapshot_section(values), general(tmp_path),
                                                config_path=config_path(tmp_path))
    assert snapshot.take().ids


def test_credentials_file_readable_by_others_is_refused(tmp_path, fake):
    loose = write_credentials(tmp_path / "loose.env", {"PUBLIC_KEY": PUBLIC_KEY, "PRIVATE_KEY": PRIVATE_KEY}, mode=0o644)
    with pytest.raises(ConfigError) as caught:
        udisk(tmp_path, fake, loose, UDISK_ID="bs-disk1").take()
    assert "chmod 600" in str(caught.value) and fake.calls == []


def test_private_key_in_the_config_is_refused(tmp_path, fake, credentials):
    with pytest.raises(ConfigError) as caught:
        udisk(tmp_path, fake, credentials, UDISK_ID="bs-disk1", PRIVATE_KEY="abc123")
    assert "PRIVATE_KEY holds a secret" in str(caught.value) and "abc123" not in str(caught.value)


def test_udisk_without_zone_is_refused(tmp_path, fake, credentials):
    values = {"METHOD": "ucloud-udisk", "REGION": "cn-bj2", "UDISK_ID": "bs-disk1"}
    with pytest.raises(ConfigError) as caught:
        UCloudUDiskSnapshot.from_section(snapshot_section(values), general(tmp_path), config_path=config_path(tmp_path))
    assert "ZONE" in str(caught.value)


def test_check_lists_without_creating(tmp_path, fake, credentials):
    lines = image(tmp_path, fake, credentials, HOST_ID="uhost-aaa").check()
    assert lines[0].ok and fake.images == {}
    assert {call["Action"] for call in fake.calls} == {"DescribeImage"}


def test_the_private_key_is_masked_wherever_it_would_be_logged(tmp_path, fake, credentials, monkeypatch):
    from ncbackup.engine.logs import mask_secrets

    udisk(tmp_path, fake, credentials, UDISK_ID="bs-disk1", WAIT_SECONDS="0").take()
    assert PRIVATE_KEY not in mask_secrets(f"request failed with key {PRIVATE_KEY}")
    monkeypatch.setenv("UCLOUD_PUBLIC_KEY", PUBLIC_KEY)
    monkeypatch.setenv("UCLOUD_PRIVATE_KEY", "env-private-key-55555")
    values = {"METHOD": "ucloud-udisk", "REGION": "cn-bj2", "ZONE": "cn-bj2-04", "BASE_URL": fake.url,
              "UDISK_ID": "bs-disk1", "WAIT_SECONDS": "0"}
    snapshot = UCloudUDiskSnapshot.from_section(snapshot_section(values), general(tmp_path),
                                                config_path=config_path(tmp_path))
    with pytest.raises(BackupError):
        snapshot.take()
    assert "env-private-key-55555" not in mask_secrets("key env-private-key-55555")
