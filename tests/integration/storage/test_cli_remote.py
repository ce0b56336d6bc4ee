"""The CLI as a user runs it (run, check, list, verify, restore) with remote storages on real servers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.servers.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY
from tests.integration.storage.test_sftp import ssh_args
from tests.support import REPO, need_binary

pytestmark = pytest.mark.integration


def run_cli(command: list[str], *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})})


def storage(destination: str, args: dict, **parameters) -> dict:
    return {"ACTION": "execute", "NAME": "storage",
            "PARAMETERS": {"DESTINATION": destination, "ARGS_DICT": repr(args), **parameters}}


@pytest.fixture
def site(tmp_path, ncbackup_cmd):
    data = tmp_path / "data"
    (data / "etc").mkdir(parents=True)
    for index in range(20):
        (data / "etc" / f"conf-{index}.conf").write_text(f"setting {index}\n" * 50)
    (data / "blob.bin").write_bytes(os.urandom(1_500_000))
    key = tmp_path / "key.txt"
    assert run_cli(ncbackup_cmd, "keygen", "--output", str(key), "--signing-key", str(key.parent / "signing.key")).returncode == 0
    return data, key


def config_file(tmp_path: Path, data: Path, key: Path, storages: dict) -> Path:
    path = tmp_path / "conf.json"
    path.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log"),
                    "HOME_FOLDER": str(tmp_path)},
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "COMPRESSION": {"ACTION": "execute", "NAME": "compression", "PARAMETERS": {}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(key), "FILE_SIZE": "1"}},
        **storages,
    }, indent=2))
    return path


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_run_to_s3_and_sftp_with_a_failing_bucket_then_list_verify_restore_from_each(
    tmp_path, site, s3_env, sshd, ncbackup_cmd,
):
    data, key = site
    s3_env.client().create_bucket(Bucket="backups")
    remote = tmp_path / "remote"
    remote.mkdir()
    s3_args = {"BUCKET": "backups", "ENDPOINT_URL": s3_env.endpoint_url, "REGION": "us-east-1"}
    path = config_file(tmp_path, data, key, {
        "STORAGE_S3": storage("s3", s3_args),
        "STORAGE_SFTP": storage("scp", ssh_args(sshd, remote)),
        "STORAGE_BROKEN": storage("s3", {**s3_args, "BUCKET": "no-such-bucket", "MAX_ATTEMPTS": "1"}),
    })
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY}

    ran = run_cli(ncbackup_cmd, "run", "-c", str(path), env=env)
    assert ran.returncode == 2, ran.stdout + ran.stderr          # partly failed
    assert "Traceback" not in ran.stdout + ran.stderr
    log_text = ran.stdout + ran.stderr + "".join(p.read_text() for p in (tmp_path / "log").rglob("*") if p.is_file())
    assert "STORAGE_BROKEN" in log_text and "no-such-bucket" in log_text

    for section in ("STORAGE_S3", "STORAGE_SFTP"):
        listed = run_cli(ncbackup_cmd, "list", "-c", str(path), "--storage", section, "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        [entry] = json.loads(listed.stdout)
        assert entry["is_complete"] is True
        verified = run_cli(ncbackup_cmd, "verify", "-c", str(path), "--storage", section, "--latest", env=env)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        target = tmp_path / f"restored-{section}"
        restored = run_cli(ncbackup_cmd, "restore", "-c", str(path), "--storage", section, "--latest",
                           "--target", str(target), env=env)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert tree(target / str(data).lstrip("/")) == tree(data), section


def test_check_rejects_an_unknown_placeholder_and_reports_unreachable_storages(tmp_path, site, ncbackup_cmd):
    need_binary("cp")
    data, key = site
    path = config_file(tmp_path, data, key, {
        "STORAGE": storage("custom_command", {"DEST": str(tmp_path)},
                           UPLOAD_COMMAND_TEMPLATE="cp %(OBJECTIVES)s/%(file)s %(DEST)s/%(fiel)s"),
    })
    checked = run_cli(ncbackup_cmd, "check", "-c", str(path))
    assert checked.returncode != 0
    assert "unknown placeholder %(fiel)s" in checked.stdout + checked.stderr
    assert "Traceback" not in checked.stdout + checked.stderr

    path = config_file(tmp_path, data, key, {
        "STORAGE": storage("sftp", {"REMOTE_HOST": "127.0.0.1", "PORT": "1", "REMOTE_DIR": "/tmp",
                                    "CONNECT_TIMEOUT": "5"}),
    })
    checked = run_cli(ncbackup_cmd, "check", "-c", str(path))
    assert checked.returncode != 0
    assert "cannot reach 127.0.0.1:1 over SSH" in checked.stdout + checked.stderr
