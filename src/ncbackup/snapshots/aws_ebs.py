"""METHOD ``aws-ebs``: EBS snapshots of VOLUME_IDS (or of every volume attached to this instance) with boto3.

Each snapshot carries the tags ``ncbackup:host`` and ``ncbackup:config`` and a ``Name`` starting with
``ncbackup-<host>-<config>-``; rotation lists only snapshots with both tags (``describe_snapshots``
filtered by tag, owner self) and checks the name again, so it never touches another snapshot.
Credentials: the AWS chain as for S3 storage (environment, ``~/.aws``, an instance role), or
CREDENTIALS_FILE (an AWS credentials file, 0600) with PROFILE. ``VOLUME_IDS instance`` asks IMDSv2
for this instance's id (a PUT for a session token, then a GET with it; docs.aws.amazon.com/AWSEC2/latest/
UserGuide/configuring-instance-metadata-service.html) and snapshots every volume attached to it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ncbackup.config.types import LegacyPath, WordList
from ncbackup.errors import BackupError, ConfigError
from ncbackup.extras import import_extra
from ncbackup.snapshots._cloud import (
    FAILED,
    PENDING,
    READY,
    CloudOptions,
    CloudSnapshot,
    CloudSnapshotMethod,
    name_prefix,
    read_options,
    safe_word,
)
from ncbackup.sources.base import CheckLine
from ncbackup.stages.keys import refuse_if_readable_by_others
from ncbackup.storage.s3 import register_aws_secrets

if TYPE_CHECKING:
    from ncbackup.config.settings import GeneralSettings, SectionSettings

METHOD = "aws-ebs"
INSTANCE = "instance"
DEFAULT_IMDS_ENDPOINT = "http://169.254.169.254"
IMDS_TIMEOUT_SECONDS = 3.0
HOST_TAG = "ncbackup:host"
CONFIG_TAG = "ncbackup:config"
# EC2 snapshot states (describe_snapshots): pending | completed | error | recoverable | recovering.
_STATES = {"completed": READY, "pending": PENDING, "error": FAILED}

# What to do about an EC2 error code; the code itself is always shown.
_ADVICE = {
    "AuthFailure": "check the AWS credentials (CREDENTIALS_FILE, PROFILE or the environment)",
    "UnauthorizedOperation": "give these credentials ec2:CreateSnapshot, ec2:DescribeSnapshots, ec2:DeleteSnapshot, "
                             "ec2:DescribeVolumes and ec2:CreateTags",
    "SnapshotLimitExceeded": "delete old snapshots, lower KEEP, or ask AWS to raise the snapshot quota",
    "InvalidVolume.NotFound": "check VOLUME_IDS and REGION",
    "RequestLimitExceeded": "EC2 throttled the requests; run again later",
}


class AwsEbsOptions(CloudOptions):
    """PARAMETERS of a SNAPSHOT section with METHOD aws-ebs."""

    volume_ids: WordList = Field(alias="VOLUME_IDS", min_length=1,
                                 description='the EBS volume ids, space-separated, or `instance`: every volume '
                                             'attached to this EC2 instance (its id from IMDSv2)')
    region: str | None = Field(None, alias="REGION", json_schema_extra={"shown_default": "the AWS configuration's"},
                               description="the AWS region of the volumes")
    endpoint_url: str | None = Field(None, alias="ENDPOINT_URL", description="another EC2 endpoint (tests)")
    imds_endpoint: str | None = Field(
        None, alias="IMDS_ENDPOINT",
        json_schema_extra={"shown_default": "`AWS_EC2_METADATA_SERVICE_ENDPOINT`, else http://169.254.169.254"},
        description="the instance metadata service, for `VOLUME_IDS instance`",
    )
    credentials_file: LegacyPath | None = Field(
        None, alias="CREDENTIALS_FILE", json_schema_extra={"shown_default": "`~/.aws/credentials`"},
        description="an AWS credentials file (INI, `[profile]` sections; mode 0600) used instead of the usual places",
    )
    profile: str | None = Field(None, alias="PROFILE", description="the profile of the AWS credentials file")
    tags: WordList = Field(default_factory=list, alias="TAGS",
                           description="more tags on each snapshot, space-separated `key=value`")


class AwsEbsSnapshot(CloudSnapshotMethod):
    """EBS snapshots of some volumes, tagged as ncbackup's, rotated to KEEP per volume."""

    method = METHOD
    what = "EBS snapshot"

    def __init__(self, *, name: str, options: AwsEbsOptions, hostname: str, config_path: Path) -> None:
        super().__init__(name=name, options=options, prefix=name_prefix(hostname, config_path, name))
        self.aws = options
        self.host_tag = safe_word(hostname)
        self.config_tag = safe_word(config_path.stem)
        self.extra_tags = _parse_tags(options.tags, section_name=name)
        self._client: Any = None

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings, *, config_path: Path) -> AwsEbsSnapshot:
        options = read_options(AwsEbsOptions, section, config_path=config_path)
        if INSTANCE in options.volume_ids and len(options.volume_ids) > 1:
            raise ConfigError(f"section {section.name}: VOLUME_IDS is either `instance` or volume ids, not both",
                              file=config_path, key=f"{section.name}.VOLUME_IDS")
        _parse_tags(options.tags, section_name=section.name)
        return cls(name=section.name, options=options, hostname=general.hostname, config_path=config_path)

    # -- the client --------------------------------------------------------------------------------
    def client(self) -> Any:  # a botocore EC2 client; boto3 has no type information
        if self._client is not None:
            return self._client
        boto3 = import_extra("boto3", needed_by=f"section {self.name} uses aws-ebs snapshots")
        import botocore.session
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        core = botocore.session.Session()
        path = self.aws.credentials_file.expanduser() if self.aws.credentials_file else None
        if path is not None:
            if not path.is_file():
                raise ConfigError(f"the credentials file {path} of section {self.name} does not exist; create it "
                                  "(AWS credentials file format, mode 0600) or fix CREDENTIALS_FILE",
                                  key=f"{self.name}.CREDENTIALS_FILE")
            refuse_if_readable_by_others(path, "credentials file", key=f"{self.name}.CREDENTIALS_FILE")
            core.set_config_variable("credentials_file", str(path))
        register_aws_secrets(path)
        try:
            session = boto3.Session(botocore_session=core, profile_name=self.aws.profile)
        except BotoCoreError as error:  # ProfileNotFound
            raise ConfigError(f"{error}; fix PROFILE of section {self.name}", key=f"{self.name}.PROFILE") from None
        region = self.aws.region or session.region_name
        if not region:
            raise ConfigError(f"section {self.name}: no AWS region is set; add REGION to its PARAMETERS",
                              key=f"{self.name}.REGION")
        config = Config(region_name=region, retries={"mode": "standard", "total_max_attempts": 5},
                        connect_timeout=10, read_timeout=60)
        self._client = session.client("ec2", endpoint_url=self.aws.endpoint_url, config=config)
        return self._client

    def _call(self, doing: str, request: Callable[[Any], Any]) -> Any:
        """request(client)'s answer; one-sentence BackupError saying what was being done when it fails."""
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

        try:
            return request(self.client())
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code") or "unknown")
            message = str(error.response.get("Error", {}).get("Message") or "no message").rstrip(".")
            advice = _ADVICE.get(code, "check VOLUME_IDS, REGION and the credentials' permissions")
            raise BackupError(f"could not {doing}: EC2 answered {code} ({message}); {advice}") from None
        except NoCredentialsError:
            raise BackupError(f"could not {doing}: no AWS credentials were found; set CREDENTIALS_FILE (and PROFILE) "
                              "in section " + self.name + ", the AWS environment variables, or an instance role") from None
        except EndpointConnectionError:
            raise BackupError(f"could not {doing}: the EC2 endpoint did not answer; check REGION, ENDPOINT_URL "
                              "and the network") from None
        except BotoCoreError as error:
            raise BackupError(f"could not {doing}: {type(error).__name__}; check REGION, ENDPOINT_URL and the "
                              "credentials") from None

    # -- provider calls ------------------------------------------------------------------------------
    def sources(self) -> list[str]:
        if self.aws.volume_ids != [INSTANCE]:
            return list(self.aws.volume_ids)
        instance_id = self.instance_id()
        answer = self._call(f"list the volumes of instance {instance_id}", lambda ec2: ec2.describe_volumes(
            Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]))
        volumes = sorted(str(volume["VolumeId"]) for volume in answer.get("Volumes", []))
        if not volumes:
            raise BackupError(f"section {self.name}: instance {instance_id} has no EBS volume attached; "
                              "set VOLUME_IDS to the volume ids instead of `instance`")
        return volumes

    def instance_id(self) -> str:
        """This instance's id from IMDSv2 (a token first, then the id with it)."""
        import requests

        endpoint = (self.aws.imds_endpoint or os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                    or DEFAULT_IMDS_ENDPOINT).rstrip("/")
        try:
            token = requests.put(f"{endpoint}/latest/api/token", timeout=IMDS_TIMEOUT_SECONDS,
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
            token.raise_for_status()
            answer = requests.get(f"{endpoint}/latest/meta-data/instance-id", timeout=IMDS_TIMEOUT_SECONDS,
                                  headers={"X-aws-ec2-metadata-token": token.text})
            answer.raise_for_status()
        except requests.RequestException as error:
            raise BackupError(f"section {self.name}: VOLUME_IDS is `instance` but the instance metadata service at "
                              f"{endpoint} did not give this instance's id ({type(error).__name__}); run on EC2 "
                              "with IMDS enabled, or list the volume ids in VOLUME_IDS") from None
        instance_id = answer.text.strip()
        if not instance_id.startswith("i-"):
            raise BackupError(f"section {self.name}: the instance metadata service at {endpoint} answered "
                              f"{instance_id[:40]!r}, not an instance id; list the volume ids in VOLUME_IDS")
        return instance_id

    def create(self, source: str, *, snapshot_name: str) -> str:
        tags = [{"Key": "Name", "Value": snapshot_name}, {"Key": HOST_TAG, "Value": self.host_tag},
                {"Key": CONFIG_TAG, "Value": self.config_tag}, *self.extra_tags]
        answer = self._call(f"create a snapshot of the EBS volume {source}", lambda ec2: ec2.create_snapshot(
            VolumeId=source, Description=f"ncbackup {self.name}: {snapshot_name}",
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}]))
        return str(answer["SnapshotId"])

    def list_own(self) -> list[CloudSnapshot]:
        filters = [{"Name": f"tag:{HOST_TAG}", "Values": [self.host_tag]},
                   {"Name": f"tag:{CONFIG_TAG}", "Values": [self.config_tag]}]
        found: list[CloudSnapshot] = []
        token: str | None = None
        while True:
            arguments: dict[str, Any] = {"OwnerIds": ["self"], "Filters": filters}
            if token:
                arguments["NextToken"] = token
            page = self._call("list ncbackup's EBS snapshots", partial(_describe_snapshots, arguments=arguments))
            for item in page.get("Snapshots", []):
                tags = {tag["Key"]: tag["Value"] for tag in item.get("Tags", [])}
                found.append(CloudSnapshot(id=str(item["SnapshotId"]), name=str(tags.get("Name", "")),
                                           source=str(item.get("VolumeId", "")), created=item["StartTime"],
                                           state=_STATES.get(str(item.get("State")), PENDING)))
            token = page.get("NextToken")
            if not token:
                return found

    def delete(self, snapshot_id: str) -> None:
        try:
            self._call(f"delete the EBS snapshot {snapshot_id}", lambda ec2: ec2.delete_snapshot(SnapshotId=snapshot_id))
        except BackupError as error:
            if "InvalidSnapshot.NotFound" not in str(error):
                raise

    def states(self, ids: list[str]) -> dict[str, str]:
        answer = self._call("read the state of the new EBS snapshots", lambda ec2: ec2.describe_snapshots(SnapshotIds=ids))
        return {str(item["SnapshotId"]): _STATES.get(str(item.get("State")), PENDING)
                for item in answer.get("Snapshots", [])}

    def check(self) -> list[CheckLine]:
        try:
            if self.aws.volume_ids == [INSTANCE]:
                volumes = self.sources()
            else:
                volumes = list(self.aws.volume_ids)
                self._call("read the EBS volumes", lambda ec2: ec2.describe_volumes(VolumeIds=volumes))
            self.list_own()
        except BackupError as error:
            return [CheckLine(False, str(error))]
        return [CheckLine(True, f"EBS volumes {' '.join(volumes)} exist; snapshots can be listed (KEEP "
                                f"{self.options.keep})")]


def _describe_snapshots(ec2: Any, *, arguments: dict[str, Any]) -> Any:
    return ec2.describe_snapshots(**arguments)


def _parse_tags(words: list[str], *, section_name: str) -> list[dict[str, str]]:
    tags = []
    for word in words:
        key, separator, value = word.partition("=")
        if not separator or not key or key.startswith(("aws:", "ncbackup:")) or key == "Name":
            raise ConfigError(f"section {section_name}: TAGS entry {word!r} is not key=value (keys aws:..., "
                              "ncbackup:... and Name are taken); write them as `team=ops env=prod`",
                              key=f"{section_name}.TAGS")
        tags.append({"Key": key, "Value": value})
    return tags
