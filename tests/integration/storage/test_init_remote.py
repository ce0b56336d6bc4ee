"""`ncbackup init` pointed at a real S3 (moto) and a real SFTP server: the config it writes passes `check` and runs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _cli(ncbackup_cmd: list[str], *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*ncbackup_cmd, *args], capture_output=True, text=True, timeout=300, input="",
                          env={**os.environ, **(env or {})})


def _init(ncbackup_cmd: list[str], tmp_path: Path, *flags: str, env: dict | None = None) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "app.conf").write_text("setting = 1\n" * 100)
    config = tmp_path / "conf.json"
    result = _cli(ncbackup_cmd, "init", "--non-interactive", "--output", str(config), "--include", str(data), "--no-databases",
                  "--work-folder", str(tmp_path / "work"), "--log-file", str(tmp_path / "ncbackup.log"), *flags, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return config


def test_an_s3_bucket_and_endpoint(tmp_path, s3_env, ncbackup_cmd):
    s3_env.client().create_bucket(Bucket="acme-backups")
    config = _init(ncbackup_cmd, tmp_path, "--bucket", "acme-backups", "--endpoint-url", s3_env.endpoint_url,
                   "--region", "us-east-1")
    assert json.loads(config.read_text())["STORAGE"]["PARAMETERS"]["ARGS_DICT"] == {
        "BUCKET": "acme-backups", "ENDPOINT_URL": s3_env.endpoint_url, "REGION": "us-east-1"}
    checked = _cli(ncbackup_cmd, "check", "-c", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    ran = _cli(ncbackup_cmd, "run", "-c", str(config))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    keys = [item["Key"] for item in s3_env.client().list_objects_v2(Bucket="acme-backups")["Contents"]]
    assert any(key.endswith("manifest.json.minisig") for key in keys)


def test_an_sftp_server(tmp_path, sshd, ncbackup_cmd):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(sshd.known_hosts_line())
    remote = tmp_path / "remote"
    remote.mkdir()
    env = {"HOME": str(home)}
    config = _init(ncbackup_cmd, tmp_path, "--sftp-host", sshd.host, "--sftp-port", str(sshd.port), "--sftp-user", sshd.user,
                   "--sftp-folder", str(remote), "--ssh-key", str(sshd.client_key), env=env)
    checked = _cli(ncbackup_cmd, "check", "-c", str(config), env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    ran = _cli(ncbackup_cmd, "run", "-c", str(config), env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert list(remote.rglob("manifest.json.minisig"))
