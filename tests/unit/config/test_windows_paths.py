"""Windows paths in every path key, with Windows' rules (ntpath), whether the config is read on Linux or on Windows.

The test machines are Linux: "on Windows" here means platform.IS_WINDOWS switched on, so the rules
are those ncbackup applies there; no real Windows file system is involved.
"""

from __future__ import annotations

import json
import ntpath
import os
from pathlib import Path, PureWindowsPath

import pytest

from ncbackup import platform
from ncbackup.config import loads_config
from ncbackup.errors import ConfigError
from tests.support import NOT_POSIX, need

FILE = Path("conf.json")


@pytest.mark.parametrize("text", ["c:\\backup", "C:/backup", "d:\\", "c:", "\\\\fileserver\\share\\backup",
                                  "c:\\Program Files\\App", "c:\\backup\\"])
def test_drive_and_share_paths_are_windows_paths_and_valid(text):
    assert platform.looks_like_windows_path(text)
    assert platform.windows_path_problem(text) is None
    # What ntpath itself says about the same text: absolute, with a drive or a share.
    assert ntpath.splitdrive(text)[0] and PureWindowsPath(text).drive


@pytest.mark.parametrize("text", ["/var/backup", "backup", "relative/folder", "s3:bucket", "//host/share"])
def test_posix_and_remote_looking_values_are_not_windows_paths(text):
    assert not platform.looks_like_windows_path(text)


@pytest.mark.parametrize(("text", "says"), [
    ("c:\\back|up", "'|'"),
    ("c:\\a\\what?", "'?'"),
    ("c:\\data\\x:y", "':'"),
    ("c:\\con", "device name"),
    ("c:\\logs\\NUL.txt", "device name"),
    ("c:\\logs\\com1", "device name"),
    ("c:\\backup.", "ends with a dot"),
    ("c:\\backup ", None),  # blanks around a value are insignificant: stripped first
    ("c:\\backup \\x", "ends with a space"),
    ("c:backup", "c:\\backup"),
    ("\\\\server", "a server and a share"),
])
def test_paths_windows_cannot_use_are_named_with_the_reason(text, says):
    problem = platform.windows_path_problem(text)
    if says is None:
        assert problem is None
    else:
        assert problem is not None and says in problem


def _config(general: dict, **sections: dict) -> str:
    return json.dumps({"GENERAL": general, **sections}, indent=1)


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        loads_config(text, path=FILE)
    return caught.value


def test_a_bad_windows_path_in_general_is_one_error_naming_key_and_line():
    error = _error(_config({"HOSTNAME": "w1", "WORK_FOLDER": "c:\\back|up"}))
    assert error.key == "GENERAL.WORK_FOLDER" and error.line == 4
    assert "not a usable Windows path" in str(error) and "'|'" in str(error)


def test_a_bad_windows_path_in_a_fileset_list_is_refused_naming_the_key(tmp_path):
    text = _config({"HOSTNAME": "w1", "WORK_FOLDER": "c:\\backup"},
                   FILESET={"ACTION": "execute", "NAME": "filesbackup",
                            "PARAMETERS": {"FILESET_INCLUDE": ["c:\\inetpub", "c:\\aux\\x"]}})
    from ncbackup.engine.plan import build_plan

    with pytest.raises(ConfigError, match="device name") as caught:
        build_plan(loads_config(text, path=FILE))
    assert "FILESET_INCLUDE" in str(caught.value.key)


def test_windows_paths_load_on_linux_as_written(monkeypatch, tmp_path):
    need(os.name == "posix", NOT_POSIX)
    monkeypatch.chdir(tmp_path)
    general = loads_config(_config({"WORK_FOLDER": "c:\\backup", "LOCAL_BACKUP": "\\\\nas\\backups\\"}),
                           path=FILE).general
    assert str(general.work_folder) == "c:\\backup" and str(general.local_backup) == "\\\\nas\\backups"


def test_on_windows_every_path_follows_windows_rules_even_without_a_drive(monkeypatch):
    monkeypatch.setattr(platform, "IS_WINDOWS", True)
    error = _error(_config({"HOSTNAME": "w1", "WORK_FOLDER": "c:backup"}))
    assert error.key == "GENERAL.WORK_FOLDER" and "c:\\backup" in str(error)
    error = _error(_config({"HOSTNAME": "w1", "LOCAL_BACKUP": "backups\\prn"}))
    assert error.key == "GENERAL.LOCAL_BACKUP" and "device name" in str(error)


def test_off_windows_a_drive_relative_looking_value_is_left_alone(monkeypatch, tmp_path):
    need(os.name == "posix", NOT_POSIX)
    monkeypatch.chdir(tmp_path)
    assert str(loads_config(_config({"LOCAL_BACKUP": "s:bucket"}), path=FILE).general.local_backup) == "s:bucket"


@pytest.mark.parametrize(("path", "folder", "below"), [
    ("c:\\inetpub\\logs", "C:\\", "inetpub\\logs"),      # a FILESET_EXCLUDE under a shadowed volume
    ("C:/inetpub/logs", "c:\\", "inetpub\\logs"),
    ("c:\\INETPUB", "c:\\inetpub", ""),
    ("d:\\data", "C:\\", None),
    ("c:\\inetpubx", "c:\\inetpub", None),
    ("/srv/data/cache", "/srv/data", "cache"),
    ("/srv/data/*/cache", "/srv/data", "*/cache"),
    ("/srv/database", "/srv/data", None),
    ("/SRV/data", "/srv/data", None),                  # POSIX paths keep their case
])
def test_path_below_a_folder_follows_the_folders_system(path, folder, below):
    assert platform.path_below(path, folder) == below
