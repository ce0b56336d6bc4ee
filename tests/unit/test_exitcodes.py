"""The exit statuses are defined once (ncbackup.exitcodes); every command, the report, --help and the man page import them."""

from __future__ import annotations

import ast
from pathlib import Path

from ncbackup import exitcodes, manpage
from tests.support import REPO

SHARED_NAMES = {"EXIT_OK", "EXIT_WARNINGS", "EXIT_FAILED", "EXIT_UNUSABLE", "EXIT_STATUS_HELP"}


def _assigned_names(module: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            names |= {name.id for name in ast.walk(target) if isinstance(name, ast.Name)}
    return names


def test_the_shared_exit_statuses_are_assigned_in_exitcodes_only():
    package = REPO / "src" / "ncbackup"
    defining = sorted(str(module.relative_to(package)) for module in package.rglob("*.py")
                      if _assigned_names(module) & SHARED_NAMES)
    assert defining == ["exitcodes.py"]


def test_the_man_page_lists_the_shared_values():
    assert (exitcodes.EXIT_OK, exitcodes.EXIT_WARNINGS, exitcodes.EXIT_FAILED, exitcodes.EXIT_UNUSABLE) == (0, 1, 2, 3)
    assert [status for status, _meaning in manpage.EXIT_STATUS] == [0, 1, 2, 3]
