"""Running plans for real: the barrier rule, REMOVE_OBJECTIVES safety, the failure policy, undo hooks,
the disk space guard (the single-instance lock: test_lock.py). Data goes through the real pipeline into real
local storage and is read back and compared byte for byte."""

from __future__ import annotations

import io
import json
import os
import tarfile
import textwrap
from pathlib import Path

import pytest
import zstandard

from ncbackup.commands.run import run_config
from ncbackup.config import load_config
from ncbackup.engine.restore import open_plain_stream
from ncbackup.engine.result import Status
from ncbackup.exitcodes import EXIT_FAILED, EXIT_UNUSABLE
from ncbackup.setformat import list_sets
from ncbackup.stages.keys import write_identity_file
from ncbackup.storage.local import LocalStorage
from tests.support import ensure_signing_key, small_tmpfs, trust_of


def write_config(tmp_path: Path, sections: dict, *, general: dict | None = None) -> Path:
    general_section = {
        "HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "HOME_FOLDER": str(tmp_path / "home"),
        "LOG_FOLDER": str(tmp_path / "log"), "LOCAL_BACKUP": str(tmp_path / "backups"),
    }
    general_section.update(general or {})
    (tmp_path / "log").mkdir(exist_ok=True)
    # The signing key sets get (beside KEY_FILE, or beside the config without ENCRYPTION): made up front, so a
    # first run does not warn that it created one.
    ensure_signing_key(tmp_path)
    path = tmp_path / "conf.json"
    path.write_text(json.dumps({"GENERAL": general_section, **sections}, indent=2))
    return path


def add_script(tmp_path: Path, name: str, body: str, *, executable: str | None = None) -> dict:
    folder = tmp_path / "home" / name
    folder.mkdir(parents=True, exist_ok=True)
    executable = executable or f"{name}.py"
    (folder / executable).write_text(textwrap.dedent(body))
    return {"ACTION": "execute", "NAME": name, "EXECUTABLE": executable}


def make_tree(root: Path) -> dict[str, bytes]:
    files = {"a.txt": b"alpha\n", "sub/b.bin": os.urandom(300_000), "sub/deeper/c": b""}
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return files


def run(path: Path):
    return run_config(load_config(path), level="CRITICAL")


def test_barrier_group_lands_in_its_folder_for_the_script_and_the_next_group_stores_it(tmp_path):
    data = tmp_path / "data"
    files = make_tree(data)
    key_file = tmp_path / "key.txt"
    write_identity_file(key_file)
    compressed = tmp_path / "work" / "compressed"
    # The external script asserts it sees the compressed tar the barrier rule promised.
    checker = add_script(tmp_path, "checker", f"""
        import pathlib, sys
        found = sorted(p.name for p in pathlib.Path({str(compressed)!r}).iterdir())
        print("found", found)
        sys.exit(0 if found == ["data.tar.zst"] else 7)
    """)
    path = write_config(tmp_path, {
        "COMPRESSION": {"ACTION": "execute", "NAME": "compression",
                        "PARAMETERS": {"OBJECTIVES": str(data), "REMOVE_OBJECTIVES": "False"}},
        "CHECK": checker,
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption",
                       "PARAMETERS": {"KEY_FILE": str(key_file), "FILE_SIZE": "0", "REMOVE_OBJECTIVES": "True"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
    })
    result = run(path)
    assert [(s.name, s.kind, s.status) for s in result.steps] == [
        ("COMPRESSION", "to-folder", Status.OK), ("CHECK", "execute", Status.OK),
        ("ENCRYPTION+STORAGE", "backup-set", Status.OK)], result.summary()
    # The folder this run wrote inside WORK_FOLDER was removed after use (REMOVE_OBJECTIVES).
    assert not compressed.exists()
    storage = LocalStorage(tmp_path / "backups" / "web1")
    (info,) = list_sets(storage, trust_of(path))
    assert info.is_complete
    (stream,) = info.manifest.streams
    assert stream.cipher == "age"
    with open_plain_stream(storage, info.manifest, stream.name, key_file=key_file) as (plain, _stored):
        compressed_tar = plain.read()
    tar_bytes = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(compressed_tar)).read()
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as archive:
        restored = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
    prefix = str(data).lstrip("/")
    assert restored == {f"{prefix}/{name}": content for name, content in files.items()}


def test_remove_objectives_refuses_a_user_folder(tmp_path):
    data = tmp_path / "data"
    make_tree(data)
    path = write_config(tmp_path, {
        "COMPRESSION": {"ACTION": "execute", "NAME": "compression",
                        "PARAMETERS": {"OBJECTIVES": str(data), "REMOVE_OBJECTIVES": "True"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
    })
    result = run(path)
    assert (data / "a.txt").read_bytes() == b"alpha\n"
    assert any("refused to remove" in warning for step in result.steps for warning in step.warnings)


def test_remove_objectives_refuses_a_work_folder_path_this_run_did_not_write(tmp_path):
    stale = tmp_path / "work" / "files"
    make_tree(stale)
    path = write_config(tmp_path, {
        "COMPRESSION": {"ACTION": "execute", "NAME": "compression",
                        "PARAMETERS": {"OBJECTIVES": str(stale), "REMOVE_OBJECTIVES": "True"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
    })
    result = run(path)
    assert (stale / "a.txt").exists()
    assert any("this run did not write it" in w for step in result.steps for w in step.warnings)


def test_failed_step_fails_the_run_but_independent_later_steps_still_run(tmp_path):
    failing = add_script(tmp_path, "failing", "import sys\nprint('boom on stdout')\nsys.exit(3)\n")
    marker = tmp_path / "ran.txt"
    later = add_script(tmp_path, "later", f"open({str(marker)!r}, 'w').write('yes')\n")
    result = run(write_config(tmp_path, {"FAIL": failing, "LATER": later}))
    assert [s.status for s in result.steps] == [Status.FAILED, Status.OK]
    assert "exited with status 3" in result.steps[0].error and "boom on stdout" in result.steps[0].error
    assert marker.read_text() == "yes"
    assert result.exit_status == EXIT_FAILED


def test_a_step_reading_what_a_failed_step_should_have_written_is_skipped(tmp_path):
    # COMPRESSION of a missing folder fails; the script reading its DESTINATION is skipped.
    reader = add_script(tmp_path, "reader", "print('should not run')\n")
    reader["PARAMETERS"] = {"OBJECTIVES": str(tmp_path / "work" / "compressed")}
    path = write_config(tmp_path, {
        "COMPRESSION": {"ACTION": "execute", "NAME": "compression",
                        "PARAMETERS": {"OBJECTIVES": str(tmp_path / "missing")}},
        "READER": reader,
    })
    result = run(path)
    assert [s.status for s in result.steps] == [Status.FAILED, Status.SKIPPED]
    assert "missing" in result.steps[0].error


def test_undo_commands_run_even_when_a_later_step_fails(tmp_path):
    mounted = tmp_path / "mounted"
    path = write_config(tmp_path, {
        "SNAPSHOT": {"ACTION": "execute", "NAME": "rsync", "PARAMETERS": {
            "ORIGIN_AND_TARGETS_PARAMS": {"create": f"mkdir {mounted}"},
            "UNDO_COMMANDS": {"remove": f"rmdir {mounted}"}}},
        "FAIL": add_script(tmp_path, "failing", "import sys\nsys.exit(1)\n"),
    })
    result = run(path)
    assert result.steps[0].status == Status.OK and result.steps[1].status == Status.FAILED
    assert not mounted.exists()


def test_command_runner_splits_like_a_shell_but_never_runs_one(tmp_path):
    path = write_config(tmp_path, {
        "CMD": {"ACTION": "execute", "NAME": "rsync", "PARAMETERS": {"ORIGIN_AND_TARGETS_PARAMS": {
            "quoted": f"touch '{tmp_path}/a b'", "dollar": f"touch {tmp_path}/literal$HOME"}}},
    })
    result = run(path)
    assert result.steps[0].status == Status.OK
    assert (tmp_path / "a b").exists()
    # A shell would have expanded $HOME; an argument list keeps it as written.
    assert (tmp_path / "literal$HOME").exists()


def test_unwritable_work_folder_is_an_unusable_config_naming_the_key(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    path = write_config(tmp_path, {}, general={"WORK_FOLDER": str(blocker / "work")})
    result = run(path)
    assert result.exit_status == EXIT_UNUSABLE
    assert "WORK_FOLDER" in result.error and str(blocker / "work") in result.error


@pytest.fixture
def tiny_full_disk(tmp_path):
    with small_tmpfs(tmp_path / "tiny", size_bytes=1024 * 1024) as mount_point:
        (mount_point / "filler").write_bytes(b"\0" * (1024 * 1024 - 8 * 1024))
        yield mount_point


def test_disk_space_guard_stops_the_run_below_a_tenth_of_the_threshold(tmp_path, tiny_full_disk):
    marker = tmp_path / "ran.txt"
    script = add_script(tmp_path, "s", f"open({str(marker)!r}, 'w').write('x')\n")
    path = write_config(tmp_path, {"S": script}, general={"WORK_FOLDER": str(tiny_full_disk / "work"),
                                                           "DISK_SPACE_THRESHOLD": "20"})
    (tiny_full_disk / "work").mkdir()
    result = run(path)
    assert result.steps[0].status == Status.SKIPPED and not marker.exists()
    assert result.exit_status == EXIT_FAILED and "the run stops" in result.error


def test_disk_space_check_off_lets_the_run_go_on_a_full_disk(tmp_path, tiny_full_disk):
    marker = tmp_path / "ran.txt"
    script = add_script(tmp_path, "s", f"open({str(marker)!r}, 'w').write('x')\n")
    path = write_config(tmp_path, {"S": script}, general={"WORK_FOLDER": str(tiny_full_disk / "work"),
                                                           "DISK_SPACE_CHECK": "False"})
    (tiny_full_disk / "work").mkdir()
    assert run(path).exit_status == 0 and marker.exists()


def test_default_compression_inputs_written_by_this_run_are_removed(tmp_path):
    data = tmp_path / "data"
    make_tree(data)
    path = write_config(tmp_path, {
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "HOOK": add_script(tmp_path, "hook", "print('between')\n"),
        # No OBJECTIVES: every subfolder of WORK_FOLDER, i.e. WORK_FOLDER/files written above.
        "COMPRESSION": {"ACTION": "execute", "NAME": "compression"},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
    })
    result = run(path)
    assert [s.status for s in result.steps][:2] == [Status.OK, Status.OK], result.summary()
    assert result.steps[2].error is None, result.summary()
    assert not (tmp_path / "work" / "files").exists()
    (info,) = list_sets(LocalStorage(tmp_path / "backups" / "web1"), trust_of(path))
    assert [s.name for s in info.manifest.streams] == ["files"]


def test_in_a_folder_that_existed_only_the_files_this_run_wrote_are_removed(tmp_path):
    data = tmp_path / "data"
    make_tree(data)
    leftover = tmp_path / "work" / "files" / "old-dump.sql"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("from an earlier run")
    path = write_config(tmp_path, {
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "HOOK": add_script(tmp_path, "hook", "print('between')\n"),
        "COMPRESSION": {"ACTION": "execute", "NAME": "compression",
                        "PARAMETERS": {"OBJECTIVES": str(tmp_path / "work" / "files")}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
    })
    result = run(path)
    assert sorted(p.name for p in leftover.parent.iterdir()) == ["old-dump.sql"]
    assert any("left 1 entry" in w for w in result.steps[2].warnings), result.summary()


def test_a_run_with_a_missing_include_path_archives_the_others_and_exits_2_naming_it(tmp_path):
    data = tmp_path / "data"
    files = make_tree(data)
    missing = tmp_path / "unmounted-disk"
    path = write_config(tmp_path, {
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": f"{data} {missing}"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
    })
    result = run(path)
    assert result.exit_status == EXIT_FAILED
    (step,) = result.steps
    assert step.error.count(str(missing)) == 1 and f"FILESET_INCLUDE path {missing} does not exist" in step.error
    storage = LocalStorage(tmp_path / "backups" / "web1")
    (info,) = list_sets(storage, trust_of(path))
    assert info.manifest is not None and info.manifest.failed_streams == []
    with open_plain_stream(storage, info.manifest, "files") as (plain, _stored):
        with tarfile.open(fileobj=io.BytesIO(plain.read()), mode="r:") as archive:
            names = {member.name for member in archive.getmembers() if member.isfile()}
    assert names == {f"{str(data).lstrip('/')}/{relative}" for relative in files}


def test_every_storage_failing_is_said_once(tmp_path):
    data = tmp_path / "data"
    make_tree(data)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the storage folder should be")
    path = write_config(tmp_path, {
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage",
                    "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": f"{{'LOCAL_BACKUP': '{blocker / 'b'}'}}"}},
    })
    result = run(path)
    (step,) = result.steps
    assert result.exit_status == EXIT_FAILED
    assert "Not a directory" in step.error
    assert step.error.count("every storage") <= 1, step.error


def test_a_sources_own_report_reaches_the_step_once():
    from ncbackup.engine.result import StepResult
    from ncbackup.engine.run import _absorb_set_result
    from ncbackup.engine.setresult import SetResult, StreamResult
    from ncbackup.sources.base import StreamReport

    report = StreamReport(warnings=["FLUSH BINARY LOGS failed on instance 3306"], notes=["binary logging is off"])
    report.errors.append("FILESET_INCLUDE path /srv/x does not exist")
    step = StepResult(name="MYSQL+STORAGE", kind="backup-set")
    _absorb_set_result(SetResult(set_id="20261130T000000Z", streams=[StreamResult(name="mysql-3306-shop", kind="mysql")],
                                 source_reports=[report]), step)
    step.finalize()
    assert step.warnings == ["FLUSH BINARY LOGS failed on instance 3306"] and step.notes == ["binary logging is off"]
    assert step.status == Status.FAILED and step.error == "FILESET_INCLUDE path /srv/x does not exist"


def test_incremental_on_a_fileset_that_goes_to_a_folder_is_a_warning_not_a_silent_full(tmp_path):
    data = tmp_path / "data"
    make_tree(data)
    key_file = tmp_path / "key.txt"
    write_identity_file(key_file)
    path = write_config(tmp_path, {
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup",
                    "PARAMETERS": {"FILESET_INCLUDE": str(data), "INCREMENTAL": "true"}},
        "CHECK": add_script(tmp_path, "checker", "print('a script between the sections')\n"),
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption",
                       "PARAMETERS": {"KEY_FILE": str(key_file), "FILE_SIZE": "0", "REMOVE_OBJECTIVES": "True"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
    }, general={"STATE_FOLDER": str(tmp_path / "state")})
    result = run(path)
    first = result.steps[0]
    assert (first.name, first.kind) == ("FILESET", "to-folder"), result.summary()
    assert any("INCREMENTAL of section FILESET is ignored" in warning for warning in first.warnings), first.warnings
