"""aliyun-ecs against a fake ECS RPC API that verifies signature v1 independently."""

from __future__ import annotations

import logging

import pytest

from ncbackup.errors import BackupError
from ncbackup.snapshots.aliyun_ecs import AliyunEcsSnapshot, rpc_signature
from tests.integration.cloud_snapshots.fake_aliyun import ACCESS_KEY_ID, ACCESS_KEY_SECRET, FakeEcs, FakeEcsServer
from tests.integration.cloud_snapshots.helpers import (
    config_path,
    general,
    own_prefix,
    snapshot_section,
    write_credentials,
)


@pytest.fixture
def fake():
    fake = FakeEcs()
    server = FakeEcsServer(fake)
    fake.url = server.url
    yield fake
    server.close()


@pytest.fixture
def credentials(tmp_path):
    return write_credentials(tmp_path / "aliyun.env", {"ALIBABA_CLOUD_ACCESS_KEY_ID": ACCESS_KEY_ID,
                                                       "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET})


def ecs(tmp_path, fake, credentials, **parameters) -> AliyunEcsSnapshot:
    values = {"METHOD": "aliyun-ecs", "REGION": "cn-hangzhou", "ENDPOINT_URL": fake.url,
              "CREDENTIALS_FILE": str(credentials), "POLL_SECONDS": "0.05", "WAIT_SECONDS": "5", **parameters}
    return AliyunEcsSnapshot.from_section(snapshot_section(values), general(tmp_path), config_path=config_path(tmp_path))


def test_signature_matches_the_documented_example():
    # The example of help.aliyun.com/document_detail/28839.html (secret "testsecret").
    query = {"Timestamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid", "Action": "DescribeRegions",
             "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
             "Version": "2014-05-26", "SignatureVersion": "1.0"}
    assert rpc_signature(query, secret="testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_snapshots_are_created_waited_for_and_recorded(tmp_path, fake, credentials):
    fake.ready_after_describes = 3
    taken = ecs(tmp_path, fake, credentials, DISK_IDS="d-disk1 d-disk2").take()
    assert taken.method == "aliyun-ecs" and len(taken.ids) == 2
    assert {fake.snapshots[i]["Status"] for i in taken.ids} == {"accomplished"}
    assert fake.snapshots[taken.ids[1]]["SourceDiskId"] == "d-disk2"
    assert fake.snapshots[taken.ids[0]]["SnapshotName"].startswith(own_prefix(tmp_path))


def test_names_with_spaces_and_unicode_are_signed_right(tmp_path, fake, credentials):
    # The description carries the section's name; a space and non-ASCII test the percent-encoding rules.
    values = {"METHOD": "aliyun-ecs", "REGION": "cn-hangzhou", "ENDPOINT_URL": fake.url, "DISK_IDS": "d-disk1",
              "CREDENTIALS_FILE": str(credentials), "WAIT_SECONDS": "0"}
    snapshot = AliyunEcsSnapshot.from_section(snapshot_section(values, name="快照 disk*~"), general(tmp_path),
                                              config_path=config_path(tmp_path))
    taken = snapshot.take()
    assert fake.snapshots[taken.ids[0]]["Description"] == "ncbackup section 快照 disk*~"


def test_rotation_keeps_the_newest_per_disk_and_never_touches_others(tmp_path, fake, credentials):
    foreign = fake.add("d-disk1", "auto-snapshot-policy")
    other_config = fake.add("d-disk1", "ncbackup-web1-weekly-20240101T000000Z-d-disk1")
    made = []
    for _ in range(3):
        snapshot = ecs(tmp_path, fake, credentials, DISK_IDS="d-disk1", KEEP="2")
        made.append(snapshot.take().ids[0])
        assert snapshot.release() == []
    assert set(fake.snapshots) == {foreign, other_config, made[1], made[2]}


@pytest.mark.parametrize(("setup", "expected"), [
    ({"throttle_next": 1}, "ECS answered Throttling (Request was denied due to request throttling); ECS throttled"),
    ({"quota": 0}, "ECS answered QuotaExceed.Snapshot (The snapshot quota of this disk is exceeded); delete old"),
])
def test_provider_errors_are_one_sentence(tmp_path, fake, credentials, setup, expected):
    for name, value in setup.items():
        setattr(fake, name, value)
    with pytest.raises(BackupError) as caught:
        ecs(tmp_path, fake, credentials, DISK_IDS="d-disk1").take()
    text = str(caught.value)
    assert text.startswith("could not create a snapshot of the ECS disk d-disk1: ") and expected in text
    assert "\n" not in text


def test_unknown_access_key_and_wrong_secret_are_one_sentence_without_the_secret(tmp_path, fake, caplog):
    caplog.set_level(logging.DEBUG)
    unknown = write_credentials(tmp_path / "unknown.env", {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-nobody",
                                                           "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET})
    with pytest.raises(BackupError) as caught:
        ecs(tmp_path, fake, unknown, DISK_IDS="d-disk1").take()
    assert "InvalidAccessKeyId.NotFound" in str(caught.value)
    wrong = write_credentials(tmp_path / "wrong.env", {"ALIBABA_CLOUD_ACCESS_KEY_ID": ACCESS_KEY_ID,
                                                       "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "wrong-secret-424242"})
    with pytest.raises(BackupError) as caught:
        ecs(tmp_path, fake, wrong, DISK_IDS="d-disk1").take()
    text = str(caught.value)
    assert "SignatureDoesNotMatch" in text and "check ALIBABA_CLOUD_ACCESS_KEY_SECRET" in text
    assert "wrong-secret-424242" not in text + caplog.text and fake.snapshots == {}


def test_timed_out_snapshot_is_deleted_and_old_ones_are_kept(tmp_path, fake, credentials):
    old = ecs(tmp_path, fake, credentials, DISK_IDS="d-disk1").take().ids[0]
    fake.ready_after_describes = 10_000
    failing = ecs(tmp_path, fake, credentials, DISK_IDS="d-disk1", WAIT_SECONDS="0.3", KEEP="1")
    with pytest.raises(BackupError):
        failing.take()
    assert failing.release() == []
    assert set(fake.snapshots) == {old}


def test_credentials_from_the_environment(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
    values = {"METHOD": "aliyun-ecs", "REGION": "cn-hangzhou", "ENDPOINT_URL": fake.url, "DISK_IDS": "d-disk1"}
    snapshot = AliyunEcsSnapshot.from_section(snapshot_section(values), general(tmp_path), config_path=config_path(tmp_path))
    assert snapshot.check()[0].ok and fake.snapshots == {}


def test_the_secret_is_masked_wherever_it_would_be_logged(tmp_path, fake, credentials):
    from ncbackup.engine.logs import mask_secrets

    ecs(tmp_path, fake, credentials, DISK_IDS="d-disk1", WAIT_SECONDS="0").take()
    assert ACCESS_KEY_SECRET not in mask_secrets(f"signing with {ACCESS_KEY_SECRET}")
