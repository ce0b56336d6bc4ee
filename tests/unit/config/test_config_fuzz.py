"""Property-based: whatever bytes or JSON a config file holds, `ncbackup check` answers with an exit
status and, when the config is unusable, exit 3 and one sentence on stderr; never a traceback.

In-process through the CLI's main (fast, many examples), plus a few nasty files through a real
subprocess. Examples are bounded so the whole module runs in a few seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ncbackup.cli import main
from ncbackup.config import load_config
from ncbackup.errors import BackupError, ConfigError
from ncbackup.storage.registry import STORAGES
from tests.support import ON_CI, REPO

# NCBACKUP_FUZZ_EXAMPLES=5000 explores longer (locally, when changing the loader).
FUZZ = settings(
    max_examples=int(os.environ.get("NCBACKUP_FUZZ_EXAMPLES", "100")), deadline=None, database=None,
    derandomize=ON_CI,   # CI: the same examples every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Every folder a fuzzed config may name lives under this one, created once: check writes nothing anyway.
SCRATCH = Path(tempfile.mkdtemp(prefix="ncbackup-fuzz-"))
(SCRATCH / "log").mkdir()
(SCRATCH / "home").mkdir()
(SCRATCH / "data").mkdir()
(SCRATCH / "data" / "a.txt").write_text("alpha\n")

@pytest.fixture(scope="module", autouse=True)
def _remove_scratch():
    yield
    shutil.rmtree(SCRATCH, ignore_errors=True)


SEED = {
    "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(SCRATCH / "work"), "HOME_FOLDER": str(SCRATCH / "home"),
                "LOG_FOLDER": str(SCRATCH / "log") + "/", "LOCAL_BACKUP": str(SCRATCH / "backups"),
                "DISK_SPACE_THRESHOLD": "20%", "DISK_SPACE_CHECK": "True"},
    "FILESET": {"ACTION": "execute", "NAME": "filesbackup",
                "PARAMETERS": {"FILESET_INCLUDE": str(SCRATCH / "data"), "FILESET_EXCLUDE": ""}},
    "COMPRESSION": {"ACTION": "execute", "NAME": "compression", "PARAMETERS": {"REMOVE_OBJECTIVES": "True"}},
    "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption",
                   "PARAMETERS": {"KEY_FILE": str(SCRATCH / "missing-key.txt"), "FILE_SIZE": "1"}},
    "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
    "SIZE": {"ACTION": "load", "FROM": "tools", "FILENAME": "size_calculation", "CLASS": "SizeCalculation"},
    "QA": {"ACTION": "load", "FROM": "qa", "CLASS": "QA"},
    "__NOTE": "a comment",
}
SEED_BYTES = json.dumps(SEED, indent=2).encode()

# Destinations that would reach a network or start a program: never drawn (check would try to connect).
LOCAL_ONLY = frozenset(STORAGES) - {"local"}


def check_in_process(data: bytes) -> tuple[int, str]:
    """Write data as the config, run `ncbackup check -c` through main; return (exit status, stderr)."""
    path = SCRATCH / "conf.json"
    path.write_bytes(data)
    # Encoded as a real process's streams are: a character UTF-8 cannot hold fails on stdout, as it would.
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        exit_status = main(["check", "-c", str(path)])
    stdout.flush()
    stderr.flush()
    return exit_status, stderr.buffer.getvalue().decode("utf-8")


def loads_or_error(path: Path) -> ConfigError | None:
    try:
        load_config(path)
    except ConfigError as error:
        return error
    return None


def assert_one_sentence_or_a_verdict(data: bytes) -> None:
    exit_status, stderr = check_in_process(data)   # an exception here is the bug this module looks for
    event(f"exit {exit_status}")
    assert "Traceback" not in stderr
    assert exit_status in (0, 2, 3), stderr
    errors = [line for line in stderr.splitlines() if line.startswith("ncbackup: error: ")]
    if exit_status == 3:
        assert len(errors) == 1 and errors[0] == stderr.splitlines()[-1], stderr
        assert "\n" not in errors[0] and len(errors[0]) < 1000, stderr
    else:
        assert errors == [], stderr
    if loads_or_error(SCRATCH / "conf.json") is not None:
        assert exit_status == 3 and errors[0].startswith(f"ncbackup: error: {SCRATCH / 'conf.json'}"), stderr


@st.composite
def mutated_seed(draw) -> bytes:
    """The seed config with a few bytes deleted, inserted, replaced or cut: near-valid files."""
    data = bytearray(SEED_BYTES)
    interesting = st.sampled_from(list(b'{}[]",:\\ \n0-e.tfn') + [0, 0x7F, 0xC3, 0xFF, 0xEF])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["delete", "insert", "replace", "cut"]))
        if operation == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif operation == "insert":
            data[at:at] = bytes([draw(interesting | st.integers(0, 255))])
        elif operation == "replace" and at < len(data):
            data[at] = draw(interesting | st.integers(0, 255))
        elif operation == "cut":
            del data[at:]
    return bytes(data)


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def words(*known: str):
    return st.sampled_from(known) | st.text(max_size=12)


def values(*known: str):
    """Known good values, their case variants, and anything JSON can hold."""
    return st.sampled_from(known) | st.sampled_from(known).map(str.upper) | json_values


GENERAL_KEYS = {
    "HOSTNAME": values("web1", "", "..", "a/b"),
    "WORK_FOLDER": values(str(SCRATCH / "work"), "/", "c:\\", "", "relative"),
    "HOME_FOLDER": values(str(SCRATCH / "home"), ""),
    "LOG_FOLDER": values(str(SCRATCH / "log") + "/", str(SCRATCH / "log" / "x.log"), str(SCRATCH / "nope" / "x.log")),
    "LOCAL_BACKUP": values(str(SCRATCH / "backups")),
    "DISK_SPACE_CHECK": values("True", "False", "yes", "0"),
    "DISK_SPACE_THRESHOLD": values("20", "20%", "0", "100", "101", "-1", "nan", "inf", "1e400"),
    "MESSAGE_CONFIG_COMMAND": values("http://127.0.0.1:9/report", ""),
    "MESSAGE_CONFIG_METHOD": values("post", "mail"),
}
PARAMETER_KEYS = {
    "FILESET_INCLUDE": values(str(SCRATCH / "data"), str(SCRATCH / "nope"), ""),
    "FILESET_EXCLUDE": values("", "*.log"),
    "OBJECTIVES": values(str(SCRATCH / "data"), ""),
    "TARGETS": values(str(SCRATCH / "data")),
    "DESTINATION": (st.sampled_from(["local", "", "LOCAL"])
                    | st.text(max_size=12).filter(lambda text: text.strip().lower() not in LOCAL_ONLY)),
    "REMOVE_OBJECTIVES": values("True", "False", "maybe"),
    "KEY_FILE": values(str(SCRATCH / "missing-key.txt"), str(SCRATCH), ""),
    "FILE_SIZE": values("1", "0", "-5", "1.5", "x"),
    "ARGS_DICT": values("{'LOCAL_BACKUP': '/tmp/x'}", "{'a': ", "BUCKET=x", "{}"),
    "PREFIX_FOLDER": values("mydump", "../up", ""),
    "COMPRESSION_LEVEL": values("3", "99", "fast"),
}
SECTION_KEYS = {
    "ACTION": values("execute", "load", "launch", ""),
    "NAME": values("filesbackup", "compression", "encryption", "storage", "ghost", "rsync"),
    "FROM": values("tools", "qa", "myplugins"),
    "CLASS": values("SizeCalculation", "QA", "Nope"),
    "FILENAME": values("size_calculation", "qa"),
    "EXECUTABLE": values("run.sh", ""),
    "EXECUTE_WITH": values("bash", "python", ""),
    "PARAMETERS_MODE": values("named", "flat", "odd"),
    "TIMEOUT": values("10", "0", "-1", "soon", "inf"),
    "KEEP": values("7", "x"),
    "PARAMETERS": st.fixed_dictionaries({}, optional=PARAMETER_KEYS) | json_values,
}


def objects(keys: dict) -> st.SearchStrategy[dict]:
    """Objects made mostly of known keys (any subset, any values), now and then an unknown one."""
    return st.fixed_dictionaries({}, optional=keys).flatmap(
        lambda known: st.dictionaries(st.text(max_size=10), json_values, max_size=2).map(lambda extra: {**extra, **known}))


configs = st.one_of(
    json_values,                                                     # any JSON at all
    st.dictionaries(st.text(max_size=10), json_values, max_size=4),  # any object
    st.fixed_dictionaries({"GENERAL": objects(GENERAL_KEYS)}).flatmap(
        lambda general: st.dictionaries(st.sampled_from(["FILESET", "COMPRESSION", "ENCRYPTION", "STORAGE", "S", "x"])
                                        | st.text(max_size=6), objects(SECTION_KEYS) | json_values, max_size=4)
        .map(lambda sections: {**general, **sections})),
)


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_get_an_exit_status_and_at_most_one_sentence(data):
    assert_one_sentence_or_a_verdict(data)


@FUZZ
@given(data=mutated_seed())
def test_damaged_configs_get_an_exit_status_and_at_most_one_sentence(data):
    assert_one_sentence_or_a_verdict(data)


@FUZZ
@given(document=configs, indent=st.sampled_from([None, 1]))
def test_random_json_structures_get_an_exit_status_and_at_most_one_sentence(document, indent):
    assert_one_sentence_or_a_verdict(json.dumps(document, indent=indent).encode())


@FUZZ
@given(document=configs)
def test_the_loader_and_planner_raise_only_config_errors(document):
    from ncbackup.config import loads_config
    from ncbackup.engine.plan import build_plan

    try:
        build_plan(loads_config(json.dumps(document), path=SCRATCH / "conf.json"))
    except BackupError as error:    # ConfigError, or a component refusing to be built; anything else is a bug
        assert str(error).strip()


def test_the_seed_itself_passes_check():
    exit_status, stderr = check_in_process(SEED_BYTES)
    assert exit_status == 0, stderr


NASTY_FILES = {
    "nul_bytes": b"\x00" * 50,
    "utf16_with_bom": '{"GENERAL": {}}'.encode("utf-16"),
    "deep_nesting": b"[" * 100_000,
    "lone_surrogate_escape": b'{"GENERAL": {"HOSTNAME": "\\ud800"}}',
    "huge_number": b'{"GENERAL": {"DISK_SPACE_THRESHOLD": 1e999999}}',
    "huge_integer": b'{"GENERAL": {"DISK_SPACE_THRESHOLD": 1' + b"0" * 5000 + b"}}",
    "general_as_list": b'{"GENERAL": [1, 2]}',
    "binary_noise": bytes(range(256)) * 4,
}


@pytest.mark.parametrize("name", sorted(NASTY_FILES))
def test_nasty_files_exit_3_in_one_sentence(name):
    exit_status, stderr = check_in_process(NASTY_FILES[name])
    assert exit_status == 3 and stderr.startswith(f"ncbackup: error: {SCRATCH / 'conf.json'}"), stderr
    assert stderr.count("\n") == 1, stderr


@pytest.mark.parametrize("name", ["deep_nesting", "huge_integer", "lone_surrogate_escape", "nul_bytes"])
def test_nasty_files_through_the_real_command_exit_3_in_one_sentence(tmp_path, ncbackup_cmd, name):
    path = tmp_path / "conf.json"
    path.write_bytes(NASTY_FILES[name])
    completed = subprocess.run([*ncbackup_cmd, "check", "-c", str(path)], capture_output=True, text=True,
                               timeout=120, env={**os.environ, "PYTHONPATH": str(REPO / "src")}, check=False)
    assert completed.returncode == 3, completed.stderr
    assert completed.stderr.startswith(f"ncbackup: error: {path}") and completed.stderr.count("\n") == 1, completed.stderr
