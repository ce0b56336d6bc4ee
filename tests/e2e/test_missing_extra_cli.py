"""A config that needs an optional dependency this install lacks: one sentence naming the pip extra, exit 3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ensure_signing_key

# The CLI in a fresh interpreter that cannot import the module, as an install without the extra would be.
WITHOUT_MODULE = "import sys; sys.modules[sys.argv.pop(1)] = None; from ncbackup.cli import main; sys.exit(main())"

STORAGES = {
    "boto3": ("s3", {"DESTINATION": "s3", "ARGS_DICT": repr({
        "BUCKET": "backups", "ENDPOINT_URL": "http://127.0.0.1:9", "REGION": "us-east-1"})}),
    "paramiko": ("sftp", {"DESTINATION": "sftp", "ARGS_DICT": repr({
        "REMOTE_HOST": "127.0.0.1", "REMOTE_USER": "backup", "REMOTE_DIR": "/srv/backups"})}),
}


def write_config(tmp_path: Path, storage: dict) -> Path:
    key = tmp_path / "key.txt"
    subprocess.run([sys.executable, "-m", "ncbackup.cli", "keygen", "--output", str(key)],
                   capture_output=True, timeout=60, check=True)
    ensure_signing_key(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a\n")
    config = tmp_path / "conf.json"
    config.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log"),
                    "HOME_FOLDER": str(tmp_path), "DISK_SPACE_CHECK": "False"},
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup",
                    "PARAMETERS": {"FILESET_INCLUDE": str(tmp_path / "data")}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(key)}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": storage},
    }, indent=2))
    return config


@pytest.mark.parametrize("module", list(STORAGES))
@pytest.mark.parametrize("command", ["check", "run"])
def test_a_storage_whose_library_is_missing_names_the_extra_to_install(tmp_path, module, command):
    extra, storage = STORAGES[module]
    config = write_config(tmp_path, storage)
    completed = subprocess.run([sys.executable, "-c", WITHOUT_MODULE, module, command, "-c", str(config)],
                               capture_output=True, text=True, timeout=120)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 3, output
    assert f"section STORAGE uses {extra.upper()} storage but {module} is not installed; " \
           f"install ncbackup[{extra}]" in completed.stderr
    assert "Traceback" not in output
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr   # one sentence, nothing else


def test_a_present_but_broken_library_is_not_called_missing():
    # boto3 is there but its own dependency botocore cannot be imported: say that, not "not installed".
    code = ("import sys; sys.modules['botocore'] = None\n"
            "from ncbackup.extras import import_extra\n"
            "try:\n    import_extra('boto3', needed_by='section STORAGE uses S3 storage')\n"
            "except Exception as error:\n    print(type(error).__name__, error)")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert completed.stdout.startswith("ConfigError section STORAGE uses S3 storage but boto3 cannot be imported ("), \
        completed.stdout + completed.stderr
    assert "botocore" in completed.stdout and "install ncbackup[s3]" in completed.stdout
