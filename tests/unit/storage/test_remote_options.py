"""Option parsing of the remote storages: no server needed (the servers are in tests/integration/storage)."""

from __future__ import annotations

import importlib
import pkgutil
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest

import ncbackup.storage
from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.errors import ConfigError
from ncbackup.storage.command import CommandStorage, parse_template
from ncbackup.storage.rclone import RcloneStorage
from ncbackup.storage.registry import STORAGES
from ncbackup.storage.s3 import is_aws_endpoint, normalise_prefix
from ncbackup.storage.sftp import SftpStorage

GENERAL = GeneralSettings(hostname="web1", work_folder=Path("/tmp/ncbackup-unit-work"))


def section(destination: str, args: dict | None = None, **parameters) -> SectionSettings:
    return SectionSettings(name="STORAGE", action="execute", module="storage",
                           parameters={"DESTINATION": destination, "ARGS_DICT": args or {}, **parameters})


def test_every_storage_module_has_a_registered_class():
    registered_modules = {cls.__module__ for cls in STORAGES.values()}
    for info in pkgutil.iter_modules(ncbackup.storage.__path__):
        if info.name in {"base", "registry", "retry"} or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"ncbackup.storage.{info.name}")
        assert module.__name__ in registered_modules, f"storage/{info.name}.py has no DESTINATION in STORAGES"


@pytest.mark.parametrize(("endpoint", "is_aws"), [
    (None, True), ("https://s3.eu-west-1.amazonaws.com", True), ("https://s3.cn-north-1.amazonaws.com.cn", True),
    ("https://oss-cn-hangzhou.aliyuncs.com", False), ("http://127.0.0.1:9000", False),
    ("https://amazonaws.com.evil.example", False),
])
def test_only_amazon_hosts_count_as_aws(endpoint, is_aws):
    assert is_aws_endpoint(endpoint) is is_aws


@pytest.mark.parametrize(("prefix", "expected"), [("web1", "web1/"), ("/a/b/", "a/b/"), ("", ""), (" / ", "")])
def test_prefix_normalisation(prefix, expected):
    assert normalise_prefix(prefix) == expected


def test_s3_options_need_a_bucket_and_name_the_key():
    from ncbackup.storage.s3 import S3Storage

    with pytest.raises(ConfigError, match="BUCKET"):
        S3Storage.from_section(section("s3", {"REGION": "eu-west-1"}), GENERAL)
    with pytest.raises(ConfigError, match="ADDRESSING_STYLE"):
        S3Storage.from_section(section("s3", {"BUCKET": "b", "ADDRESSING_STYLE": "sideways"}), GENERAL)


def test_ssh_options_defaults_and_base_folder():
    storage = SftpStorage.from_section(section("scp", {"REMOTE_HOST": "backup.example", "REMOTE_DIR": "/srv/backups/"}), GENERAL)
    assert storage.base_dir == "/srv/backups/web1"
    assert storage.options.port == 22
    assert storage.options.is_trust_on_first_use is False
    assert storage.options.known_hosts_path == Path("~/.ssh/known_hosts").expanduser()
    with pytest.raises(ConfigError, match="REMOTE_HOST"):
        SftpStorage.from_section(section("scp", {"REMOTE_HOST": "-oProxyCommand=x"}), GENERAL)
    with pytest.raises(ConfigError, match="PORT"):
        SftpStorage.from_section(section("scp", {"REMOTE_HOST": "h", "PORT": "99999"}), GENERAL)


def test_sftp_refuses_keys_leaving_its_folder():
    from ncbackup.errors import StorageError

    storage = SftpStorage.from_section(section("sftp", {"REMOTE_HOST": "h", "REMOTE_DIR": "/srv"}), GENERAL)
    with pytest.raises(StorageError, match="leaves the storage folder"):
        storage._path("../../etc/passwd")


class _FolderServer:
    """An SFTP client stand-in: modes by path (None: the server does not report it), mkdir recorded."""

    def __init__(self, modes: dict[str, int | None]) -> None:
        self.modes = modes
        self.made: list[str] = []

    def stat(self, path: str) -> SimpleNamespace:
        if path not in self.modes:
            raise FileNotFoundError(path)
        return SimpleNamespace(st_mode=self.modes[path])

    def mkdir(self, path: str) -> None:
        self.made.append(path)
        self.modes[path] = stat.S_IFDIR | 0o700


def test_sftp_creates_set_folders_below_a_remote_dir_whose_mode_the_server_does_not_report():
    from ncbackup.errors import StorageError

    storage = SftpStorage.from_section(section("sftp", {"REMOTE_HOST": "h", "REMOTE_DIR": "/srv"}), GENERAL)
    server = _FolderServer({"/srv": None})
    storage._ensure_dirs(server, "/srv/web1/set1")
    assert server.made == ["/srv/web1", "/srv/web1/set1"]
    with pytest.raises(StorageError, match="REMOTE_DIR /srv on .* is not a folder"):
        storage._ensure_dirs(_FolderServer({"/srv": stat.S_IFREG | 0o600}), "/srv/web1/set1")


@pytest.mark.parametrize(("remote", "prefix", "base"), [
    ("box:", None, "box:web1"), ("box:backups/", None, "box:backups/web1"), ("box:/abs", "/", "box:/abs"),
    ("box:", "/", "box:"), ("box:", "", "box:web1"),
])
def test_rclone_base_path(remote, prefix, base):
    args = {"REMOTE": remote} if prefix is None else {"REMOTE": remote, "PREFIX": prefix}
    assert RcloneStorage.from_section(section("rclone", args), GENERAL).base == base


class TestTemplates:
    known: ClassVar[set[str]] = {"file", "OBJECTIVES", "BUCKET", "stdin"}

    def parse(self, text: str):
        return parse_template(text, setting="UPLOAD_COMMAND_TEMPLATE", known=self.known, section=section("custom_command"))

    def test_placeholders_are_filled_per_argument_never_splitting_or_joining(self):
        template = self.parse("aws s3 cp %(OBJECTIVES)s/%(file)s 's3://%(BUCKET)s/with space/%(file)s'")
        argv = template.argv({"OBJECTIVES": "/w/s", "file": "a b;$(rm -rf ~)", "BUCKET": "bk"})
        assert argv == ["aws", "s3", "cp", "/w/s/a b;$(rm -rf ~)", "s3://bk/with space/a b;$(rm -rf ~)"]

    def test_literal_percent_is_written_twice(self):
        assert self.parse("date +%%s %(stdin)s").argv({"stdin": "/dev/stdin"}) == ["date", "+%s", "/dev/stdin"]

    def test_unknown_and_malformed_placeholders_are_config_errors(self):
        with pytest.raises(ConfigError, match=r"unknown placeholder %\(BUKET\)s; use one of BUCKET, OBJECTIVES"):
            self.parse("cp %(OBJECTIVES)s/%(file)s s3://%(BUKET)s/")
        with pytest.raises(ConfigError, match="bad placeholder"):
            self.parse("cp %(file)d x")
        with pytest.raises(ConfigError, match="quotes"):
            self.parse("cp 'unclosed")

    def test_stdin_and_staging_modes_are_recognised(self):
        assert self.parse("aws s3 cp - s3://%(BUCKET)s/%(file)s").uses_stdin
        assert self.parse("dd of=x if=%(stdin)s").uses_stdin
        staged = self.parse("scp %(OBJECTIVES)s/%(file)s host:")
        assert staged.uses_staging and not staged.uses_stdin


def test_custom_command_needs_an_upload_template():
    with pytest.raises(ConfigError, match="UPLOAD_COMMAND_TEMPLATE"):
        CommandStorage.from_section(section("custom_command"), GENERAL)
