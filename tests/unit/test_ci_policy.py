"""The test suite's own rules: what CI means, and that CI never passes with a skip it does not allow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import support
from tests.support import REPO, is_ci

INNER_TESTS = """
import pytest

from tests import support
from tests.support import need

support.ALLOWED_CI_SKIPS["the demo tool is absent"] = "allowed in this demo only"


def test_direct_skip():
    pytest.skip("no frobnicator here")


@pytest.mark.skipif(True, reason="skipif without need()")
def test_skipif_mark():
    pass


def test_need_missing():
    need(False, "the flux capacitor is not installed")


def test_allowed_skip():
    need(False, "the demo tool is absent on this runner")


@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_failure():
    assert False


def test_passes():
    pass
"""


@pytest.mark.parametrize("value", ["1", "yes", "YES", "true", "True", "TRUE", " true\n"])
def test_ci_values_that_mean_ci(value):
    assert is_ci(value)


@pytest.mark.parametrize("value", [None, "", "0", "no", "false", "False", "off", "ci", "2"])
def test_ci_values_that_do_not_mean_ci(value):
    assert not is_ci(value)


def run_inner_pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    """Run INNER_TESTS in a pytest of their own, with the CI skip policy of tests/conftest.py loaded."""
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "src")])
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.conftest", "-q", "-rA",
         "test_inner.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def outcomes(completed: subprocess.CompletedProcess) -> dict[str, str]:
    """test name -> PASSED/FAILED/ERROR/SKIPPED/XFAIL, from the -rA summary."""
    found = {}
    for line in completed.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "ERROR", "XFAIL") and "::" in rest:
            found[rest.split("::")[1].split()[0]] = word
        elif word == "SKIPPED":
            # "SKIPPED [1] test_inner.py:NN: reason": named by its reason, pytest prints no test name.
            found[rest.split(": ", 1)[1]] = word
    return found


def test_on_ci_a_skip_outside_the_allow_list_fails_the_run(tmp_path):
    completed = run_inner_pytest(tmp_path, ci="yes")
    assert completed.returncode == 1, completed.stdout
    assert outcomes(completed) == {
        "test_direct_skip": "FAILED",
        "test_skipif_mark": "ERROR",        # a skipif mark skips in setup: that phase fails
        "test_need_missing": "FAILED",
        "the demo tool is absent on this runner": "SKIPPED",
        "test_expected_failure": "XFAIL",
        "test_passes": "PASSED",
    }
    assert "skipped on CI (no frobnicator here); CI must run every test" in completed.stdout
    assert "ALLOWED_CI_SKIPS in tests/support.py" in completed.stdout
    assert "prerequisite missing on CI: the flux capacitor is not installed" in completed.stdout


def test_outside_ci_skips_stay_skips(tmp_path):
    completed = run_inner_pytest(tmp_path, ci=None)
    assert completed.returncode == 0, completed.stdout
    assert sorted(outcomes(completed).values()) == ["PASSED", "SKIPPED", "SKIPPED", "SKIPPED", "SKIPPED", "XFAIL"]


def test_the_allow_list_is_short_and_says_why():
    assert len(support.ALLOWED_CI_SKIPS) <= 5
    assert all(reason.strip() and why.strip() for reason, why in support.ALLOWED_CI_SKIPS.items())


def test_no_test_skips_directly():
    # Prerequisites go through need()/need_binary(): one place decides skip (locally) or fail (CI).
    offenders = []
    for folder in (REPO / "tests", REPO / "bench" / "tests"):
        for path in folder.rglob("*.py"):
            if path == Path(support.__file__) or path == Path(__file__):
                continue
            text = path.read_text()
            offenders += [f"{path.relative_to(REPO)}: {word}" for word in ("pytest.skip(", "mark.skipif", "importorskip")
                          if word in text]
    assert offenders == []
