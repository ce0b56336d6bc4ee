"""Start-up: ``ncbackup --version`` answers without importing the command modules; heavy libraries load when used."""

from __future__ import annotations

import json
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


# What a restore of files from local storage, and list, must not import: other commands' modules, the other storage
# backends and their clients, the database sources. Each costs start-up CPU that a restore does not need (issue 14).
NOT_FOR_A_LOCAL_FILES_RESTORE = (
    "boto3", "botocore", "paramiko", "requests",
    "ncbackup.storage.s3", "ncbackup.storage.sftp", "ncbackup.storage.rclone", "ncbackup.storage.rsync",
    "ncbackup.storage.command",
    "ncbackup.sources.registry", "ncbackup.sources.mysql", "ncbackup.sources.postgres", "ncbackup.sources.mongo",
    "ncbackup.sources.sqlite",
    "ncbackup.commands.run", "ncbackup.commands.init", "ncbackup.commands.check", "ncbackup.engine.plan",
    "ncbackup.engine.run", "ncbackup.notify.registry", "ncbackup.retention.policy",
)


def loaded_after_cli(runs: list[list[str]]) -> set[str]:
    """Which NOT_FOR_A_LOCAL_FILES_RESTORE modules a fresh interpreter has loaded after cli.main(args) for each of runs."""
    probe = (
        "import contextlib, io, sys\nfrom ncbackup import cli\n"
        f"for arguments in {runs!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            code = cli.main(arguments)\n"
        "        except SystemExit as exit:\n"
        "            code = exit.code\n"
        "    assert code == 0, (arguments, code)\n"
        f"print(' '.join(m for m in {NOT_FOR_A_LOCAL_FILES_RESTORE!r} if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return set(completed.stdout.split())


def loaded_when_work_begins(arguments: list[str]) -> set[str]:
    """Which HEAVY_MODULES and NOT_FOR_A_LOCAL_FILES_RESTORE modules are loaded when the command first lists its
    storage (where its work begins)."""
    watched = HEAVY_MODULES[:1] + NOT_FOR_A_LOCAL_FILES_RESTORE
    probe = (
        "import os, sys\nfrom ncbackup.storage import local\n"
        "def probe(self, *args, **kwargs):\n"
        f"    print(' '.join(m for m in {watched!r} if m in sys.modules), flush=True)\n"
        "    os._exit(0)\n"
        "local.LocalStorage.list = probe\n"
        f"from ncbackup import cli\ncli.main({arguments!r})\nprint('never listed')\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and "never listed" not in completed.stdout, completed.stdout + completed.stderr
    return set(completed.stdout.split())


def test_list_and_a_local_files_restore_import_only_what_they_use(tmp_path, ncbackup_cmd):
    data = tmp_path / "data"
    (data / "etc").mkdir(parents=True)
    (data / "etc" / "app.conf").write_text("key = value\n")
    key = tmp_path / "key.txt"
    made = subprocess.run([*ncbackup_cmd, "keygen", "--output", str(key), "--signing-key", str(tmp_path / "signing.key")],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    config = tmp_path / "conf.json"
    config.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log"),
                    "HOME_FOLDER": str(tmp_path)},
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "COMPRESSION": {"ACTION": "execute", "NAME": "compression", "PARAMETERS": {}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(key)}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage",
                    "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": {"LOCAL_BACKUP": str(tmp_path / "backups")}}},
    }))
    made = subprocess.run([*ncbackup_cmd, "run", "-c", str(config)], capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr

    assert loaded_after_cli([["list", "--help"], ["restore", "--help"]]) == set()
    assert loaded_after_cli([["list", "-c", str(config)]]) == set()
    # Reading GENERAL and the key paths takes no pydantic (config/values.read_plain): list never loads it, and a
    # restore loads it only once work has begun (the files restorer's module), not before the first listing.
    assert loaded_when_work_begins(["list", "-c", str(config)]) == set()
    assert loaded_when_work_begins(["restore", "-c", str(config), "--latest", "--target", str(tmp_path / "r2")]) == set()
    assert "pydantic" not in imported_after(
        f"import contextlib, io\nfrom ncbackup import cli\nwith contextlib.redirect_stdout(io.StringIO()):\n"
        f"    cli.main(['list', '-c', {str(config)!r}])")
    restored = tmp_path / "restored"
    assert loaded_after_cli([["restore", "-c", str(config), "--latest", "--target", str(restored)]]) == set()
    assert (restored / str(data).lstrip("/") / "etc" / "app.conf").read_text() == "key = value\n"
