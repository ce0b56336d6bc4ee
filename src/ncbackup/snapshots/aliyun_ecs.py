"""METHOD ``aliyun-ecs``: ECS disk snapshots of DISK_IDS through the ECS RPC API (version 2014-05-26), signature v1.

No SDK: the request is a GET whose query is signed as Alibaba Cloud documents it for RPC APIs
(help.aliyun.com/document_detail/28839.html "签名机制"): the parameters but Signature sorted by name,
names and values percent-encoded (RFC 3986: only A-Z a-z 0-9 - _ . ~ stay, a space is %20), joined
as ``name=value`` with ``&``; StringToSign = ``GET&%2F&`` + percentEncode(that); Signature =
Base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign)). Actions CreateSnapshot (DiskId, SnapshotName,
Description), DescribeSnapshots (RegionId, DiskId, SnapshotName..., paged), DeleteSnapshot (SnapshotId).
Snapshot names start with ``ncbackup-<host>-<config>-``; rotation never touches another name.
Credentials: CREDENTIALS_FILE (ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET, optional
ALIBABA_CLOUD_SECURITY_TOKEN), else the environment variables of the same names (Alibaba Cloud's default chain).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import Field

from ncbackup.config.types import WordList
from ncbackup.engine.logs import add_secret
from ncbackup.errors import BackupError, ConfigError
from ncbackup.snapshots._cloud import (
    FAILED,
    PENDING,
    READY,
    CloudOptions,
    CloudSnapshot,
    CloudSnapshotMethod,
    credentials_from_file,
    name_prefix,
    read_options,
)
from ncbackup.sources.base import CheckLine

if TYPE_CHECKING:
    from ncbackup.config.settings import GeneralSettings, SectionSettings

METHOD = "aliyun-ecs"
API_VERSION = "2014-05-26"
PAGE_SIZE = 100
TIMEOUT_SECONDS = 30.0
KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"  # noqa: S105 - a variable's name, not a secret
SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"  # noqa: S105 - a variable's name, not a secret
# DescribeSnapshots Status: progressing | accomplished | failed.
_STATES = {"accomplished": READY, "progressing": PENDING, "failed": FAILED}
# What to do about an ECS error Code; the Code and Message are always shown.
_ADVICE = {
    "InvalidAccessKeyId.NotFound": f"check {KEY_ID} in CREDENTIALS_FILE",
    "InvalidAccessKeyId": f"check {KEY_ID} in CREDENTIALS_FILE",
    "SignatureDoesNotMatch": f"check {KEY_SECRET} in CREDENTIALS_FILE",
    "QuotaExceed.Snapshot": "delete old snapshots of the disk, or lower KEEP",
    "Throttling": "ECS throttled the requests; run again later",
    "InvalidDiskId.NotFound": "check DISK_IDS and REGION",
    "Forbidden.RAM": "give this RAM user ecs:CreateSnapshot, ecs:DescribeSnapshots and ecs:DeleteSnapshot",
}


def percent_encode(text: str) -> str:
    """RFC 3986 encoding as the RPC signature wants it: only A-Z a-z 0-9 - _ . ~ unescaped, space as %20."""
    return quote(text, safe="-_.~")


def rpc_signature(params: Mapping[str, str], *, secret: str, method: str = "GET") -> str:
    """Signature v1 of an RPC request's parameters (Signature itself excluded)."""
    canonical = "&".join(f"{percent_encode(name)}={percent_encode(params[name])}"
                         for name in sorted(params) if name != "Signature")
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class AliyunEcsOptions(CloudOptions):
    """PARAMETERS of a SNAPSHOT section with METHOD aliyun-ecs."""

    disk_ids: WordList = Field(alias="DISK_IDS", min_length=1, description="the ECS disk ids, space-separated")
    region: str = Field(alias="REGION", min_length=1, description="the region id, e.g. `cn-hangzhou`")
    endpoint_url: str | None = Field(None, alias="ENDPOINT_URL",
                                     json_schema_extra={"shown_default": "`https://ecs.<REGION>.aliyuncs.com`"},
                                     description="another ECS endpoint (tests, VPC endpoints)")


class AliyunEcsSnapshot(CloudSnapshotMethod):
    """ECS snapshots of some disks, named as ncbackup's, rotated to KEEP per disk."""

    method = METHOD
    what = "ECS snapshot"

    def __init__(self, *, name: str, options: AliyunEcsOptions, hostname: str, config_path: Path) -> None:
        super().__init__(name=name, options=options, prefix=name_prefix(hostname, config_path, name))
        self.ecs = options
        self.config_path = config_path
        self.endpoint = (options.endpoint_url or f"https://ecs.{options.region}.aliyuncs.com").rstrip("/") + "/"
        self._keys: dict[str, str] | None = None

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings, *, config_path: Path) -> AliyunEcsSnapshot:
        options = read_options(AliyunEcsOptions, section, config_path=config_path)
        return cls(name=section.name, options=options, hostname=general.hostname, config_path=config_path)

    def keys(self) -> dict[str, str]:
        """The access key pair (and STS token) from CREDENTIALS_FILE, else the environment; ConfigError when none."""
        if self._keys is None:
            values = credentials_from_file(self.ecs, section_name=self.name, config_path=self.config_path)
            where = "CREDENTIALS_FILE"
            if self.ecs.credentials_file is None:
                values = {key: os.environ.get(key, "") for key in (KEY_ID, KEY_SECRET, SECURITY_TOKEN)}
                add_secret(values[KEY_SECRET], where=f"the {KEY_SECRET} environment variable")
                add_secret(values[SECURITY_TOKEN], where=f"the {SECURITY_TOKEN} environment variable")
                where = "the environment"
            missing = [key for key in (KEY_ID, KEY_SECRET) if not values.get(key, "").strip()]
            if missing:
                raise ConfigError(f"section {self.name}: {missing[0]} is missing from {where}; add a line "
                                  f"{missing[0]}=... to a 0600 CREDENTIALS_FILE (or set the environment variable)",
                                  file=self.config_path, key=f"{self.name}.CREDENTIALS_FILE")
            self._keys = {key: value.strip() for key, value in values.items()}
        return self._keys

    def call(self, action: str, params: Mapping[str, str], *, doing: str) -> dict[str, Any]:
        """The JSON answer of one signed RPC call; one-sentence BackupError with ECS's Code otherwise."""
        import requests

        keys = self.keys()
        query = {"Action": action, "Version": API_VERSION, "Format": "JSON", "AccessKeyId": keys[KEY_ID],
                 "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": uuid.uuid4().hex,
                 "Timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "RegionId": self.ecs.region, **params}
        if keys.get(SECURITY_TOKEN):
            query["SecurityToken"] = keys[SECURITY_TOKEN]
        query["Signature"] = rpc_signature(query, secret=keys[KEY_SECRET])
        url = self.endpoint + "?" + "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in query.items())
        try:
            answer = requests.get(url, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as error:
            raise BackupError(f"could not {doing}: the ECS API at {self.endpoint} did not answer "
                              f"({type(error).__name__}); check REGION, ENDPOINT_URL and the network") from None
        try:
            body = answer.json()
        except ValueError:
            raise BackupError(f"could not {doing}: the ECS API at {self.endpoint} answered HTTP {answer.status_code} "
                              "without JSON; check ENDPOINT_URL") from None
        if answer.status_code >= 400 or not isinstance(body, dict) or "Code" in body:
            code = str(body.get("Code") if isinstance(body, dict) else "") or f"HTTP {answer.status_code}"
            message = str((body.get("Message") if isinstance(body, dict) else None) or "no message").rstrip(".")
            advice = _ADVICE.get(code, "check DISK_IDS, REGION and the credentials' permissions")
            raise BackupError(f"could not {doing}: ECS answered {code} ({message}); {advice}")
        return body

    def sources(self) -> list[str]:
        return list(self.ecs.disk_ids)

    def create(self, source: str, *, snapshot_name: str) -> str:
        answer = self.call("CreateSnapshot", {"DiskId": source, "SnapshotName": snapshot_name,
                                              "Description": f"ncbackup section {self.name}"},
                           doing=f"create a snapshot of the ECS disk {source}")
        snapshot_id = str(answer.get("SnapshotId") or "")
        if not snapshot_id:
            raise BackupError(f"could not create a snapshot of the ECS disk {source}: ECS answered without a "
                              "SnapshotId; check the snapshot list in the console")
        return snapshot_id

    def list_own(self) -> list[CloudSnapshot]:
        found: list[CloudSnapshot] = []
        for disk_id in self.ecs.disk_ids:
            page_number = 1
            while True:
                answer = self.call("DescribeSnapshots", {"DiskId": disk_id, "PageNumber": str(page_number),
                                                         "PageSize": str(PAGE_SIZE)},
                                   doing=f"list the snapshots of the ECS disk {disk_id}")
                page = list((answer.get("Snapshots") or {}).get("Snapshot") or [])
                for item in page:
                    snapshot_name = str(item.get("SnapshotName") or "")
                    if snapshot_name.startswith(self.prefix):
                        found.append(CloudSnapshot(
                            id=str(item.get("SnapshotId")), name=snapshot_name,
                            source=str(item.get("SourceDiskId") or disk_id), created=_created(item.get("CreationTime")),
                            state=_STATES.get(str(item.get("Status")), PENDING)))
                if not page or page_number * PAGE_SIZE >= int(answer.get("TotalCount") or 0):
                    break
                page_number += 1
        return found

    def delete(self, snapshot_id: str) -> None:
        try:
            self.call("DeleteSnapshot", {"SnapshotId": snapshot_id}, doing=f"delete the ECS snapshot {snapshot_id}")
        except BackupError as error:
            if "InvalidSnapshotId.NotFound" not in str(error):
                raise

    def check(self) -> list[CheckLine]:
        try:
            found = self.list_own()
        except BackupError as error:
            return [CheckLine(False, str(error))]
        return [CheckLine(True, f"the ECS API answers in {self.ecs.region} for disks {' '.join(self.ecs.disk_ids)}; "
                                f"{len(found)} snapshot(s) of this config exist (KEEP {self.options.keep})")]


def _created(value: Any) -> datetime:
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return datetime.fromtimestamp(0, tz=timezone.utc)
