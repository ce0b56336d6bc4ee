"""Which storages can prune (storage/base.py prune_support), decided without contacting any server."""

from __future__ import annotations

from pathlib import Path

import pytest

from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.storage.base import prune_support
from ncbackup.storage.command import CommandStorage
from ncbackup.storage.local import LocalStorage
from ncbackup.storage.rsync import RsyncStorage
from ncbackup.storage.sftp import SftpStorage

UPLOAD = "cp %(OBJECTIVES)s/%(file)s /srv/%(remote)s"
TEMPLATES = {
    "DOWNLOAD_COMMAND_TEMPLATE": "cat /srv/%(remote)s",
    "LIST_COMMAND_TEMPLATE": "ls /srv",
    "REMOVE_COMMAND_TEMPLATE": "rm -f /srv/%(remote)s",
}


def section(destination: str, args: dict | None = None, **parameters: str) -> SectionSettings:
    return SectionSettings(name="STORAGE_X", action="execute", module="storage",
                           parameters={"DESTINATION": destination, "ARGS_DICT": args or {}, **parameters})


def general(tmp_path: Path) -> GeneralSettings:
    return GeneralSettings(hostname="web1", work_folder=tmp_path)


def test_local_sftp_and_rsync_can_prune(tmp_path):
    ssh = {"REMOTE_HOST": "backup.example", "REMOTE_DIR": "/srv/backups"}
    assert prune_support(LocalStorage(tmp_path / "web1")) is None
    assert prune_support(SftpStorage.from_section(section("sftp", ssh), general(tmp_path))) is None
    assert prune_support(RsyncStorage.from_section(section("rsync", ssh), general(tmp_path))) is None


def test_custom_command_with_every_template_can_prune(tmp_path):
    storage = CommandStorage.from_section(section("custom_command", UPLOAD_COMMAND_TEMPLATE=UPLOAD, **TEMPLATES),
                                          general(tmp_path))
    assert prune_support(storage) is None


@pytest.mark.parametrize("missing", sorted(TEMPLATES))
def test_custom_command_names_the_one_missing_template(tmp_path, missing):
    given = {key: value for key, value in TEMPLATES.items() if key != missing}
    storage = CommandStorage.from_section(section("custom_command", UPLOAD_COMMAND_TEMPLATE=UPLOAD, **given),
                                          general(tmp_path))
    why = prune_support(storage)
    assert why is not None and f"{missing} is not set" in why
    assert all(other not in why for other in given)
    assert "add it to the STORAGE section" in why


def test_custom_command_with_only_upload_names_all_three(tmp_path):
    storage = CommandStorage.from_section(section("custom_command", UPLOAD_COMMAND_TEMPLATE=UPLOAD), general(tmp_path))
    assert prune_support(storage) == (
        "prune cannot work here: LIST_COMMAND_TEMPLATE, DOWNLOAD_COMMAND_TEMPLATE and REMOVE_COMMAND_TEMPLATE are not "
        "set; prune lists the sets, reads their manifests and removes old ones, so add them to the STORAGE section"
    )
