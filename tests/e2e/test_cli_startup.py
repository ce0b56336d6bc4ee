"""Start-up: ``ncbackup --version`` answers without importing the command modules; heavy libraries load when used."""

from __future__ import annotations

import subprocess
import sys

from ncbackup import __version__

HEAVY_MODULES = ("pydantic", "requests", "boto3", "botocore", "paramiko", "cryptography")


def imported_after(code: str) -> set[str]:
    """Which HEAVY_MODULES a fresh interpreter has loaded after running code."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return set(completed.stdout.split())


def test_version_prints_the_version_and_exits_0(ncbackup_cmd):
    completed = subprocess.run([*ncbackup_cmd, "--version"], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == f"ncbackup {__version__}\n"


def test_version_imports_no_heavy_library():
    code = "import contextlib, io\nfrom ncbackup import cli\nwith contextlib.redirect_stdout(io.StringIO()):\n    cli.main(['--version'])"
    assert imported_after(code) == set()


def test_command_modules_and_storage_registry_leave_network_libraries_for_first_use():
    # requests is needed only to send a report, boto3 and paramiko only when an S3 / SFTP storage is built or used.
    code = "from ncbackup import cli\ncli.build_parser()\nimport ncbackup.storage.registry\nimport ncbackup.notify.registry"
    assert imported_after(code) & {"requests", "boto3", "botocore", "paramiko"} == set()
