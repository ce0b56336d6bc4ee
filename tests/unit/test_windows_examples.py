"""The Task Scheduler example and the schtasks line of docs/windows.md: well-formed, and saying the same thing.

The XML import and the schtasks line were never run on Windows (the test machines are Linux): the line's
arguments are checked against a stand-in schtasks that records them.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from ncbackup import platform, process
from ncbackup.config.general import GeneralKeys
from tests.support import NOT_POSIX, REPO, need
from tests.unit import windows_standins as standins

TASK = REPO / "examples" / "windows" / "ncbackup-task.xml"
NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
DURATION = re.compile(r"PT(?:(\d+)H)?(?:(\d+)M)?")


def _task() -> ElementTree.Element:
    return ElementTree.parse(TASK).getroot()  # noqa: S314 - our own example file


def _text(root: ElementTree.Element, path: str) -> str:
    element = root.find(path, NS)
    assert element is not None and element.text is not None, f"{path} is missing from {TASK.name}"
    return element.text.strip()


def _seconds(text: str) -> int:
    match = DURATION.fullmatch(text)
    assert match, text
    return int(match.group(1) or 0) * 3600 + int(match.group(2) or 0) * 60


def test_the_task_runs_ncbackup_run_nightly_as_system_with_the_highest_privileges():
    root = _task()
    command, arguments = _text(root, "t:Actions/t:Exec/t:Command"), _text(root, "t:Actions/t:Exec/t:Arguments")
    assert command.lower().endswith("\\ncbackup.exe") and platform.windows_path_problem(command) is None
    words = arguments.split()
    assert words[:2] == ["run", "-c"] and platform.looks_like_windows_path(words[2])
    assert platform.windows_path_problem(words[2]) is None
    assert _text(root, "t:Principals/t:Principal/t:UserId") == "S-1-5-18"            # SYSTEM
    assert _text(root, "t:Principals/t:Principal/t:RunLevel") == "HighestAvailable"   # VSS needs it
    assert _text(root, "t:Settings/t:MultipleInstancesPolicy") == "IgnoreNew"
    assert _text(root, "t:Triggers/t:CalendarTrigger/t:ScheduleByDay/t:DaysInterval") == "1"


def test_the_task_time_limit_is_past_ncbackups_own_max_runtime():
    limit = _seconds(_text(_task(), "t:Settings/t:ExecutionTimeLimit"))
    assert limit > GeneralKeys.model_fields["max_runtime_seconds"].default


def _documented_schtasks_line() -> str:
    text = (REPO / "docs" / "windows.md").read_text(encoding="utf-8")
    (line,) = [line for line in text.splitlines() if line.startswith("schtasks /create /tn ncbackup /tr ")]
    return line


def _windows_words(line: str) -> list[str]:
    """Split a cmd line as Windows programs do for this line: double quotes group, backslashes are literal."""
    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split, lexer.escape = True, ""
    return list(lexer)


@pytest.fixture
def stand(tmp_path, monkeypatch):
    need(os.name == "posix", NOT_POSIX)
    folder = standins.install(tmp_path / "bin", sys.executable)
    log = tmp_path / "calls.jsonl"
    for key, value in standins.environment(folder, log).items():
        monkeypatch.setenv(key, value)
    return log


def test_the_documented_schtasks_line_asks_for_the_same_task_as_the_xml(stand):
    words = _windows_words(_documented_schtasks_line())
    process.run(words)
    root = _task()
    same = f"{_text(root, 't:Actions/t:Exec/t:Command')} {_text(root, 't:Actions/t:Exec/t:Arguments')}"
    assert standins.calls(stand) == [["schtasks", "/create", "/tn", "ncbackup", "/tr", same, "/sc", "daily",
                                      "/st", "03:00", "/ru", "SYSTEM", "/rl", "HIGHEST", "/f"]]
