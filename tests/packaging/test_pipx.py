"""The built wheel installs with pipx (extras [all]) into its own virtualenv and backs up and restores from there."""

from __future__ import annotations

import os
import sys

import pytest

from ncbackup import __version__
from tests.packaging.installed import backup_and_restore, run
from tests.support import REPO


@pytest.mark.timeout(1200)
def test_pipx_installs_the_wheel_with_all_extras_and_the_command_works(built, tmp_path):
    pipx_home, bin_dir = tmp_path / "pipx", tmp_path / "bin"
    env = {**os.environ, "PIPX_HOME": str(pipx_home), "PIPX_BIN_DIR": str(bin_dir),
           "PIPX_MAN_DIR": str(tmp_path / "man"), "PIPX_DEFAULT_PYTHON": sys.executable}
    env.pop("VIRTUAL_ENV", None)
    # The versions CI tests (constraints.txt): pip finds them in its cache instead of resolving afresh.
    installed = run([sys.executable, "-m", "pipx", "install", "--pip-args", f"--constraint {REPO / 'constraints.txt'}",
                     f"{built.wheel}[all]"], env=env, timeout_seconds=900)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    ncbackup = bin_dir / "ncbackup"
    version = run([str(ncbackup), "--version"], env={"PATH": os.defpath})
    assert version.returncode == 0, version.stderr
    assert version.stdout == f"ncbackup {__version__}\n"
    # [all] brought both storage libraries into pipx's virtualenv, and nothing only the tests need.
    python = pipx_home / "venvs" / "ncbackup" / "bin" / "python"
    probe = run([str(python), "-c", "import boto3, paramiko, importlib.util as u; print(u.find_spec('pytest'))"])
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "None"
    backup_and_restore(str(ncbackup), tmp_path / "work")


@pytest.mark.timeout(1200)
def test_wheel_holds_every_file_of_the_package_and_nothing_else(built):
    import zipfile

    source = REPO / "src"
    expected = {str(path.relative_to(source)) for path in (source / "ncbackup").rglob("*")
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"}
    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
        entry_points = wheel.read(f"ncbackup-{__version__}.dist-info/entry_points.txt").decode()
    assert {name for name in names if not name.startswith(f"ncbackup-{__version__}.dist-info/")} == expected
    assert "ncbackup = ncbackup.cli:main" in entry_points
