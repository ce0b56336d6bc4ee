"""aws-ebs against moto's EC2 in server mode: create, wait, record ids, rotate only ncbackup's own, errors."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ncbackup.errors import BackupError, ConfigError
from ncbackup.snapshots.aws_ebs import AwsEbsSnapshot
from tests.integration.cloud_snapshots.helpers import config_path, general, own_prefix, snapshot_section
from tests.integration.servers.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY

REGION = "us-east-1"


@pytest.fixture
def ec2(s3_env):
    import boto3

    return boto3.client("ec2", endpoint_url=s3_env.endpoint_url, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)


def volume(ec2) -> str:
    return ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]


def method(tmp_path, endpoint_url, **parameters) -> AwsEbsSnapshot:
    values = {"METHOD": "aws-ebs", "REGION": REGION, "ENDPOINT_URL": endpoint_url, "POLL_SECONDS": "0.1", **parameters}
    return AwsEbsSnapshot.from_section(snapshot_section(values), general(tmp_path), config_path=config_path(tmp_path))


def own_snapshots(ec2, volume_id: str) -> list[dict]:
    answer = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "volume-id", "Values": [volume_id]}])
    return answer["Snapshots"]


def test_take_creates_tagged_snapshots_and_records_their_ids(tmp_path, s3_env, ec2):
    first, second = volume(ec2), volume(ec2)
    snapshot = method(tmp_path, s3_env.endpoint_url, VOLUME_IDS=f"{first} {second}", TAGS="team=ops")

    taken = snapshot.take()

    assert taken.method == "aws-ebs" and len(taken.ids) == 2 and taken.mapping == {}
    assert taken.notes and "ready" in taken.notes[0]
    made = own_snapshots(ec2, first)
    assert [item["SnapshotId"] for item in made] == [taken.ids[0]]
    tags = {tag["Key"]: tag["Value"] for tag in made[0]["Tags"]}
    assert tags["ncbackup:host"] == "web1" and tags["ncbackup:config"] == "nightly" and tags["team"] == "ops"
    assert tags["Name"].startswith(own_prefix(tmp_path))
    assert own_snapshots(ec2, second)[0]["SnapshotId"] == taken.ids[1]


def test_release_keeps_the_newest_and_never_touches_foreign_snapshots(tmp_path, s3_env, ec2):
    volume_id = volume(ec2)
    foreign = ec2.create_snapshot(VolumeId=volume_id, Description="made by hand")["SnapshotId"]
    other_config = ec2.create_snapshot(VolumeId=volume_id, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
        {"Key": "ncbackup:host", "Value": "web1"}, {"Key": "ncbackup:config", "Value": "weekly"},
        {"Key": "Name", "Value": "ncbackup-web1-weekly-20200101T000000Z-x"}]}])["SnapshotId"]
    taken = []
    for _ in range(4):
        snapshot = method(tmp_path, s3_env.endpoint_url, VOLUME_IDS=volume_id, KEEP="2")
        taken.append(snapshot.take().ids[0])
        assert snapshot.release() == []
        assert snapshot.release() == []          # idempotent

    left = {item["SnapshotId"] for item in own_snapshots(ec2, volume_id)}
    assert left == {foreign, other_config, taken[2], taken[3]}


def test_release_after_a_failed_take_deletes_nothing(tmp_path, s3_env, ec2):
    volume_id = volume(ec2)
    old = []
    for _ in range(2):
        snapshot = method(tmp_path, s3_env.endpoint_url, VOLUME_IDS=volume_id, KEEP="1")
        old.append(snapshot.take().ids[0])
    failing = method(tmp_path, s3_env.endpoint_url, VOLUME_IDS=f"{volume_id} vol-0000000000000dead", KEEP="1")
    with pytest.raises(BackupError) as caught:
        failing.take()
    assert failing.release() == []
    # The snapshot of the first volume made by the failed take is deleted again; the old ones stay.
    assert {item["SnapshotId"] for item in own_snapshots(ec2, volume_id)} == set(old)
    assert "InvalidVolume.NotFound" in str(caught.value) and "\n" not in str(caught.value)


def test_cleanup_leftovers_finds_only_failed_snapshots_of_this_config(tmp_path, s3_env, ec2):
    volume_id = volume(ec2)
    snapshot = method(tmp_path, s3_env.endpoint_url, VOLUME_IDS=volume_id)
    snapshot_id = snapshot.take().ids[0]
    assert snapshot.cleanup_leftovers() == []      # a completed snapshot is no leftover
    assert [item["SnapshotId"] for item in own_snapshots(ec2, snapshot_id and volume_id)] == [snapshot_id]


def test_wrong_credentials_end_in_one_sentence_without_the_secret(tmp_path, s3_env, ec2, monkeypatch, caplog):
    volume_id = volume(ec2)
    s3_env.require_auth(True)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-right-secret-0123456789")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(BackupError) as caught:
        method(tmp_path, s3_env.endpoint_url, VOLUME_IDS=volume_id).take()
    text = str(caught.value)
    assert text.startswith(f"could not create a snapshot of the EBS volume {volume_id}: EC2 answered")
    assert "\n" not in text and "not-the-right-secret" not in text + caplog.text


def test_check_says_whether_the_volumes_exist(tmp_path, s3_env, ec2):
    volume_id = volume(ec2)
    assert method(tmp_path, s3_env.endpoint_url, VOLUME_IDS=volume_id).check()[0].ok
    line = method(tmp_path, s3_env.endpoint_url, VOLUME_IDS="vol-0000000000000dead").check()[0]
    assert not line.ok and "InvalidVolume.NotFound" in line.text
    assert own_snapshots(ec2, volume_id) == []          # check creates nothing


def test_secret_in_the_parameters_is_refused(tmp_path):
    with pytest.raises(ConfigError) as caught:
        method(tmp_path, "http://127.0.0.1:1", VOLUME_IDS="vol-1", AWS_SECRET_ACCESS_KEY="abc")
    assert "CREDENTIALS_FILE" in str(caught.value) and "abc" not in str(caught.value)


class FakeImds:
    """IMDSv2 on 127.0.0.1: a PUT gives a token, the instance id is given only with that token."""

    TOKEN = "imds-token-123"

    def __init__(self, instance_id: str) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_PUT(self) -> None:
                if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    self._answer(200, fake.TOKEN)
                else:
                    self._answer(400, "bad token request")

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") != fake.TOKEN:
                    self._answer(401, "")
                elif self.path == "/latest/meta-data/instance-id":
                    self._answer(200, instance_id)
                else:
                    self._answer(404, "")

            def _answer(self, status: int, text: str) -> None:
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_instance_snapshots_every_volume_attached_to_this_instance(tmp_path, s3_env, ec2):
    instance_id = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    extra = volume(ec2)
    ec2.attach_volume(VolumeId=extra, InstanceId=instance_id, Device="/dev/sdf")
    unattached = volume(ec2)
    attached = {item["VolumeId"] for item in ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])["Volumes"]}
    imds = FakeImds(instance_id)
    try:
        taken = method(tmp_path, s3_env.endpoint_url, VOLUME_IDS="instance", IMDS_ENDPOINT=imds.url).take()
    finally:
        imds.close()
    sources = {item["VolumeId"] for item in ec2.describe_snapshots(SnapshotIds=list(taken.ids))["Snapshots"]}
    assert extra in attached and sources == attached and unattached not in sources


def test_instance_without_metadata_service_is_one_sentence(tmp_path, s3_env):
    with pytest.raises(BackupError) as caught:
        method(tmp_path, s3_env.endpoint_url, VOLUME_IDS="instance", IMDS_ENDPOINT="http://127.0.0.1:9").take()
    assert "instance metadata service" in str(caught.value) and "\n" not in str(caught.value)
