"""``ncbackup check`` and ``backup.py -t``: the plan, every component's check, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import REPO

PROCESS_TIMEOUT_SECONDS = 120


def run_cli(command: list[str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=PROCESS_TIMEOUT_SECONDS,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO / "src")})


def write_config(tmp_path: Path, sections: dict, *, general: dict | None = None) -> Path:
    general_section = {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"),
                       "HOME_FOLDER": str(tmp_path / "home"), "LOCAL_BACKUP": str(tmp_path / "backups")}
    general_section.update(general or {})
    (tmp_path / "home").mkdir(exist_ok=True)
    path = tmp_path / "conf.json"
    path.write_text(json.dumps({"GENERAL": general_section, **sections}, indent=2))
    return path


def test_check_prints_one_line_per_step_and_writes_nothing(tmp_path, ncbackup_cmd):
    data = tmp_path / "data"
    data.mkdir()
    key_file = tmp_path / "keys" / "key.txt"
    (tmp_path / "home" / "hook").mkdir(parents=True)
    (tmp_path / "home" / "hook" / "hook.sh").write_text("exit 0\n")
    path = write_config(tmp_path, {
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(key_file)}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
        "HOOK": {"ACTION": "execute", "NAME": "hook", "EXECUTABLE": "hook.sh", "EXECUTE_WITH": "sh"},
    })
    completed = run_cli(ncbackup_cmd, "check", "-c", str(path))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    step_lines = [line for line in completed.stdout.splitlines() if line[:1].isdigit()]
    assert len(step_lines) == 2
    assert step_lines[0].startswith("1. FILESET+ENCRYPTION+STORAGE [backup-set]: reads FILESET")
    assert "writes a backup set under web1/" in step_lines[0]
    assert step_lines[1].startswith("2. HOOK [execute]: runs")
    # check runs nothing: no WORK_FOLDER, no key file, no backups.
    assert not (tmp_path / "work").exists() and not key_file.exists() and not (tmp_path / "backups").exists()


def test_check_fails_with_2_when_a_component_check_fails(tmp_path, ncbackup_cmd):
    path = write_config(tmp_path, {
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup",
                    "PARAMETERS": {"FILESET_INCLUDE": str(tmp_path / "missing")}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
    })
    completed = run_cli(ncbackup_cmd, "check", "-c", str(path))
    assert completed.returncode == 2
    assert "FAIL" in completed.stdout and str(tmp_path / "missing") in completed.stdout


def test_check_exits_3_on_an_unusable_config(tmp_path, ncbackup_cmd):
    path = write_config(tmp_path, {"X": {"ACTION": "explode"}})
    completed = run_cli(ncbackup_cmd, "check", "-c", str(path))
    assert completed.returncode == 3 and "ACTION" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_check_flags_an_unwritable_work_folder(tmp_path, ncbackup_cmd):
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    path = write_config(tmp_path, {}, general={"WORK_FOLDER": str(blocker / "work")})
    completed = run_cli(ncbackup_cmd, "check", "-c", str(path))
    assert completed.returncode == 2 and "FAIL WORK_FOLDER" in completed.stdout


def test_backup_py_t_is_check(tmp_path):
    path = write_config(tmp_path, {})
    completed = run_cli([sys.executable, str(REPO / "backup.py")], "-t", "-c", str(path))
    assert completed.returncode == 0 and "check: all checks passed" in completed.stdout


def test_minimal_and_external_script_examples_pass_check(ncbackup_cmd):
    for example in ("minimal-local.json", "external-script.json"):
        completed = run_cli(ncbackup_cmd, "check", "-c", f"examples/{example}", cwd=REPO)
        assert completed.returncode == 0, example + completed.stdout + completed.stderr


def test_seed_full_example_is_a_usable_config_whose_only_failures_are_placeholders(ncbackup_cmd):
    completed = run_cli(ncbackup_cmd, "check", "-c", "examples/seed-full.json", cwd=REPO)
    # Placeholders (MySQL credential file, S3 bucket and credentials) cannot be reached here: exit 2, never 3.
    assert completed.returncode in (0, 2), completed.stdout + completed.stderr
    failures = [line for line in completed.stdout.splitlines() if line.strip().startswith("FAIL")]
    assert all(("DBSBACKUP" in line) or ("STORAGE" in line) for line in failures), failures
    assert "1. FILESET+DBSBACKUP+COMPRESSION+ENCRYPTION+STORAGE [backup-set]" in completed.stdout
    assert "2. SIZE [size]" in completed.stdout


def test_check_warns_when_a_secret_would_go_on_a_command_line_and_masks_its_output(tmp_path, ncbackup_cmd):
    for name in ("argv", "env"):
        (tmp_path / "home" / name).mkdir(parents=True)
        (tmp_path / "home" / name / "run.sh").write_text("exit 0\n")
    path = write_config(tmp_path, {
        "ON_ARGV": {"ACTION": "execute", "NAME": "argv", "EXECUTABLE": "run.sh", "EXECUTE_WITH": "bash",
                    "PARAMETERS": {"DB_NAME": "shop", "DB_PASSWORD": "pw-c0ffee-42"}},
        "IN_ENV": {"ACTION": "execute", "NAME": "env", "EXECUTABLE": "run.sh", "EXECUTE_WITH": "bash",
                   "SECRETS_VIA": "env", "PARAMETERS": {"DB_PASSWORD": "pw-c0ffee-42"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {
            "DESTINATION": "custom_command", "ARGS_DICT": repr({"API_TOKEN": "tok-beef-77"}),
            "UPLOAD_COMMAND_TEMPLATE": "cp %(stdin)s /tmp/x-%(API_TOKEN)s"}},
        "MONGODB": {"ACTION": "load", "FROM": "mongo", "CLASS": "MongoBackup", "PARAMETERS": {"MONGO_PWD": "abc"}},
    }, general={"MESSAGE_CONFIG_COMMAND": "https://reports.example/in?token=rep-tok-5150"})
    completed = run_cli(ncbackup_cmd, "check", "-c", str(path))
    output = completed.stdout + completed.stderr
    for secret in ("pw-c0ffee-42", "tok-beef-77", "rep-tok-5150"):
        assert secret not in output
    assert "the report goes to https://reports.example/in?token=*** " in output
    argv_warnings = [line for line in output.splitlines() if "go on the command line" in line]
    assert len(argv_warnings) == 1 and "DB_PASSWORD" in argv_warnings[0] and "section ON_ARGV" in argv_warnings[0]
    assert '"SECRETS_VIA": "env" or "file"' in argv_warnings[0]
    assert "UPLOAD_COMMAND_TEMPLATE: warning: %(API_TOKEN)s puts a secret on the command line" in output
    assert "warning: MONGODB.PARAMETERS.MONGO_PWD is shorter than 4 characters" in output
