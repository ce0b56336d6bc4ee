"""Config mistakes reach the user of the real command line as one located sentence and exit status 3."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

BAD_CONFIGS = {
    "missing_comma": ('{\n "GENERAL": {\n  "HOSTNAME": "a"\n  "WORK_FOLDER": "/tmp/x"\n }\n}\n',
                      "line 4, column 3: expected ',' or '}' after the value of \"HOSTNAME\""),
    "no_general": ('{"FILESET": {"ACTION": "execute", "NAME": "filesbackup"}}', "no GENERAL section"),
    "unknown_action": ('{"GENERAL": {},\n"A": {"ACTION": "run", "NAME": "x"}}', "line 2, column 7: A.ACTION: unknown ACTION"),
    "args_dict": ('{"GENERAL": {},\n"S": {"ACTION": "execute", "NAME": "storage",\n"PARAMETERS": {"ARGS_DICT": "BUCKET=x"}}}',
                  "line 3, column 16: S.PARAMETERS.ARGS_DICT: is not a valid Python-literal dict"),
    "log_parent": ('{"GENERAL": {"LOG_FOLDER": "/nonexistent-ncbackup-dir/sub/ncbackup.log"}}',
                   "GENERAL.LOG_FOLDER: neither the log folder /nonexistent-ncbackup-dir/sub nor its parent"),
}


def run_cli(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    ("case", "entry"), [(case, "check") for case in sorted(BAD_CONFIGS)] + [("missing_comma", "backup.py -t")]
)
def test_bad_config_is_one_sentence_and_exit_3(case: str, entry: str, tmp_path: Path, ncbackup_cmd: list[str]) -> None:
    text, expected = BAD_CONFIGS[case]
    config = tmp_path / "conf.json"
    config.write_text(text)
    if entry == "check":
        command = [*ncbackup_cmd, "check", "-c", str(config)]
    else:
        command = [ncbackup_cmd[0], str(REPO / "backup.py"), "-t", "-c", str(config)]
    result = run_cli(command, tmp_path)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert str(config) in lines[0] and expected in lines[0]


def test_missing_config_file_on_the_command_line(tmp_path: Path, ncbackup_cmd: list[str]) -> None:
    result = run_cli([*ncbackup_cmd, "check", "-c", str(tmp_path / "nope.json")], tmp_path)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert f"{tmp_path / 'nope.json'}: config file not found" in result.stderr
