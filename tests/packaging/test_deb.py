"""The .deb that scripts/build makes installs with dpkg -i into this machine, works, and dpkg --purge leaves nothing.

It installs into the real system (as CI does, as root): /opt/ncbackup, /usr/bin/ncbackup, /etc/ncbackup, the
systemd units, man page and completion. It refuses to run where an ncbackup package is already installed.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest

from ncbackup import __version__, platform
from ncbackup.completion import INSTALL_PATHS
from tests.packaging.installed import backup_and_restore, run
from tests.support import need, need_binary

PACKAGE_FILES = [
    "/opt/ncbackup/bin/ncbackup",
    "/usr/bin/ncbackup",
    "/usr/lib/systemd/system/ncbackup.service",
    "/usr/lib/systemd/system/ncbackup.timer",
    "/usr/share/man/man1/ncbackup.1.gz",
    *(f"/{path}" for path in INSTALL_PATHS.values()),
    "/etc/ncbackup/conf.json.example",
]


def is_installed() -> bool:
    status = run(["dpkg-query", "-W", "-f=${Status}", "ncbackup"])
    return "install ok installed" in status.stdout


def dpkg(*arguments: str) -> subprocess.CompletedProcess:
    """dpkg, waiting (bounded) while another dpkg or apt holds the lock."""
    for _ in range(30):
        completed = run(["dpkg", *arguments], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if completed.returncode == 0 or "lock" not in completed.stderr:
            return completed
        time.sleep(2)
    return completed


@pytest.fixture
def installed_deb(built):
    need(platform.is_root(), "installing a .deb needs root")
    need(not is_installed(), "an ncbackup Debian package is installed on this machine; the test would replace it")
    installed = dpkg("-i", str(built.deb))
    try:
        assert installed.returncode == 0, installed.stdout + installed.stderr
        yield built.deb
    finally:
        purged = dpkg("--purge", "ncbackup")
        assert purged.returncode == 0, purged.stdout + purged.stderr


@pytest.mark.timeout(1200)
def test_deb_installs_a_working_command_with_units_config_folder_man_page_and_completion(installed_deb, tmp_path):
    need_binary("man")
    for path in PACKAGE_FILES:
        assert Path(path).exists(), f"{path} is not installed"
    version = run(["/usr/bin/ncbackup", "--version"], env={"PATH": os.defpath})
    assert version.stdout == f"ncbackup {__version__}\n", version.stderr
    # The S3 and SFTP extras are in the package's own virtualenv; the test tools are not.
    probe = run(["/opt/ncbackup/bin/python", "-c", "import boto3, paramiko, importlib.util as u; print(u.find_spec('pytest'))"])
    assert probe.stdout.strip() == "None", probe.stderr

    config_folder = Path("/etc/ncbackup")
    assert stat.S_IMODE(config_folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((config_folder / "conf.json.example").stat().st_mode) == 0o600
    checked = run(["/usr/bin/ncbackup", "check", "-c", "/etc/ncbackup/conf.json.example"], env={"PATH": os.defpath})
    assert checked.returncode == 0, checked.stdout + checked.stderr

    service = Path("/usr/lib/systemd/system/ncbackup.service").read_text()
    assert re.search(r"^ExecStart=/usr/bin/ncbackup run -c /etc/ncbackup/conf.json", service, re.MULTILINE)

    man = run(["man", "--warnings", "ncbackup"], env={"PATH": os.defpath, "MANPAGER": "cat", "MANWIDTH": "80",
                                                       "LANG": "C.UTF-8"})
    assert man.returncode == 0 and man.stderr == "", man.stderr
    assert "ncbackup restore" in re.sub(r".\x08", "", man.stdout)
    assert gzip.decompress(Path("/usr/share/man/man1/ncbackup.1.gz").read_bytes()).startswith(b".TH NCBACKUP 1")

    need_binary("bash")
    program = ("source /usr/share/bash-completion/completions/ncbackup; COMP_WORDS=(ncbackup ver); COMP_CWORD=1; "
               "_shtab_ncbackup; echo ${COMPREPLY[@]}")
    completed = run(["bash", "--norc", "--noprofile", "-c", program])
    assert completed.stdout.split() == ["verify"], completed.stderr
    assert Path("/usr/share/zsh/vendor-completions/_ncbackup").read_text().startswith("#compdef ncbackup")

    backup_and_restore("/usr/bin/ncbackup", tmp_path)
    # Running the command wrote nothing under /opt/ncbackup (byte code is shipped): dpkg can remove all of it.
    listed = set(run(["dpkg-query", "-L", "ncbackup"]).stdout.split())
    unknown = [str(path) for path in Path("/opt/ncbackup").rglob("*") if str(path) not in listed]
    assert unknown == []


@pytest.mark.timeout(1200)
def test_purge_removes_everything_the_package_installed(built):
    need(platform.is_root(), "installing a .deb needs root")
    need(not is_installed(), "an ncbackup Debian package is installed on this machine; the test would replace it")
    installed = dpkg("-i", str(built.deb))
    try:
        assert installed.returncode == 0, installed.stdout + installed.stderr
        ran = run(["/usr/bin/ncbackup", "check", "-c", "/etc/ncbackup/conf.json.example"], env={"PATH": os.defpath})
        assert ran.returncode == 0, ran.stdout + ran.stderr
    finally:
        purged = dpkg("--purge", "ncbackup")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert not is_installed()
    for path in [*PACKAGE_FILES, "/opt/ncbackup", "/etc/ncbackup"]:
        assert not Path(path).exists(), f"{path} is left after dpkg --purge"
