"""Planning: fusion of data sections, barriers, folder inputs, built-in SIZE/QA placement, bad sections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ncbackup.config import loads_config
from ncbackup.engine.builtins import builtin_key
from ncbackup.engine.plan import build_plan
from ncbackup.errors import ConfigError


def make_config(tmp_path: Path, sections: dict, *, general: dict | None = None):
    general_section = {
        "HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "HOME_FOLDER": str(tmp_path / "home"),
        "LOG_FOLDER": str(tmp_path / "ncbackup.log"), "LOCAL_BACKUP": str(tmp_path / "backups"),
    }
    general_section.update(general or {})
    text = json.dumps({"GENERAL": general_section, **sections}, indent=2)
    path = tmp_path / "conf.json"
    path.write_text(text)
    return loads_config(text, path=path)


def script(tmp_path: Path, name: str = "hook", executable: str = "hook.sh") -> dict:
    folder = tmp_path / "home" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / executable).write_text("#!/bin/sh\nexit 0\n")
    return {"ACTION": "execute", "NAME": name, "EXECUTABLE": executable, "EXECUTE_WITH": "sh"}


COMPRESSION = {"ACTION": "execute", "NAME": "compression"}
STORAGE = {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}}


def test_builtin_keys_follow_the_interface(tmp_path):
    config = make_config(tmp_path, {
        "A": {"ACTION": "execute", "NAME": "filesbackup"},
        "B": {"ACTION": "execute", "NAME": "sqlite_backup", "PARAMETERS": {"PATHS": "/x.db"}},
        "C": {"ACTION": "load", "FROM": "postgres", "CLASS": "PostgresBackup"},
        "D": {"ACTION": "load", "FROM": "tools", "FILENAME": "size_calculation", "CLASS": "SizeCalculation"},
        "E": {"ACTION": "load", "FROM": "qa", "CLASS": "QA"},
        "F": {"ACTION": "execute", "NAME": "mything"},
        "G": {"KEEP": {"DAILY": {"NUMBER": "7"}}},
    })
    keys = [builtin_key(section) for section in config.sections]
    assert keys == ["filesbackup", "sqlite", "postgres", "size", "qa", None, None]


def test_consecutive_data_sections_fuse_into_one_backup_set_and_size_runs_after_it(tmp_path):
    config = make_config(tmp_path, {
        "COMPRESSION": {**COMPRESSION, "PARAMETERS": {"OBJECTIVES": str(tmp_path / "data")}},
        "SIZE": {"ACTION": "load", "FROM": "tools", "FILENAME": "size_calculation", "CLASS": "SizeCalculation"},
        "STORAGE": STORAGE,
        "STORAGE2": STORAGE,
    })
    plan = build_plan(config)
    assert [(step.kind, step.name) for step in plan.steps] == [
        ("backup-set", "COMPRESSION+STORAGE+STORAGE2"), ("size", "SIZE")]
    assert "writes a backup set under web1/" in plan.steps[0].description


def test_external_script_between_data_sections_is_a_barrier_and_the_group_before_goes_to_its_folder(tmp_path):
    (tmp_path / "data").mkdir()
    config = make_config(tmp_path, {
        "COMPRESSION": {**COMPRESSION, "PARAMETERS": {"OBJECTIVES": str(tmp_path / "data")}},
        "SCRIPT": script(tmp_path),
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption"},
        "STORAGE": STORAGE,
    })
    plan = build_plan(config)
    assert [step.kind for step in plan.steps] == ["to-folder", "execute", "backup-set"]
    assert plan.steps[0].writes == [tmp_path / "work" / "compressed"]
    # ENCRYPTION starts a group after the barrier: it reads WORK_FOLDER/compressed by default.
    assert plan.steps[2].reads == [tmp_path / "work" / "compressed"]


def test_destination_names_the_folder_of_a_barrier_group(tmp_path):
    config = make_config(tmp_path, {
        "COMPRESSION": {**COMPRESSION, "PARAMETERS": {"OBJECTIVES": str(tmp_path / "data"),
                                                      "DESTINATION": str(tmp_path / "out")}},
        "SCRIPT": script(tmp_path),
    })
    plan = build_plan(config)
    assert plan.steps[0].writes == [tmp_path / "out"]


def test_a_source_after_a_storage_starts_a_new_group(tmp_path):
    config = make_config(tmp_path, {
        "C1": {**COMPRESSION, "PARAMETERS": {"OBJECTIVES": str(tmp_path / "a")}},
        "S1": STORAGE,
        "C2": {**COMPRESSION, "PARAMETERS": {"OBJECTIVES": str(tmp_path / "b")}},
        "S2": STORAGE,
    })
    assert [step.name for step in build_plan(config).steps] == ["C1+S1", "C2+S2"]


def test_configuration_only_sections_are_not_steps(tmp_path):
    config = make_config(tmp_path, {"CLEANUP": {"BUCKET": "b", "KEEP": {"DAILY": {"NUMBER": "7"}}}})
    assert build_plan(config).steps == []


def test_missing_external_program_is_a_config_error_naming_section_and_line(tmp_path):
    config = make_config(tmp_path, {"SCRIPT": {"ACTION": "execute", "NAME": "nothere"}})
    with pytest.raises(ConfigError) as caught:
        build_plan(config)
    message = str(caught.value)
    assert "nothere" in message and "SCRIPT" in message and "conf.json" in message and "line" in message


def test_missing_executable_in_an_existing_folder_is_named(tmp_path):
    (tmp_path / "home" / "tool").mkdir(parents=True)
    config = make_config(tmp_path, {"SCRIPT": {"ACTION": "execute", "NAME": "tool"}})
    with pytest.raises(ConfigError, match=r"tool\.py does not exist"):
        build_plan(config)


def test_missing_plugin_module_is_a_config_error(tmp_path):
    config = make_config(tmp_path, {"P": {"ACTION": "load", "FROM": "myplug", "CLASS": "Thing"}})
    with pytest.raises(ConfigError, match=r"myplug\.py does not exist"):
        build_plan(config)


def _legacy_storage(action: str, tmp_path: Path) -> dict:
    return {"ACTION": "execute", "NAME": "storage",
            "PARAMETERS": {"DESTINATION": "local", "ACTION": action,
                           "ARGS_DICT": repr({"LOCAL_BACKUP": str(tmp_path / "backups")})}}


def test_storage_list_and_remove_actions_are_steps_of_their_own_after_the_group(tmp_path):
    from ncbackup.engine.plan import StepKind, StorageStep

    config = make_config(tmp_path, {
        "F": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(tmp_path)}},
        "S": STORAGE,
        "LISTING": _legacy_storage("list", tmp_path),
        "PRUNING": _legacy_storage("REMOVE", tmp_path),
        "CLEANUP": {"KEEP": {"DAILY": {"NUMBER": "7"}}},
    })
    plan = build_plan(config)
    assert [(step.kind, step.name) for step in plan.steps] == [
        (StepKind.BACKUP_SET, "F+S"), (StepKind.LIST, "LISTING"), (StepKind.PRUNE, "PRUNING")]
    group_step = plan.steps[0]
    assert [section.name for section, _storage in group_step.group.storages] == ["S"]   # never a storage of the set
    listing, pruning = plan.steps[1], plan.steps[2]
    assert isinstance(listing, StorageStep) and isinstance(pruning, StorageStep)
    assert pruning.policy is not None and listing.policy is None
    assert "no CLEANUP rule keeps" in pruning.description


def test_storage_remove_action_without_cleanup_is_a_config_error_naming_the_section(tmp_path):
    config = make_config(tmp_path, {"PRUNING": _legacy_storage("remove", tmp_path)})
    with pytest.raises(ConfigError, match="section PRUNING: storage ACTION 'remove' prunes by the CLEANUP rules"):
        build_plan(config)


def test_unknown_storage_action_is_refused_clearly(tmp_path):
    config = make_config(tmp_path, {"S": _legacy_storage("sync", tmp_path)})
    with pytest.raises(ConfigError, match="storage ACTION 'sync' is unknown; use upload, list or remove"):
        build_plan(config)


def test_command_runner_section_is_a_barrier(tmp_path):
    config = make_config(tmp_path, {
        "C": {**COMPRESSION, "PARAMETERS": {"OBJECTIVES": str(tmp_path / "a")}},
        "SNAP": {"ACTION": "execute", "NAME": "rsync",
                 "PARAMETERS": {"ORIGIN_AND_TARGETS_PARAMS": {"one": "true", "two": "echo 'a b'"}}},
        "S": STORAGE,
    })
    plan = build_plan(config)
    assert [step.kind for step in plan.steps] == ["to-folder", "commands", "backup-set"]
    assert [c.argv for c in plan.steps[1].runner.commands] == [["true"], ["echo", "a b"]]


def test_every_step_has_a_one_line_description(tmp_path):
    config = make_config(tmp_path, {
        "C": {**COMPRESSION, "PARAMETERS": {"OBJECTIVES": str(tmp_path / "a")}},
        "SCRIPT": script(tmp_path),
        "QA": {"ACTION": "load", "FROM": "qa", "CLASS": "QA"},
    })
    for step in build_plan(config).steps:
        assert step.description and "\n" not in step.description

