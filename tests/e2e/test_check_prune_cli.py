"""``ncbackup check`` says, for each STORAGE section, whether prune can work there."""

from __future__ import annotations

from tests.e2e.test_check_cli import run_cli, write_config

CLEANUP = {"CLEANUP": {"KEEP": {"DAILY": {"NUMBER": "7"}}}}


def sections(tmp_path) -> dict:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return {
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
        "STORAGE_UPLOAD_ONLY": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {
            "DESTINATION": "custom_command",
            "UPLOAD_COMMAND_TEMPLATE": "cp %(OBJECTIVES)s/%(file)s /tmp/%(file)s",
            "DOWNLOAD_COMMAND_TEMPLATE": "cat /tmp/%(file)s",
        }},
    }


def prune_lines(stdout: str) -> list[str]:
    return [line.strip() for line in stdout.splitlines() if "prune works here" in line or "prune cannot work" in line]


def test_check_says_where_prune_works_and_fails_only_when_a_cleanup_section_asks_for_it(tmp_path, ncbackup_cmd):
    without = run_cli(ncbackup_cmd, "check", "-c", str(write_config(tmp_path, sections(tmp_path))))
    assert without.returncode == 0, without.stdout + without.stderr
    [local, upload_only] = prune_lines(without.stdout)
    assert local.startswith("ok   STORAGE (") and local.endswith("prune works here (lists and deletes)")
    assert upload_only.startswith("ok   STORAGE_UPLOAD_ONLY (")
    assert "prune cannot work here" in upload_only
    assert "LIST_COMMAND_TEMPLATE and REMOVE_COMMAND_TEMPLATE are not set" in upload_only

    with_cleanup = run_cli(ncbackup_cmd, "check", "-c", str(write_config(tmp_path, {**sections(tmp_path), **CLEANUP})))
    assert with_cleanup.returncode == 2, with_cleanup.stdout + with_cleanup.stderr
    [local, upload_only] = prune_lines(with_cleanup.stdout)
    assert local.startswith("ok   STORAGE (")
    assert upload_only.startswith("FAIL STORAGE_UPLOAD_ONLY (") and "prune cannot work here" in upload_only
    assert "Traceback" not in with_cleanup.stdout + with_cleanup.stderr
