"""Loading whole configs: order, comments, duplicates, sections, legacy spellings, and every section error."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from ncbackup.config import Config, Position, load_config, loads_config
from ncbackup.config.types import LegacyBool, LegacyInt, PathList, WordList, parse_options
from ncbackup.errors import ConfigError
from tests.support import run_python_unprivileged, unreadable_file

DATA = Path(__file__).parent / "data"
FILE = Path("conf.json")


def load(text: str) -> Config:
    return loads_config(text, path=FILE)


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return caught.value


def section(config: Config, name: str):
    return next(item for item in config.sections if item.name == name)


# --- the seed README's example, verbatim -------------------------------------------------------------


def test_seed_readme_example_loads_with_sections_in_file_order() -> None:
    config = load_config(DATA / "seed_readme_example.json")
    assert [item.name for item in config.sections] == [
        "FILESET", "SIZE", "DBSBACKUP", "COMPRESSION", "ENCRYPTION", "STORAGE",
    ]
    assert config.warnings == []
    assert config.general.hostname == "WIN-G5AKB09AALD"
    assert config.general.entries["WORK_FOLDER"] == "c:\\backup"

    fileset = section(config, "FILESET")
    assert (fileset.action, fileset.module, fileset.execute_with, fileset.executable) == (
        "execute", "filesbackup", "python", None,  # "EXECUTABLE": "" means the default
    )
    assert fileset.parameters["FILESET_INCLUDE"] == "/etc /Users/cncuser/Documents/"
    assert fileset.position == Position(DATA / "seed_readme_example.json", 9, 7)
    assert fileset.parameter_positions["FILESET_EXCLUDE"].line == 16

    size = section(config, "SIZE")
    assert (size.action, size.module, size.filename, size.class_name) == (
        "load", "tools", "size_calculation", "SizeCalculation",
    )
    assert size.parameters == {"OBJECTIVES": "/Users/cncuser/Downloads/backup/encrypted"}

    mysql = section(config, "DBSBACKUP")
    assert (mysql.module, mysql.executable, mysql.execute_with) == ("mysql_backup", "mysql_dump.py", "python")
    assert mysql.parameters["MY_INSTANCES"] == "3306"

    compression = section(config, "COMPRESSION")
    assert (compression.executable, compression.execute_with) == (None, None)
    assert compression.parameters["REMOVE_OBJECTIVES"] == "True"

    storage = section(config, "STORAGE")
    assert storage.parameters["DESTINATION"] == "s3"
    assert storage.parameters["BUCKET_NAME"] == "cncbackup"


class _FilesetOptions(BaseModel):
    include: PathList = Field(alias="FILESET_INCLUDE")
    exclude: PathList = Field(default_factory=list, alias="FILESET_EXCLUDE")


class _EncryptionOptions(BaseModel):
    key_file: Path = Field(alias="KEY_FILE")
    file_size_mb: LegacyInt = Field(4000, alias="FILE_SIZE")
    objectives: PathList = Field(default_factory=list, alias="OBJECTIVES")
    is_remove_objectives_on: LegacyBool = Field(True, alias="REMOVE_OBJECTIVES")


class _MysqlOptions(BaseModel):
    instances: WordList = Field(default_factory=lambda: ["3306"], alias="MY_INSTANCES")


def test_seed_readme_example_values_parse_into_typed_options() -> None:
    config = load_config(DATA / "seed_readme_example.json")
    fileset = parse_options(_FilesetOptions, section(config, "FILESET"))
    assert fileset.include == [Path("/etc"), Path("/Users/cncuser/Documents")]
    assert fileset.exclude == [
        Path("/Users/cncuser/Documents/Trabajo"),
        Path("/Users/cncuser/Documents/Install"),
        Path("/Users/cncuser/Documents/Personal"),
    ]
    encryption = parse_options(_EncryptionOptions, section(config, "ENCRYPTION"))
    assert encryption.file_size_mb == 1
    assert encryption.is_remove_objectives_on is True
    assert encryption.objectives == [Path("/Users/cncuser/Downloads/backup/compressed")]
    assert parse_options(_MysqlOptions, section(config, "DBSBACKUP")).instances == ["3306"]


# --- order, comments, duplicates ---------------------------------------------------------------------


def test_general_may_appear_anywhere_and_sections_keep_file_order() -> None:
    config = load('{"Z": {}, "A": {}, "GENERAL": {"HOSTNAME": "h"}, "M": {}}')
    assert [item.name for item in config.sections] == ["Z", "A", "M"]
    assert config.general.hostname == "h"


def test_comment_keys_are_ignored_at_every_level() -> None:
    config = load(
        """{
  "__READTHIS": "top-level note",
  "__Methods": {"anything": ["goes", 1]},
  "GENERAL": {"__note": "x", "HOSTNAME": "h"},
  "CLEANUP": {"__why": "y", "KEEP": {"__c": 1, "DAILY": {"NUMBER": "7", "__d": 2}}},
  "A": {"ACTION": "execute", "NAME": "n", "__x": 1, "PARAMETERS": {"__p": "q", "K": "v"}}
}"""
    )
    assert [item.name for item in config.sections] == ["CLEANUP", "A"]
    assert config.general.entries == {"HOSTNAME": "h"}
    assert section(config, "CLEANUP").extra == {"KEEP": {"DAILY": {"NUMBER": "7"}}}
    assert section(config, "A").parameters == {"K": "v"}
    assert section(config, "A").raw_parameters == {"K": "v"}
    assert section(config, "A").extra == {}


def test_duplicate_key_later_wins_and_warning_names_both_lines() -> None:
    config = load(
        '{"GENERAL": {},\n'
        ' "A": {"ACTION": "execute", "NAME": "n", "PARAMETERS": {\n'
        '   "DESTINATION": "/first",\n'
        '   "DESTINATION": "/second"}}}'
    )
    assert section(config, "A").parameters["DESTINATION"] == "/second"
    assert section(config, "A").parameter_positions["DESTINATION"].line == 4
    assert len(config.warnings) == 1
    warning = config.warnings[0]
    assert "A.PARAMETERS.DESTINATION" in warning and "lines 3 and 4" in warning and "conf.json" in warning


def test_duplicate_section_keeps_its_first_place_with_the_later_body() -> None:
    config = load('{"GENERAL": {},\n"A": {"BUCKET": "old"},\n"B": {},\n"A": {"BUCKET": "new"}}')
    assert [item.name for item in config.sections] == ["A", "B"]
    assert section(config, "A").extra == {"BUCKET": "new"}
    assert any('"A"' in warning and "lines 2 and 4" in warning for warning in config.warnings)


def test_duplicate_in_general_warns() -> None:
    config = load('{"GENERAL": {"HOSTNAME": "a",\n"HOSTNAME": "b"}}')
    assert config.general.hostname == "b"
    assert any("GENERAL.HOSTNAME" in warning and "lines 1 and 2" in warning for warning in config.warnings)


# --- section envelope --------------------------------------------------------------------------------


def test_execute_section_fields() -> None:
    config = load(
        '{"GENERAL": {}, "S": {"ACTION": "execute", "NAME": "myscript", "EXECUTABLE": "run.sh",'
        ' "EXECUTE_WITH": "bash", "PARAMETERS_MODE": "flat", "TIMEOUT": "90", "PARAMETERS": {"A": "1"}}}'
    )
    item = section(config, "S")
    assert (item.action, item.module, item.executable, item.execute_with) == ("execute", "myscript", "run.sh", "bash")
    assert item.parameters_mode == "flat"
    assert item.timeout_seconds == 90.0
    assert item.class_name is None and item.filename is None


def test_action_is_case_insensitive_and_absent_means_configuration_only() -> None:
    config = load('{"GENERAL": {}, "A": {"ACTION": "Execute", "NAME": "x"}, "B": {"BUCKET": "b"}, "C": {"ACTION": ""}}')
    assert section(config, "A").action == "execute"
    assert section(config, "B").action is None and section(config, "B").module is None
    assert section(config, "C").action is None


def test_load_filename_defaults_to_from() -> None:
    config = load('{"GENERAL": {}, "QA": {"ACTION": "load", "FROM": "qa", "CLASS": "QA"}}')
    item = section(config, "QA")
    assert (item.action, item.module, item.filename, item.class_name) == ("load", "qa", "qa", "QA")
    assert item.parameters == {} and item.raw_parameters == {}


def test_defaults_of_a_section_without_mode_or_timeout() -> None:
    item = section(load('{"GENERAL": {}, "A": {"ACTION": "execute", "NAME": "x"}}'), "A")
    assert item.parameters_mode == "named"
    assert item.timeout_seconds is None


def test_other_top_level_keys_go_to_extra_with_positions() -> None:
    config = load(
        '{"GENERAL": {},\n"CLEANUP": {\n "BUCKET": "bk",\n "PREFIX": "p/",\n'
        ' "KEEP": {"DAILY": {"NUMBER": "7"}, "WEEKLY": {"NUMBER": 2, "DAY": "1"}}}}'
    )
    item = section(config, "CLEANUP")
    assert item.extra == {
        "BUCKET": "bk",
        "PREFIX": "p/",
        "KEEP": {"DAILY": {"NUMBER": "7"}, "WEEKLY": {"NUMBER": "2", "DAY": "1"}},
    }
    assert item.key_positions["KEEP"].line == 5
    assert item.key_positions["BUCKET"] == Position(FILE, 3, 2)


def test_unknown_action_is_an_error_naming_the_line() -> None:
    error = error_of('{"GENERAL": {},\n"A": {"ACTION": "run", "NAME": "x"}}')
    assert (error.line, error.column) == (2, 7)  # the "ACTION" key
    assert error.key == "A.ACTION"
    assert 'unknown ACTION "run"' in str(error) and '"execute"' in str(error) and '"load"' in str(error)


def test_execute_without_name_is_an_error() -> None:
    error = error_of('{"GENERAL": {},\n"FILESET": {"ACTION": "execute", "NAME": ""}}')
    assert error.line == 2 and error.key == "FILESET"
    assert "needs NAME" in str(error)


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ('{"ACTION": "load", "CLASS": "X"}', "FROM"),
        ('{"ACTION": "load", "FROM": "x"}', "CLASS"),
        ('{"ACTION": "load"}', "FROM and CLASS"),
    ],
)
def test_load_without_from_or_class_is_an_error(body: str, missing: str) -> None:
    error = error_of('{"GENERAL": {},\n"P": ' + body + "}")
    assert error.line == 2
    assert f"needs {missing}" in str(error)


@pytest.mark.parametrize("value", ['"x"', '["a"]', "5", "true"])
def test_parameters_not_an_object_is_an_error(value: str) -> None:
    error = error_of('{"GENERAL": {},\n"A": {"ACTION": "execute", "NAME": "x",\n "PARAMETERS": ' + value + "}}")
    assert (error.line, error.column) == (3, 2)
    assert error.key == "A.PARAMETERS"
    assert "must be an object" in str(error)


def test_parameters_null_means_no_parameters() -> None:
    item = section(load('{"GENERAL": {}, "A": {"ACTION": "execute", "NAME": "x", "PARAMETERS": null}}'), "A")
    assert item.parameters == {} and item.raw_parameters == {}


def test_unknown_parameters_mode_is_an_error() -> None:
    error = error_of('{"GENERAL": {}, "A": {"ACTION": "execute", "NAME": "x", "PARAMETERS_MODE": "positional"}}')
    assert error.key == "A.PARAMETERS_MODE" and '"flat"' in str(error)


@pytest.mark.parametrize("value", ['"soon"', '"-5"', '"0"', "0", '"inf"'])
def test_bad_timeout_is_an_error(value: str) -> None:
    error = error_of('{"GENERAL": {}, "A": {"ACTION": "execute", "NAME": "x",\n"TIMEOUT": ' + value + "}}")
    assert error.key == "A.TIMEOUT" and error.line == 2
    assert "positive number of seconds" in str(error)


def test_timeout_accepts_numbers_and_strings() -> None:
    config = load('{"GENERAL": {}, "A": {"ACTION": "execute", "NAME": "x", "TIMEOUT": 2.5},'
                  ' "B": {"ACTION": "execute", "NAME": "x", "TIMEOUT": " 30 "}}')
    assert section(config, "A").timeout_seconds == 2.5
    assert section(config, "B").timeout_seconds == 30.0


def test_envelope_value_that_is_an_object_is_an_error() -> None:
    error = error_of('{"GENERAL": {}, "A": {"ACTION": "execute", "NAME": {"x": 1}}}')
    assert error.key == "A.NAME" and "expected a string" in str(error)


def test_section_that_is_not_an_object_is_an_error() -> None:
    error = error_of('{"GENERAL": {},\n"FILESET": "filesbackup"}')
    assert (error.line, error.column, error.key) == (2, 1, "FILESET")
    assert "must be an object" in str(error)


def test_general_that_is_not_an_object_is_an_error() -> None:
    error = error_of('{"GENERAL": ["a"]}')
    assert error.key == "GENERAL" and "must be an object" in str(error)


# --- legacy spellings ---------------------------------------------------------------------------------


def test_targets_becomes_objectives_and_raw_parameters_keep_the_original_spelling() -> None:
    config = load(
        '{"GENERAL": {},\n"C": {"ACTION": "execute", "NAME": "compression", "PARAMETERS": {\n'
        ' "TARGETS": "/w/files /w/mydump",\n "REMOVE_TARGETS": "True"}}}'
    )
    item = section(config, "C")
    assert item.parameters == {"OBJECTIVES": "/w/files /w/mydump", "REMOVE_OBJECTIVES": "True"}
    assert list(item.raw_parameters) == ["TARGETS", "REMOVE_TARGETS"]
    assert item.parameter_positions["OBJECTIVES"] == Position(FILE, 3, 2)
    assert item.parameter_positions["REMOVE_OBJECTIVES"].line == 4


def test_targets_alias_applies_to_top_level_section_keys_too() -> None:
    item = section(load('{"GENERAL": {}, "X": {"TARGETS": "/a"}}'), "X")
    assert item.extra == {"OBJECTIVES": "/a"}
    assert "OBJECTIVES" in item.key_positions


@pytest.mark.parametrize(("old", "new"), [("TARGETS", "OBJECTIVES"), ("REMOVE_TARGETS", "REMOVE_OBJECTIVES")])
def test_both_spellings_of_an_alias_is_an_error_naming_both_lines(old: str, new: str) -> None:
    error = error_of(
        '{"GENERAL": {},\n"C": {"ACTION": "execute", "NAME": "c", "PARAMETERS": {\n'
        f' "{new}": "/a",\n "{old}": "/b"}}}}}}'
    )
    assert error.line == 4 and error.key == f"C.PARAMETERS.{old}"
    assert f"{new} (line 3)" in str(error) and "keep only one" in str(error)


def test_args_dict_string_is_parsed_as_a_python_literal() -> None:
    config = load(
        '{"GENERAL": {}, "S": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {'
        '"DESTINATION": "scp", "ARGS_DICT": "{\'REMOTE_HOST\': \'10.0.0.2\', \'PORT\': 2222, \'OPTS\': [1, \'a\']}",'
        '"UPLOAD_COMMAND_DICT": "{\'CMD\': \'x\'}"}}}'
    )
    item = section(config, "S")
    assert item.parameters["ARGS_DICT"] == {"REMOTE_HOST": "10.0.0.2", "PORT": "2222", "OPTS": ["1", "a"]}
    assert item.parameters["UPLOAD_COMMAND_DICT"] == {"CMD": "x"}
    assert item.raw_parameters["ARGS_DICT"].startswith("{'REMOTE_HOST'")


def test_args_dict_may_be_a_json_object_or_blank() -> None:
    config = load(
        '{"GENERAL": {}, "S": {"PARAMETERS": {"ARGS_DICT": {"BUCKET": "b"}}}, "T": {"PARAMETERS": {"ARGS_DICT": ""}}}'
    )
    assert section(config, "S").parameters["ARGS_DICT"] == {"BUCKET": "b"}
    assert section(config, "T").parameters["ARGS_DICT"] == {}


@pytest.mark.parametrize(
    "value",
    [
        '"{\'BUCKET\': }"',        # not a literal
        '"[\'BUCKET\']"',          # a literal, but a list
        '"BUCKET=ncbackup"',       # not Python at all
        "5",                        # not a string
    ],
)
def test_args_dict_that_is_not_a_literal_dict_names_the_line(value: str) -> None:
    error = error_of('{"GENERAL": {},\n"S": {"PARAMETERS": {\n  "ARGS_DICT": ' + value + "}}}")
    assert (error.line, error.column) == (3, 3)
    assert error.key == "S.PARAMETERS.ARGS_DICT"
    assert "{'BUCKET': 'ncbackup'" in str(error)


def test_args_dict_is_never_evaluated_as_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    code = f"__import__('pathlib').Path('{marker}').touch()"
    error = error_of('{"GENERAL": {}, "S": {"PARAMETERS": {"ARGS_DICT": "' + code + '"}}}')
    assert "not a valid Python-literal dict" in str(error)
    assert not marker.exists()


def test_string_and_real_booleans_and_numbers_read_the_same() -> None:
    config = load(
        '{"GENERAL": {},'
        '"A": {"PARAMETERS": {"REMOVE_OBJECTIVES": "True", "FILE_SIZE": "5", "R": "0.5"}},'
        '"B": {"PARAMETERS": {"REMOVE_OBJECTIVES": true, "FILE_SIZE": 5, "R": 0.5}}}'
    )
    assert section(config, "A").parameters == section(config, "B").parameters
    assert section(config, "B").raw_parameters == {"REMOVE_OBJECTIVES": True, "FILE_SIZE": 5, "R": 0.5}
    options = parse_options(_EncryptionOptions, section(config, "B"), parameters={
        **section(config, "B").parameters, "KEY_FILE": "/k"})
    assert options.file_size_mb == 5 and options.is_remove_objectives_on is True


# --- files ---------------------------------------------------------------------------------------------


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.json")
    assert caught.value.file == tmp_path / "nope.json"
    assert "not found" in str(caught.value) and "-c" in str(caught.value)


def test_config_path_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert "is a folder" in str(caught.value)


def test_unreadable_config_file() -> None:
    # Root reads every file: ncbackup runs as an unprivileged user who may reach the folder, not read the file.
    with unreadable_file("conf.json", '{"GENERAL": {}}') as path:
        completed = run_python_unprivileged(["-m", "ncbackup.cli", "check", "-c", str(path)])
    assert completed.returncode == 3, completed.stderr
    assert completed.stderr == (f"ncbackup: error: {path}: cannot be read (permission denied); "
                                "run as a user who may read it, or fix its permissions\n")


def test_config_path_under_a_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "plain" / "conf.json")
    assert "cannot be read" in str(caught.value)


def test_config_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "conf.json"
    path.write_bytes(b'{"GENERAL": {\n"HOSTNAME": "caf\xe9"}}')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == 2 and "UTF-8" in str(caught.value)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "conf.json"
    path.write_bytes('\ufeff{"GENERAL": {"HOSTNAME": "h"}}'.encode())
    assert load_config(path).general.hostname == "h"


def test_load_config_positions_name_the_real_file(tmp_path: Path) -> None:
    path = tmp_path / "conf.json"
    path.write_text('{"GENERAL": {},\n"A": {"ACTION": "nope"}}')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}, line 2, column 7: A.ACTION: ")


def test_empty_file_top_level_not_object_and_no_general() -> None:
    assert "empty" in str(error_of("  \n"))
    error = error_of('["GENERAL"]')
    assert error.line == 1 and "top level must be an object" in str(error)
    error = error_of('{"FILESET": {}}')
    assert "no GENERAL section" in str(error) and error.file == FILE


def test_general_in_the_wrong_case_is_pointed_out() -> None:
    error = error_of('{"General": {"HOSTNAME": "h"}}')
    assert "no GENERAL section" in str(error) and '"General"' in str(error)


def test_duplicates_inside_a_comment_are_not_warned() -> None:
    config = load('{"GENERAL": {}, "__old": {"A": 1, "A": 2}}')
    assert config.warnings == []
