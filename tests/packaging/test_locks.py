"""The lock files follow pyproject.toml: every dependency pinned within its range, with hashes, runtime apart from tests.

When one fails after a dependency was added or moved: run scripts/lock and commit requirements/.
"""

from __future__ import annotations

import re

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
# Packages only the test suite needs: none may reach a production install.
TEST_ONLY = {"pytest", "moto", "hypothesis", "pytest-timeout", "jsonschema", "build", "pipx", "shtab", "pip-tools"}


def pins(path) -> dict[str, tuple[str, int]]:
    """A lock file's packages -> (version, number of hashes)."""
    found: dict[str, tuple[str, int]] = {}
    name = None
    for line in path.read_text().splitlines():
        pinned = re.match(r"^([A-Za-z0-9._-]+)==([^\s\\]+)", line)
        if pinned:
            name = canonicalize_name(pinned.group(1))
            found[name] = (pinned.group(2), 0)
        elif name and line.strip().startswith("--hash=sha256:"):
            version, hashes = found[name]
            found[name] = (version, hashes + 1)
    return found


def requirements(names: list[str]) -> list[Requirement]:
    """The requirements these pyproject entries name, extras of ncbackup itself expanded."""
    expanded: list[Requirement] = []
    for text in names:
        requirement = Requirement(text)
        if canonicalize_name(requirement.name) == "ncbackup":
            for extra in sorted(requirement.extras):
                expanded += requirements(EXTRAS[extra])
        else:
            expanded.append(requirement)
    return expanded


RUNTIME = requirements([*PROJECT["dependencies"], "ncbackup[all]"])
TEST = requirements([*PROJECT["dependencies"], "ncbackup[test]"])
RUNTIME_LOCK = pins(REPO / "requirements" / "runtime.txt")
TEST_LOCK = pins(REPO / "requirements" / "test.txt")


def assert_locked(needed: list[Requirement], lock: dict[str, tuple[str, int]], lock_name: str) -> None:
    for requirement in needed:
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement.name} is not in {lock_name}; run scripts/lock"
        version, hashes = lock[name]
        assert requirement.specifier.contains(version, prereleases=True), \
            f"{lock_name} pins {name}=={version} outside {requirement}; run scripts/lock"
        assert hashes > 0, f"{name} has no hash in {lock_name}"


def test_runtime_lock_pins_every_runtime_dependency_and_both_storage_extras():
    assert_locked(RUNTIME, RUNTIME_LOCK, "requirements/runtime.txt")
    assert {"boto3", "paramiko", "pydantic"} <= set(RUNTIME_LOCK)


def test_test_lock_pins_every_dependency_of_the_test_extra():
    assert_locked(TEST, TEST_LOCK, "requirements/test.txt")


def test_runtime_lock_holds_nothing_only_tests_need():
    assert TEST_ONLY & set(RUNTIME_LOCK) == set()


def test_every_locked_package_is_hashed_and_both_locks_and_constraints_agree():
    constraints = {canonicalize_name(name): version for name, version in
                   re.findall(r"^([A-Za-z0-9._-]+)==(\S+)$", (REPO / "constraints.txt").read_text(), re.MULTILINE)}
    for lock_name, lock in (("runtime.txt", RUNTIME_LOCK), ("test.txt", TEST_LOCK)):
        for name, (version, hashes) in lock.items():
            assert hashes > 0, f"{name} has no hash in requirements/{lock_name}"
            assert constraints.get(name) == version, \
                f"requirements/{lock_name} pins {name}=={version}, constraints.txt {constraints.get(name)}; run scripts/lock"
    for name, (version, _) in RUNTIME_LOCK.items():
        assert TEST_LOCK.get(name, ("missing",))[0] == version, f"{name}: runtime and test locks disagree"


def test_core_install_needs_neither_boto3_nor_paramiko():
    core = {canonicalize_name(Requirement(text).name) for text in PROJECT["dependencies"]}
    assert core & {"boto3", "botocore", "paramiko"} == set()
    assert [Requirement(text).name for text in EXTRAS["s3"]] == ["boto3"]
    assert [Requirement(text).name for text in EXTRAS["sftp"]] == ["paramiko"]
    assert Requirement(EXTRAS["all"][0]).extras == {"s3", "sftp"}
    assert "all" in Requirement(EXTRAS["test"][0]).extras
