"""Which storage ``list`` / ``verify`` / ``restore`` read from: the first STORAGE section that can list, or --storage."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support import need_binary


def run_cli(command: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=300)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def backed_up(tmp_path, ncbackup_cmd):
    """One `ncbackup run` to an upload-only custom_command storage (first) and a local storage (second)."""
    need_binary("install")
    data = tmp_path / "data"
    (data / "etc").mkdir(parents=True)
    for index in range(10):
        (data / "etc" / f"conf-{index}.conf").write_text(f"setting {index}\n" * 30)
    (data / "blob.bin").write_bytes(os.urandom(300_000))
    key = tmp_path / "key.txt"
    assert run_cli(ncbackup_cmd, "keygen", "--output", str(key), "--signing-key", str(key.parent / "signing.key")).returncode == 0
    uploads = tmp_path / "uploads"
    config = tmp_path / "conf.json"
    config.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log"),
                    "HOME_FOLDER": str(tmp_path)},
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(key)}},
        "STORAGE_UPLOAD_ONLY": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {
            "DESTINATION": "custom_command", "ARGS_DICT": repr({"DEST": str(uploads)}),
            "UPLOAD_COMMAND_TEMPLATE": "install -D -m 600 %(stdin)s %(DEST)s/%(remote)s"}},
        "STORAGE_LOCAL": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {
            "DESTINATION": "local", "ARGS_DICT": repr({"LOCAL_BACKUP": str(tmp_path / "backups")})}},
    }, indent=2))
    ran = run_cli(ncbackup_cmd, "run", "-c", str(config))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert any(p.name == "manifest.json" for p in uploads.rglob("*"))   # the upload-only storage got the set too
    return config, data


def test_list_verify_restore_default_to_the_first_storage_that_can_list(tmp_path, backed_up, ncbackup_cmd):
    config, data = backed_up
    listed = run_cli(ncbackup_cmd, "list", "-c", str(config), "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    [entry] = json.loads(listed.stdout)
    assert entry["is_complete"] is True

    verified = run_cli(ncbackup_cmd, "verify", "-c", str(config), "--latest")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert str(tmp_path / "backups") in verified.stdout + verified.stderr   # read from STORAGE_LOCAL

    target = tmp_path / "restored"
    restored = run_cli(ncbackup_cmd, "restore", "-c", str(config), "--latest", "--target", str(target))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert tree(target / str(data).lstrip("/")) == tree(data)


def test_naming_a_storage_that_cannot_list_is_refused_with_what_to_do(backed_up, ncbackup_cmd):
    config, _ = backed_up
    for command in ("list", "verify"):
        refused = run_cli(ncbackup_cmd, command, "-c", str(config), "--storage", "STORAGE_UPLOAD_ONLY")
        output = refused.stdout + refused.stderr
        assert refused.returncode == 3, output
        assert "'STORAGE_UPLOAD_ONLY' cannot list its sets" in output
        assert "LIST_COMMAND_TEMPLATE" in output and "STORAGE_LOCAL" in output
        assert "Traceback" not in output


def test_a_config_whose_only_storage_cannot_list_is_refused(tmp_path, backed_up, ncbackup_cmd):
    config, _ = backed_up
    settings = json.loads(config.read_text())
    del settings["STORAGE_LOCAL"]
    config.write_text(json.dumps(settings))
    refused = run_cli(ncbackup_cmd, "list", "-c", str(config))
    output = refused.stdout + refused.stderr
    assert refused.returncode == 3, output
    assert "no STORAGE section can list its sets (STORAGE_UPLOAD_ONLY)" in output
    assert "Traceback" not in output
