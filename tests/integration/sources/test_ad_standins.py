"""The AD section's exact command lines, with stand-in samba-tool, ntdsutil and wbadmin that record their arguments.

samba-tool also runs for real (test_ad_samba.py); ntdsutil and wbadmin exist only on Windows, so their
command lines and what ncbackup does with the folders they write are tested here with stand-ins only.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import time
from pathlib import Path, PureWindowsPath

import pytest

from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.errors import BackupError, ConfigError, SourceError
from ncbackup.sources.ad import AdOptions, AdSource, ntdsutil_argv, restore_ad, wbadmin_folder
from ncbackup.sources.base import RestoreRequest
from ncbackup.sources.registry import RESTORERS, SOURCES
from tests.integration.sources.dumping import dump_streams

PASSWORD = "S3cret pass%word;'\""

# Records argv, the environment's PASSWD_FILE (its mode and first line) and writes what the real program would.
STAND_IN = '''#!{python}
import json, os, re, stat, sys, time
record = {{"argv": sys.argv[1:]}}
password_file = os.environ.get("PASSWD_FILE")
if password_file:
    record["passwd_file"] = password_file
    record["passwd_mode"] = oct(stat.S_IMODE(os.stat(password_file).st_mode))
    record["password"] = open(password_file).read().splitlines()[0]
with open({log!r}, "a") as log:
    log.write(json.dumps(record) + "\\n")
if os.environ.get("STANDIN_SLEEP"):
    time.sleep(float(os.environ["STANDIN_SLEEP"]))
args = sys.argv[1:]
kind = {kind!r}
if kind == "samba-tool" and args[2] in ("offline", "online"):
    target = next(a.split("=", 1)[1] for a in args if a.startswith("--targetdir="))
    with open(os.path.join(target, "samba-backup-x.tar.bz2"), "wb") as out:
        out.write(b"BZh9 pretend samba backup")
elif kind == "ntdsutil":
    folder = re.match(r"create sysvol full (.*)", args[2]).group(1).strip('"')
    os.makedirs(os.path.join(folder, "Active Directory"))
    os.makedirs(os.path.join(folder, "registry"))
    open(os.path.join(folder, "Active Directory", "ntds.dit"), "wb").write(b"ntds" * 1000)
    open(os.path.join(folder, "registry", "SYSTEM"), "wb").write(b"hive")
elif kind == "wbadmin":
    volume = args[2].split(":", 1)[1]
    folder = os.path.join(volume, "WindowsImageBackup", "DC1", "SystemStateBackup")
    os.makedirs(folder)
    open(os.path.join(folder, "image.vhdx"), "wb").write(b"vhdx" * 1000)
'''


def stand_in(folder: Path, kind: str) -> tuple[Path, Path]:
    """A recording stand-in program; return its path and its log (one JSON record per call)."""
    folder.mkdir(parents=True, exist_ok=True)
    program, log = folder / kind, folder / f"{kind}.log"
    program.write_text(STAND_IN.format(python=sys.executable, log=str(log), kind=kind))
    program.chmod(0o755)
    return program, log


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def source(tmp_path: Path, **parameters: str) -> AdSource:
    section = SectionSettings(name="AD", action="execute", module="ad_backup", parameters=parameters)
    (tmp_path / "work").mkdir(exist_ok=True)
    return AdSource.from_section(section, GeneralSettings(hostname="dc1", work_folder=tmp_path / "work"))


def credentials_file(tmp_path: Path, *, mode: int = 0o600, domain: str = "NCB") -> Path:
    path = tmp_path / "ad.credentials"
    path.write_text(f"# smbclient -A format\nusername = backup-op\npassword = {PASSWORD}\ndomain = {domain}\n")
    path.chmod(mode)
    return path


def test_registry_knows_the_ad_section():
    assert SOURCES["ad"].factory is AdSource and RESTORERS["ad"] is restore_ad
    assert SOURCES["ad"].execute_names == ("ad_backup",) and "CREDENTIALS_FILE" in SOURCES["ad"].secret_file_keys


def test_offline_command_line_and_the_temporary_file_removed(tmp_path):
    program, log = stand_in(tmp_path / "bin", "samba-tool")
    outcome = dump_streams(source(tmp_path, SAMBA_TOOL_BIN=str(program), SMB_CONF="/srv/dc/etc/smb.conf"), tmp_path / "set")["ad"]
    assert outcome.error is None and outcome.data == b"BZh9 pretend samba backup"
    (call,) = calls(log)
    target = call["argv"][3].split("=", 1)[1]
    assert call["argv"] == ["domain", "backup", "offline", f"--targetdir={target}", "--configfile=/srv/dc/etc/smb.conf"]
    assert Path(target).parent.parent == tmp_path / "work" and "passwd_file" not in call
    assert outcome.stream.kind == "ad" and outcome.stream.suffix == ".tar.bz2"
    assert outcome.report.metadata == {"method": "samba-offline", "format": "tar.bz2"}
    assert list((tmp_path / "work").iterdir()) == [], "the backup file and its folder are removed"


def test_offline_without_smb_conf_leaves_samba_tool_its_default(tmp_path):
    program, log = stand_in(tmp_path / "bin", "samba-tool")
    dump_streams(source(tmp_path, SAMBA_TOOL_BIN=str(program), SMB_CONF=""), tmp_path / "set")
    assert not any(arg.startswith("--configfile") for arg in calls(log)[0]["argv"])


def test_online_password_reaches_samba_tool_only_in_a_0600_file_that_is_removed(tmp_path):
    program, log = stand_in(tmp_path / "bin", "samba-tool")
    ad = source(tmp_path, MODE="Online", SERVER="dc1.ncb.test", SAMBA_TOOL_BIN=str(program),
                CREDENTIALS_FILE=str(credentials_file(tmp_path)))
    outcome = dump_streams(ad, tmp_path / "set")["ad"]
    assert outcome.error is None
    (call,) = calls(log)
    target = call["argv"][4].split("=", 1)[1]
    assert call["argv"] == ["domain", "backup", "online", "--server=dc1.ncb.test", f"--targetdir={target}",
                            "--username=NCB\\backup-op"]
    assert PASSWORD not in json.dumps(call["argv"])
    assert call["password"] == PASSWORD and call["passwd_mode"] == "0o600"
    assert not Path(call["passwd_file"]).exists()
    assert outcome.report.metadata["method"] == "samba-online"
    assert list((tmp_path / "work").iterdir()) == []


def test_only_the_password_is_masked_in_logs_not_the_user_or_domain(tmp_path):
    from ncbackup.engine.logs import mask_secrets
    from ncbackup.sources.ad import read_login

    ad = source(tmp_path, MODE="online", SERVER="dc1", CREDENTIALS_FILE=str(credentials_file(tmp_path, domain="AD")))
    assert read_login(ad.options).user == "AD\\backup-op"
    line = f"section AD: backup-op failed with {PASSWORD}"
    assert mask_secrets(line) == "section AD: backup-op failed with ***"


def test_online_credentials_readable_by_others_are_refused_before_samba_tool_runs(tmp_path):
    program, log = stand_in(tmp_path / "bin", "samba-tool")
    ad = source(tmp_path, MODE="online", SERVER="dc1", SAMBA_TOOL_BIN=str(program),
                CREDENTIALS_FILE=str(credentials_file(tmp_path, mode=0o640)))
    error = dump_streams(ad, tmp_path / "set")["ad"].error
    assert isinstance(error, ConfigError) and "chmod 600" in str(error) and PASSWORD not in str(error)
    assert calls(log) == []
    (failed,) = [line for line in ad.check() if not line.ok]
    assert "can be read by other users" in failed.text


def test_online_user_name_with_percent_is_refused(tmp_path):
    path = tmp_path / "c"
    path.write_text("username = a%b\npassword = x\n")
    path.chmod(0o600)
    ad = source(tmp_path, MODE="online", SERVER="dc1", SAMBA_TOOL_BIN="/bin/false", CREDENTIALS_FILE=str(path))
    assert "holds %" in str(dump_streams(ad, tmp_path / "set")["ad"].error)


@pytest.mark.parametrize(("parameters", "message"), [
    ({"MODE": "online", "CREDENTIALS_FILE": "/c"}, "SERVER"),
    ({"MODE": "online", "SERVER": "dc1"}, "CREDENTIALS_FILE"),
    ({"MODE": "sideways"}, "MODE"),
    ({"WINDOWS_METHOD": "systemstate"}, "WBADMIN_TARGET"),
    ({"WINDOWS_METHOD": "tape"}, "WINDOWS_METHOD"),
])
def test_incomplete_sections_are_config_errors_naming_the_key(tmp_path, parameters, message):
    with pytest.raises(ConfigError, match=message):
        source(tmp_path, **parameters)


def test_a_failing_samba_tool_fails_the_stream_with_its_reason(tmp_path):
    failing = tmp_path / "samba-tool"
    failing.write_text(f"#!{sys.executable}\nimport sys\n"
                       "print('ERROR: Unable to open sam.ldb: permission denied', file=sys.stderr)\nsys.exit(255)\n")
    failing.chmod(0o755)
    error = dump_streams(source(tmp_path, SAMBA_TOOL_BIN=str(failing)), tmp_path / "set")["ad"].error
    assert isinstance(error, SourceError)
    assert "samba-tool domain backup offline failed" in str(error) and "permission denied" in str(error)
    assert list((tmp_path / "work").iterdir()) == []


def test_a_hanging_samba_tool_is_stopped_at_the_timeout(tmp_path, monkeypatch):
    program, _ = stand_in(tmp_path / "bin", "samba-tool")
    monkeypatch.setenv("STANDIN_SLEEP", "600")
    started = time.monotonic()
    error = dump_streams(source(tmp_path, SAMBA_TOOL_BIN=str(program), TIMEOUT_SECONDS="2"), tmp_path / "set")["ad"].error
    assert isinstance(error, SourceError) and time.monotonic() - started < 10
    assert list((tmp_path / "work").iterdir()) == []


def test_ifm_runs_ntdsutil_and_streams_its_folder_as_a_tar(tmp_path):
    program, log = stand_in(tmp_path / "bin", "ntdsutil")
    outcome = dump_streams(source(tmp_path, WINDOWS_METHOD="IFM", NTDSUTIL_BIN=str(program)), tmp_path / "set")["ad"]
    assert outcome.error is None and outcome.stream.suffix == ".tar"
    (call,) = calls(log)
    folder = call["argv"][2].removeprefix("create sysvol full ")
    assert call["argv"] == ["activate instance ntds", "ifm", f"create sysvol full {folder}", "quit", "quit"]
    assert Path(folder).parent.parent == tmp_path / "work"
    with tarfile.open(fileobj=io.BytesIO(outcome.data)) as archive:
        names = archive.getnames()
        assert archive.extractfile("ifm/Active Directory/ntds.dit").read() == b"ntds" * 1000
    assert "ifm/registry/SYSTEM" in names
    assert outcome.report.metadata == {"method": "ifm", "format": "tar"}
    assert list((tmp_path / "work").iterdir()) == []


def test_ntdsutil_folder_with_spaces_is_quoted_inside_its_command():
    options = AdOptions.model_validate({"WINDOWS_METHOD": "ifm"})
    argv = ntdsutil_argv(options, PureWindowsPath(r"C:\backup work\.ncbackup-ad-ifm-1\ifm"))
    assert argv == ["ntdsutil", "activate instance ntds", "ifm", r'create sysvol full "C:\backup work\.ncbackup-ad-ifm-1\ifm"',
                    "quit", "quit"]
    assert str(wbadmin_folder("E:")) == r"E:\WindowsImageBackup"


def test_systemstate_runs_wbadmin_streams_and_removes_what_it_wrote(tmp_path):
    program, log = stand_in(tmp_path / "bin", "wbadmin")
    volume = tmp_path / "volume"
    volume.mkdir()
    ad = source(tmp_path, WINDOWS_METHOD="systemstate", WBADMIN_TARGET=str(volume), WBADMIN_BIN=str(program))
    outcome = dump_streams(ad, tmp_path / "set")["ad"]
    assert outcome.error is None
    assert calls(log)[0]["argv"] == ["start", "systemstatebackup", f"-backupTarget:{volume}", "-quiet"]
    with tarfile.open(fileobj=io.BytesIO(outcome.data)) as archive:
        assert "WindowsImageBackup/DC1/SystemStateBackup/image.vhdx" in archive.getnames()
    assert list(volume.iterdir()) == []


def test_systemstate_never_touches_a_windows_image_backup_it_did_not_make(tmp_path):
    program, log = stand_in(tmp_path / "bin", "wbadmin")
    volume = tmp_path / "volume"
    (volume / "WindowsImageBackup").mkdir(parents=True)
    (volume / "WindowsImageBackup" / "theirs.txt").write_text("someone else's backup")
    ad = source(tmp_path, WINDOWS_METHOD="systemstate", WBADMIN_TARGET=str(volume), WBADMIN_BIN=str(program))
    error = dump_streams(ad, tmp_path / "set")["ad"].error
    assert isinstance(error, SourceError) and "already exists" in str(error)
    assert calls(log) == [] and (volume / "WindowsImageBackup" / "theirs.txt").exists()
    assert any(not line.ok and "already exists" in line.text for line in ad.check())


def test_check_lines_for_each_method(tmp_path):
    smb_conf = tmp_path / "smb.conf"
    smb_conf.write_text("[global]\n")
    program, _ = stand_in(tmp_path / "bin", "samba-tool")
    lines = source(tmp_path, SMB_CONF=str(smb_conf), SAMBA_TOOL_BIN=str(program)).check()
    assert all(line.ok for line in lines) and f"smb.conf {smb_conf} is readable" in lines[1].text
    lines = source(tmp_path, MODE="online", SERVER="dc1", SMB_CONF=str(smb_conf), SAMBA_TOOL_BIN=str(program),
                   CREDENTIALS_FILE=str(credentials_file(tmp_path))).check()
    assert all(line.ok for line in lines), lines
    assert any("mode 0600, user NCB\\backup-op" in line.text for line in lines)
    assert PASSWORD not in repr(lines)
    missing = source(tmp_path, SAMBA_TOOL_BIN=str(tmp_path / "nope")).check()
    assert not missing[0].ok and "was not found" in missing[0].text
    lines = source(tmp_path, WINDOWS_METHOD="ifm", NTDSUTIL_BIN=str(tmp_path / "nope")).check()
    assert not lines[0].ok and "ntdsutil" in lines[0].text


def test_to_dc_refuses_a_windows_backup_and_a_missing_server_name(tmp_path):
    request = RestoreRequest("ad", "ad", {"method": "ifm"}, dc_folder=tmp_path / "dc", new_server_name="dc2")
    with pytest.raises(BackupError, match="not samba-tool"):
        restore_ad(io.BytesIO(b""), request)
    with pytest.raises(BackupError, match="--new-server-name"):
        restore_ad(io.BytesIO(b""), RestoreRequest("ad", "ad", {"method": "samba-offline"}, dc_folder=tmp_path / "dc"))
    assert not (tmp_path / "dc").exists()


def test_to_dc_runs_samba_tool_restore_with_the_backup_file_and_removes_it(tmp_path):
    program, log = stand_in(tmp_path / "bin", "samba-tool")
    request = RestoreRequest("ad", "ad", {"method": "samba-online"}, dc_folder=tmp_path / "dcs" / "dc2",
                             new_server_name="dc2", options={"SAMBA_TOOL_BIN": str(program)})
    assert restore_ad(io.BytesIO(b"backup bytes"), request) == []
    (call,) = calls(log)
    backup_file = call["argv"][3].split("=", 1)[1]
    assert call["argv"] == ["domain", "backup", "restore", f"--backup-file={backup_file}", "--newservername=dc2",
                            f"--targetdir={tmp_path / 'dcs' / 'dc2'}"]
    assert os.path.dirname(os.path.dirname(backup_file)) == str(tmp_path / "dcs") and not Path(backup_file).exists()


def test_cli_run_and_check_refuse_a_credentials_file_others_can_read_in_one_sentence(tmp_path, ncbackup_cmd):
    from tests.integration.sources.test_ad_samba import cli, write_config

    program, log = stand_in(tmp_path / "bin", "samba-tool")
    credentials = credentials_file(tmp_path, mode=0o644)
    config = write_config(tmp_path, {"MODE": "online", "SERVER": "dc1", "SAMBA_TOOL_BIN": str(program),
                                     "CREDENTIALS_FILE": str(credentials)})
    code, output = cli(ncbackup_cmd, "run", "-c", str(config))
    assert code == 2 and f"chmod 600 {credentials}" in output, output
    assert "Traceback" not in output and PASSWORD not in output and calls(log) == []
    code, output = cli(ncbackup_cmd, "check", "-c", str(config))
    assert code != 0 and "can be read by other users" in output and PASSWORD not in output, output
