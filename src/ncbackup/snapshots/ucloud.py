"""METHODs ``ucloud-image`` (a custom image of each UHost) and ``ucloud-udisk`` (a UDisk snapshot), UCloud's signed API.

The original's ``host_image_run.py`` called CreateCustomImage per HOST_ID with the image name
``img_<date>_<host>``; ``hdd_snapshot_run.py`` called CreateUDiskSnapshot with UDiskId, Name, Comment.
Here the name starts with ``ncbackup-<host>-<config>-<timezone.utc time>-`` (so rotation recognises ncbackup's
own and nothing else), and the original's ``img_<date>_<host>`` goes in the image description.
Actions and fields as documented in UCloud's API reference (github.com/UCloudDoc-Team/api,
``uhost-api/create_custom_image.md``, ``describe_image.md``, ``terminate_custom_image.md``,
``udisk-api/create_udisk_snapshot.md``, ``describe_udisk_snapshot.md``, ``delete_udisk_snapshot.md``).
A UDisk snapshot is always deleted by SnapshotId: DeleteUDiskSnapshot with a UDiskId deletes every
snapshot of that disk, ncbackup's or not.
Credentials: CREDENTIALS_FILE (PUBLIC_KEY, PRIVATE_KEY, optional PROJECT_ID), else the environment
variables UCLOUD_PUBLIC_KEY, UCLOUD_PRIVATE_KEY, UCLOUD_PROJECT_ID (as the UCloud CLI and Terraform read them).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

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
    safe_word,
)
from ncbackup.sources.base import CheckLine
from ncbackup.ucloud import DEFAULT_BASE_URL, UCloudClient

if TYPE_CHECKING:
    from ncbackup.config.settings import GeneralSettings, SectionSettings

IMAGE_METHOD = "ucloud-image"
UDISK_METHOD = "ucloud-udisk"
PAGE_SIZE = 100
# DescribeImage State: Available, Making, Unavailable; DescribeUDiskSnapshot Status: Normal, Creating, Failed.
_IMAGE_STATES = {"Available": READY, "Making": PENDING, "Unavailable": FAILED}
_UDISK_STATES = {"Normal": READY, "Creating": PENDING, "Failed": FAILED}


class UCloudOptions(CloudOptions):
    """PARAMETERS both UCloud methods read."""

    region: str = Field(alias="REGION", min_length=1, description="the UCloud region, e.g. `cn-bj2`")
    zone: str | None = Field(None, alias="ZONE", description="the availability zone, e.g. `cn-bj2-04`")
    base_url: str = Field(DEFAULT_BASE_URL, alias="BASE_URL", description="the UCloud API endpoint")

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"BASE_URL {value} is not an http(s) URL")
        return value


class UCloudImageOptions(UCloudOptions):
    host_ids: WordList = Field(alias="HOST_ID", min_length=1, description="the UHost ids to image, space-separated")


class UCloudUDiskOptions(UCloudOptions):
    udisk_ids: WordList = Field(alias="UDISK_ID", min_length=1, description="the UDisk ids, space-separated")
    snapshot_name: str | None = Field(None, alias="NAME",
                                      description="ends each snapshot's name (after `ncbackup-<host>-<config>-<time>-`)")
    comment: str | None = Field(None, alias="COMMENT", description="the snapshot's description")


def ucloud_client(options: UCloudOptions, *, section_name: str, config_path: Path) -> UCloudClient:
    """A client with the keys of CREDENTIALS_FILE, else of UCLOUD_PUBLIC_KEY/UCLOUD_PRIVATE_KEY; ConfigError when none."""
    values = credentials_from_file(options, section_name=section_name, config_path=config_path)
    where = "CREDENTIALS_FILE"
    if options.credentials_file is None:
        values = {key: os.environ.get(f"UCLOUD_{key}", "") for key in ("PUBLIC_KEY", "PRIVATE_KEY", "PROJECT_ID")}
        add_secret(values["PRIVATE_KEY"], where="the UCLOUD_PRIVATE_KEY environment variable")
        where = "the UCLOUD_* environment variables"
    missing = [key for key in ("PUBLIC_KEY", "PRIVATE_KEY") if not values.get(key, "").strip()]
    if missing:
        raise ConfigError(f"section {section_name}: {missing[0]} is missing from {where}; add a line {missing[0]}=... "
                          "to a 0600 CREDENTIALS_FILE (or set UCLOUD_PUBLIC_KEY and UCLOUD_PRIVATE_KEY)",
                          file=config_path, key=f"{section_name}.CREDENTIALS_FILE")
    return UCloudClient(public_key=values["PUBLIC_KEY"].strip(), private_key=values["PRIVATE_KEY"].strip(),
                        project_id=values.get("PROJECT_ID", "").strip() or None, base_url=options.base_url)


def _created(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    except (TypeError, ValueError):
        return datetime.fromtimestamp(0, tz=timezone.utc)


class _UCloudMethod(CloudSnapshotMethod):
    def __init__(self, *, name: str, options: UCloudOptions, hostname: str, config_path: Path) -> None:
        super().__init__(name=name, options=options, prefix=name_prefix(hostname, config_path, name))
        self.ucloud_options = options
        self.config_path = config_path
        self._client: UCloudClient | None = None

    def client(self) -> UCloudClient:
        if self._client is None:
            self._client = ucloud_client(self.ucloud_options, section_name=self.name, config_path=self.config_path)
        return self._client

    def where(self) -> dict[str, str]:
        """Region (and Zone when set): the fields every call carries."""
        fields = {"Region": self.ucloud_options.region}
        if self.ucloud_options.zone:
            fields["Zone"] = self.ucloud_options.zone
        return fields

    def check(self) -> list[CheckLine]:
        try:
            found = self.list_own()
        except BackupError as error:
            return [CheckLine(False, str(error))]
        return [CheckLine(True, f"the UCloud API answers in {self.ucloud_options.region}; {len(found)} {self.what}(s) "
                                f"of this config exist (KEEP {self.options.keep})")]


class UCloudImageSnapshot(_UCloudMethod):
    """A custom image of each UHost of HOST_ID (CreateCustomImage), rotated to KEEP per host."""

    method = IMAGE_METHOD
    what = "UCloud image"

    def __init__(self, *, name: str, options: UCloudImageOptions, hostname: str, config_path: Path) -> None:
        super().__init__(name=name, options=options, hostname=hostname, config_path=config_path)
        self.host_ids = list(options.host_ids)

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings, *,
                     config_path: Path) -> UCloudImageSnapshot:
        options = read_options(UCloudImageOptions, section, config_path=config_path)
        return cls(name=section.name, options=options, hostname=general.hostname, config_path=config_path)

    def sources(self) -> list[str]:
        return self.host_ids

    def create(self, source: str, *, snapshot_name: str) -> str:
        original_name = f"img_{datetime.now(timezone.utc):%Y%m%d}_{source}"
        answer = self.client().call("CreateCustomImage", {
            **self.where(), "UHostId": source, "ImageName": snapshot_name,
            "ImageDescription": f"{original_name} (ncbackup section {self.name})",
        }, doing=f"create an image of the UHost {source}")
        image_id = str(answer.get("ImageId") or "")
        if not image_id:
            raise BackupError(f"could not create an image of the UHost {source}: UCloud answered without an ImageId; "
                              "check the image list in the UCloud console")
        return image_id

    def list_own(self) -> list[CloudSnapshot]:
        found: list[CloudSnapshot] = []
        offset = 0
        while True:
            answer = self.client().call("DescribeImage", {
                **self.where(), "ImageType": "Custom", "Offset": str(offset), "Limit": str(PAGE_SIZE),
            }, doing="list the custom images")
            page = list(answer.get("ImageSet") or [])
            for item in page:
                image_name = str(item.get("ImageName") or "")
                if image_name.startswith(self.prefix):
                    found.append(CloudSnapshot(
                        id=str(item.get("ImageId")), name=image_name, source=_host_of(image_name, self.prefix),
                        created=_created(item.get("CreateTime")),
                        state=_IMAGE_STATES.get(str(item.get("State")), PENDING)))
            offset += len(page)
            if not page or offset >= int(answer.get("TotalCount") or 0):
                return found

    def delete(self, snapshot_id: str) -> None:
        self.client().call("TerminateCustomImage", {**self.where(), "ImageId": snapshot_id},
                           doing=f"delete the image {snapshot_id}")


def _host_of(image_name: str, prefix: str) -> str:
    """The UHost id at the end of ``<prefix><timezone.utc time>-<host id>``."""
    _, _, host = image_name[len(prefix):].partition("-")
    return host


class UCloudUDiskSnapshot(_UCloudMethod):
    """A snapshot of each UDisk of UDISK_ID (CreateUDiskSnapshot), rotated to KEEP per disk."""

    method = UDISK_METHOD
    what = "UDisk snapshot"

    def __init__(self, *, name: str, options: UCloudUDiskOptions, hostname: str, config_path: Path) -> None:
        super().__init__(name=name, options=options, hostname=hostname, config_path=config_path)
        self.udisk = options

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings, *,
                     config_path: Path) -> UCloudUDiskSnapshot:
        options = read_options(UCloudUDiskOptions, section, config_path=config_path)
        if not options.zone:
            position = section.key_positions.get("PARAMETERS") or section.position
            raise ConfigError(f"section {section.name}: ucloud-udisk needs ZONE (the UDisk's availability zone, "
                              "e.g. cn-bj2-04); add it to PARAMETERS", file=config_path,
                              line=position.line if position else None, key=f"{section.name}.ZONE")
        return cls(name=section.name, options=options, hostname=general.hostname, config_path=config_path)

    def sources(self) -> list[str]:
        return list(self.udisk.udisk_ids)

    def snapshot_name(self, source: str) -> str:
        name = super().snapshot_name(source)
        if self.udisk.snapshot_name:
            name = f"{name}-{safe_word(self.udisk.snapshot_name)}"
        return name

    def create(self, source: str, *, snapshot_name: str) -> str:
        fields = {**self.where(), "UDiskId": source, "Name": snapshot_name}
        if self.udisk.comment:
            fields["Comment"] = self.udisk.comment
        answer = self.client().call("CreateUDiskSnapshot", fields, doing=f"create a snapshot of the UDisk {source}")
        ids = answer.get("SnapshotId") or []
        if not isinstance(ids, list) or not ids:
            raise BackupError(f"could not create a snapshot of the UDisk {source}: UCloud answered without a "
                              "SnapshotId; check the snapshot list in the UCloud console")
        return str(ids[0])

    def list_own(self) -> list[CloudSnapshot]:
        found: list[CloudSnapshot] = []
        for udisk_id in self.udisk.udisk_ids:
            offset = 0
            while True:
                answer = self.client().call("DescribeUDiskSnapshot", {
                    **self.where(), "UDiskId": udisk_id, "Offset": str(offset), "Limit": str(PAGE_SIZE),
                }, doing=f"list the snapshots of the UDisk {udisk_id}")
                page = list(answer.get("DataSet") or [])
                for item in page:
                    snapshot_name = str(item.get("Name") or "")
                    if snapshot_name.startswith(self.prefix):
                        found.append(CloudSnapshot(
                            id=str(item.get("SnapshotId")), name=snapshot_name, source=str(item.get("UDiskId")),
                            created=_created(item.get("CreateTime")),
                            state=_UDISK_STATES.get(str(item.get("Status")), PENDING)))
                offset += len(page)
                if not page or offset >= int(answer.get("TotalCount") or 0):
                    break
        return found

    def delete(self, snapshot_id: str) -> None:
        # Always by SnapshotId: with UDiskId, DeleteUDiskSnapshot removes every snapshot of the disk.
        self.client().call("DeleteUDiskSnapshot", {**self.where(), "SnapshotId": snapshot_id},
                           doing=f"delete the UDisk snapshot {snapshot_id}")
