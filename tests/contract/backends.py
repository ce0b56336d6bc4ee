"""Every registered storage backend, as a factory for the shared contract suite.

A factory is a context manager taking ``tmp_path`` and yielding a ready, empty Storage (starting
whatever server it needs, skipping via ``need()`` when a tool is missing). Adding a backend is one
entry here; ``test_storage_contract.py`` then runs every contract test against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from ncbackup.storage.base import Storage
from ncbackup.storage.local import LocalStorage


@contextmanager
def local_backend(tmp_path: Path) -> Iterator[Storage]:
    yield LocalStorage(tmp_path / "local-backup" / "web1")


# -- remote backends (storage engineer): real servers, started once per test process ----------------


def _section(destination: str, args: dict, **parameters):
    from ncbackup.config.settings import SectionSettings

    return SectionSettings(name="STORAGE", action="execute", module="storage",
                           parameters={"DESTINATION": destination, "ARGS_DICT": args, **parameters})


def _general(tmp_path: Path):
    from ncbackup.config.settings import GeneralSettings

    (tmp_path / "work").mkdir(exist_ok=True)
    return GeneralSettings(hostname="web1", work_folder=tmp_path / "work")


@contextmanager
def s3_backend(tmp_path: Path) -> Iterator[Storage]:
    import uuid

    from ncbackup.storage.s3 import S3Storage
    from tests.integration.servers.s3 import shared_moto, write_credentials_file

    server = shared_moto()
    bucket = f"contract-{uuid.uuid4().hex[:12]}"
    server.client().create_bucket(Bucket=bucket)
    credentials = tmp_path / "aws-credentials"
    write_credentials_file(credentials)
    yield S3Storage.from_section(_section("s3", {
        "BUCKET": bucket, "ENDPOINT_URL": server.endpoint_url, "REGION": "us-east-1", "CHUNK_SIZE_MB": "5",
        "CREDENTIALS_FILE": str(credentials), "PROFILE": "ncbackup-test",
    }), _general(tmp_path))


def _ssh_args(tmp_path: Path) -> dict:
    from tests.integration.servers.sshd import shared_sshd

    server = shared_sshd()
    remote = tmp_path / "remote"
    remote.mkdir()
    return {"REMOTE_HOST": server.host, "PORT": str(server.port), "REMOTE_USER": server.user,
            "REMOTE_DIR": str(remote), "IDENTITY_FILE": str(server.client_key),
            "KNOWN_HOSTS": str(server.known_hosts)}


@contextmanager
def sftp_backend(tmp_path: Path) -> Iterator[Storage]:
    from ncbackup.storage.sftp import SftpStorage

    storage = SftpStorage.from_section(_section("sftp", _ssh_args(tmp_path)), _general(tmp_path))
    try:
        yield storage
    finally:
        storage.close()


@contextmanager
def rsync_backend(tmp_path: Path) -> Iterator[Storage]:
    from ncbackup.storage.rsync import RsyncStorage
    from tests.support import need_binary

    need_binary("rsync")
    yield RsyncStorage.from_section(_section("rsync", _ssh_args(tmp_path)), _general(tmp_path))


@contextmanager
def custom_command_backend(tmp_path: Path) -> Iterator[Storage]:
    # Staged mode (%(OBJECTIVES)s): the command only runs on a complete part, so a failing stream
    # leaves nothing. In stdin mode atomicity is the command's own business (see docs/storage.md).
    from ncbackup.storage.command import CommandStorage

    destination = tmp_path / "dest"
    destination.mkdir()
    yield CommandStorage.from_section(_section(
        "custom_command", {"DEST": str(destination)},
        UPLOAD_COMMAND_TEMPLATE="install -D -m 600 %(OBJECTIVES)s/%(file)s %(DEST)s/%(remote)s",
        DOWNLOAD_COMMAND_TEMPLATE="cat %(DEST)s/%(remote)s",
        LIST_COMMAND_TEMPLATE="find %(DEST)s -type f -printf '%%s\\t%%P\\n'",
        REMOVE_COMMAND_TEMPLATE="rm -f %(DEST)s/%(remote)s",
    ), _general(tmp_path))


@contextmanager
def rclone_backend(tmp_path: Path) -> Iterator[Storage]:
    from ncbackup.storage.rclone import RcloneStorage
    from tests.support import need_binary

    need_binary("rclone")
    config = tmp_path / "rclone.conf"
    config.write_text("[disk]\ntype = local\n")
    yield RcloneStorage.from_section(
        _section("rclone", {"REMOTE": f"disk:{tmp_path / 'remote'}", "RCLONE_CONFIG": str(config)}),
        _general(tmp_path),
    )


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Storage]]] = {
    "local": local_backend,
    "s3": s3_backend,
    "sftp": sftp_backend,
    "rsync": rsync_backend,
    "custom_command": custom_command_backend,
    "rclone": rclone_backend,
}
