"""The AD section against a real Samba AD DC provisioned here: `ncbackup run`, restore, and a new DC rebuilt from it.

The DC is provisioned once per module in a temporary folder (seconds); the online test runs its samba daemon
in a network namespace of its own, and ncbackup in the same namespace.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ncbackup import platform
from ncbackup.process import run
from tests.integration.servers.samba_dc import (
    ADMIN_PASSWORD,
    DOMAIN,
    GROUP,
    USERS,
    SambaDC,
    members_of,
    provision,
    start_in_namespace,
    users_of,
)
from tests.support import need, need_binary

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def samba_dc(tmp_path_factory) -> SambaDC:
    need_binary("samba-tool")
    need(platform.is_root(), "provisioning and restoring a Samba DC needs root")
    return provision(tmp_path_factory.mktemp("samba") / "dc1")


def write_config(tmp_path: Path, parameters: dict[str, str]) -> Path:
    config = {
        "GENERAL": {"HOSTNAME": "dc1", "WORK_FOLDER": str(tmp_path / "work"), "HOME_FOLDER": str(tmp_path),
                    "LOG_FOLDER": str(tmp_path / "log"), "DISK_SPACE_CHECK": "False"},
        "AD": {"ACTION": "execute", "NAME": "ad_backup", "PARAMETERS": parameters},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption",
                       "PARAMETERS": {"KEY_FILE": str(tmp_path / "key.txt"), "FILE_SIZE": "1"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage",
                    "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": f"{{'LOCAL_BACKUP': '{tmp_path / 'backups'}'}}"}},
    }
    (tmp_path / "work").mkdir(exist_ok=True)
    path = tmp_path / "conf.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def cli(command: list[str], *args: str) -> tuple[int, str]:
    result = run([*command, *args], timeout_seconds=600, check=False)
    return result.returncode, result.text + result.stderr.decode("utf-8", "replace")


def restore_with_samba_tool(backup_file: Path, folder: Path) -> Path:
    """The documented manual step (docs/ad.md): a new DC from the backup file; return its smb.conf."""
    done = subprocess.run(["samba-tool", "domain", "backup", "restore", f"--backup-file={backup_file}",
                           "--newservername=dc2", f"--targetdir={folder}"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return folder / "etc" / "smb.conf"


def assert_domain_restored(smb_conf: Path) -> None:
    assert set(USERS) | {"Administrator", "krbtgt"} <= users_of(smb_conf)
    assert members_of(smb_conf, GROUP) == set(USERS)


def test_offline_backup_runs_and_a_new_dc_is_rebuilt_with_its_users(samba_dc, tmp_path, ncbackup_cmd):
    config = write_config(tmp_path, {"MODE": "offline", "SMB_CONF": str(samba_dc.smb_conf)})
    code, output = cli(ncbackup_cmd, "run", "-c", str(config))
    assert code in (0, 1), output     # 1: the first run creates its keys, and says so
    assert not list((tmp_path / "work").glob(".ncbackup-ad-*")), "the samba-tool backup file is removed after streaming"
    code, listing = cli(ncbackup_cmd, "list", "-c", str(config))
    assert code == 0 and " ad" in listing, listing

    # --target: the samba-tool backup file comes back as it was written, and stock samba-tool restores it.
    target = tmp_path / "restored"
    code, output = cli(ncbackup_cmd, "restore", "-c", str(config), "--stream", "ad", "--target", str(target))
    assert code == 0, output
    backup_file = target / "ad.tar.bz2"
    assert backup_file.stat().st_mode & 0o077 == 0, "the file holds the domain's password hashes: owner only"
    assert_domain_restored(restore_with_samba_tool(backup_file, tmp_path / "dc2-manual"))

    # --to-dc: the same in one step.
    code, output = cli(ncbackup_cmd, "restore", "-c", str(config), "--stream", "ad", "--to-dc", str(tmp_path / "dc2"),
                       "--new-server-name", "dc2")
    assert code == 0, output
    assert "a new DC in" in output
    assert_domain_restored(tmp_path / "dc2" / "etc" / "smb.conf")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ncbackup-ad-")] == [], "temp copy removed"


def test_to_dc_refuses_a_non_empty_folder_and_needs_a_server_name(samba_dc, tmp_path, ncbackup_cmd):
    config = write_config(tmp_path, {"SMB_CONF": str(samba_dc.smb_conf)})
    assert cli(ncbackup_cmd, "run", "-c", str(config))[0] in (0, 1)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    code, output = cli(ncbackup_cmd, "restore", "-c", str(config), "--stream", "ad", "--to-dc", str(occupied),
                       "--new-server-name", "dc3")
    assert code != 0 and "is not empty" in output and "Traceback" not in output, output
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]
    code, output = cli(ncbackup_cmd, "restore", "-c", str(config), "--stream", "ad", "--to-dc", str(tmp_path / "x"))
    assert code != 0 and "--new-server-name" in output and "Traceback" not in output, output


def test_check_names_samba_tool_and_smb_conf(samba_dc, tmp_path, ncbackup_cmd):
    config = write_config(tmp_path, {"SMB_CONF": str(samba_dc.smb_conf)})
    code, output = cli(ncbackup_cmd, "check", "-c", str(config))
    assert code == 0, output
    assert "samba-tool: " in output and f"smb.conf {samba_dc.smb_conf} is readable" in output, output
    assert "samba-tool domain backup offline" in output

    config = write_config(tmp_path, {"SMB_CONF": str(tmp_path / "nope.conf")})
    code, output = cli(ncbackup_cmd, "check", "-c", str(config))
    assert code != 0 and f"smb.conf {tmp_path / 'nope.conf'} does not exist" in output, output


def test_a_broken_smb_conf_fails_the_stream_with_one_sentence(tmp_path, ncbackup_cmd):
    need_binary("samba-tool")
    broken = tmp_path / "smb.conf"
    broken.write_text("[global]\n\tserver role = standalone server\n")
    config = write_config(tmp_path, {"SMB_CONF": str(broken)})
    code, output = cli(ncbackup_cmd, "run", "-c", str(config))
    assert code == 2, output
    assert "samba-tool domain backup offline failed" in output and "Traceback" not in output, output
    assert not list((tmp_path / "work").glob(".ncbackup-ad-*"))


def test_online_backup_of_a_running_dc_with_the_password_only_in_a_file(samba_dc, tmp_path, ncbackup_cmd):
    for program in ("unshare", "nsenter", "ip", "samba"):
        need_binary(program)
    credentials = tmp_path / "ad.credentials"
    credentials.write_text(f"username = Administrator\npassword = {ADMIN_PASSWORD}\ndomain = {DOMAIN}\n")
    credentials.chmod(0o600)
    config = write_config(tmp_path, {"MODE": "online", "SERVER": "127.0.0.1", "CREDENTIALS_FILE": str(credentials),
                                     "SMB_CONF": str(samba_dc.smb_conf)})
    daemon = start_in_namespace(samba_dc)
    try:
        in_namespace = ["nsenter", "-t", str(daemon.pid), "-n", "--", sys.executable, "-m", "ncbackup.cli"]
        code, output = cli(in_namespace, "run", "-c", str(config))
    finally:
        daemon.stop()
    assert code in (0, 1), output
    assert ADMIN_PASSWORD not in output
    for log_file in (tmp_path / "log").rglob("*"):
        if log_file.is_file():
            assert ADMIN_PASSWORD not in log_file.read_text(errors="replace"), log_file
    target = tmp_path / "restored"
    code, output = cli(ncbackup_cmd, "restore", "-c", str(config), "--stream", "ad", "--target", str(target))
    assert code == 0, output
    assert_domain_restored(restore_with_samba_tool(target / "ad.tar.bz2", tmp_path / "dc2"))


def test_the_rebuilt_dc_starts_and_answers_ldap_with_the_restored_users(samba_dc, tmp_path, ncbackup_cmd):
    for program in ("unshare", "nsenter", "ip", "samba", "ldbsearch"):
        need_binary(program)
    config = write_config(tmp_path, {"SMB_CONF": str(samba_dc.smb_conf)})
    assert cli(ncbackup_cmd, "run", "-c", str(config))[0] in (0, 1)
    code, output = cli(ncbackup_cmd, "restore", "-c", str(config), "--stream", "ad", "--to-dc", str(tmp_path / "dc2"),
                       "--new-server-name", "dc2")
    assert code == 0, output
    rebuilt = SambaDC(tmp_path / "dc2")
    authentication_file = tmp_path / "admin.auth"
    authentication_file.write_text(f"username = Administrator\npassword = {ADMIN_PASSWORD}\ndomain = {DOMAIN}\n")
    authentication_file.chmod(0o600)
    daemon = start_in_namespace(rebuilt)
    try:
        done = subprocess.run(
            ["nsenter", "-t", str(daemon.pid), "-n", "--", "ldbsearch", "-H", "ldap://127.0.0.1", "-A", str(authentication_file),
             "-b", "DC=ncb,DC=test", f"(memberOf=CN={GROUP},CN=Users,DC=ncb,DC=test)", "sAMAccountName"],
            capture_output=True, text=True, timeout=120, check=False,
        )
    finally:
        daemon.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert {line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("sAMAccountName: ")} == set(USERS)
