"""The legacy value types and parse_options: every spelling the original accepted, and one-sentence errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ncbackup.config import Config, Position, SectionSettings, loads_config
from ncbackup.config.types import (
    LegacyBool,
    LegacyFloat,
    LegacyInt,
    LegacyPath,
    PathList,
    WordList,
    parse_options,
)
from ncbackup.errors import ConfigError

FILE = Path("conf.json")


@pytest.mark.parametrize("value", [True, "True", "true", "TRUE", " yes ", "y", "on", "1", 1])
def test_legacy_bool_true(value: object) -> None:
    assert TypeAdapter(LegacyBool).validate_python(value) is True


@pytest.mark.parametrize("value", [False, "False", "false", "no", "n", "off", "0", 0])
def test_legacy_bool_false(value: object) -> None:
    assert TypeAdapter(LegacyBool).validate_python(value) is False


@pytest.mark.parametrize("value", ["maybe", "2", 2, None, [], "Treu"])
def test_legacy_bool_rejects_other_values(value: object) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(LegacyBool).validate_python(value)


@pytest.mark.parametrize(("value", "number"), [("5", 5), (" 4000 ", 4000), ("5.0", 5), (7, 7), (3.0, 3), ("-2", -2)])
def test_legacy_int(value: object, number: int) -> None:
    assert TypeAdapter(LegacyInt).validate_python(value) == number


@pytest.mark.parametrize("value", ["5.5", "five", "", True, 2.5, "1e3"])
def test_legacy_int_rejects(value: object) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(LegacyInt).validate_python(value)


@pytest.mark.parametrize(("value", "number"), [("0.5", 0.5), ("20", 20.0), (3, 3.0), (1.25, 1.25), (" 1e2 ", 100.0)])
def test_legacy_float(value: object, number: float) -> None:
    assert TypeAdapter(LegacyFloat).validate_python(value) == number


@pytest.mark.parametrize("value", ["nan", "inf", "x", False, ""])
def test_legacy_float_rejects(value: object) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(LegacyFloat).validate_python(value)


@pytest.mark.parametrize(
    ("value", "paths"),
    [
        ("/etc /home/user", ["/etc", "/home/user"]),
        ("  /etc/   /opt/ncscripts//  /var/spool/cron ", ["/etc", "/opt/ncscripts", "/var/spool/cron"]),
        ("/", ["/"]),
        ("", []),
        ("   ", []),
        (["/data/with space/", " ", "/etc"], ["/data/with space", "/etc"]),
        ("c:\\backup\\ d:\\", ["c:\\backup", "d:\\"]),
        ("relative/dir/", ["relative/dir"]),
    ],
)
def test_path_list_spellings(value: object, paths: list[str]) -> None:
    assert TypeAdapter(PathList).validate_python(value) == [Path(item) for item in paths]


@pytest.mark.parametrize("value", [5, True, {"a": "b"}, ["/a", 3]])
def test_path_list_rejects(value: object) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(PathList).validate_python(value)


def test_legacy_path_strips_trailing_separators_but_keeps_roots() -> None:
    adapter = TypeAdapter(LegacyPath)
    assert adapter.validate_python(" /var/backup/ ") == Path("/var/backup")
    assert adapter.validate_python("/") == Path("/")
    assert adapter.validate_python("C:\\") == Path("C:\\")
    with pytest.raises(ValidationError):
        adapter.validate_python("  ")


@pytest.mark.parametrize(
    ("value", "words"),
    [("3306 3307", ["3306", "3307"]), (" db1  db2 ", ["db1", "db2"]), (3306, ["3306"]),
     (["3306", 3307], ["3306", "3307"]), ("", [])],
)
def test_word_list_spellings(value: object, words: list[str]) -> None:
    assert TypeAdapter(WordList).validate_python(value) == words


# --- parse_options ------------------------------------------------------------------------------------


class StorageOptions(BaseModel):
    model_config = ConfigDict(frozen=True)

    destination: str = Field(alias="DESTINATION")
    objectives: PathList = Field(default_factory=list, alias="OBJECTIVES")
    is_remove_objectives_on: LegacyBool = Field(False, alias="REMOVE_OBJECTIVES")
    retries: LegacyInt = Field(5, alias="RETRIES")


class ArgsOptions(BaseModel):
    bucket: str = Field(alias="BUCKET")
    port: LegacyInt = Field(22, alias="PORT")


class SecretOptions(BaseModel):
    mongo_password: LegacyInt = Field(alias="MONGO_PWD")


def load(text: str) -> Config:
    return loads_config(text, path=FILE)


CONFIG = """{
  "GENERAL": {},
  "STORAGE": {
    "ACTION": "execute",
    "NAME": "storage",
    "PARAMETERS": {
      "DESTINATION": "s3",
      "TARGETS": "/w/encrypted/",
      "REMOVE_OBJECTIVES": "yes",
      "RETRIES": "%s",
      "UNUSED": "ignored",
      "ARGS_DICT": "{'BUCKET': 'b', 'PORT': '%s'}"
    }
  }
}"""


def storage_section(retries: str = "3", port: str = "2222") -> SectionSettings:
    return load(CONFIG % (retries, port)).sections[0]


def test_parse_options_reads_aliases_and_ignores_unknown_keys() -> None:
    options = parse_options(StorageOptions, storage_section())
    assert options == StorageOptions(
        DESTINATION="s3", OBJECTIVES=[Path("/w/encrypted")], REMOVE_OBJECTIVES=True, RETRIES=3
    )


def test_parse_options_error_names_file_line_section_key_and_expectation() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_options(StorageOptions, storage_section(retries="many"))
    error = caught.value
    assert (error.file, error.line, error.column) == (FILE, 10, 7)
    assert error.key == "STORAGE.RETRIES"
    assert str(error) == (
        "conf.json, line 10, column 7: STORAGE.RETRIES: "
        "expected a whole number such as \"5\", got 'many'; fix this value"
    )


def test_parse_options_blank_string_means_default() -> None:
    assert parse_options(StorageOptions, storage_section(retries="")).retries == 5


def test_parse_options_missing_required_key_points_at_parameters() -> None:
    section = load('{"GENERAL": {},\n"S": {"ACTION": "execute", "NAME": "storage",\n"PARAMETERS": {"X": "1"}}}').sections[0]
    with pytest.raises(ConfigError) as caught:
        parse_options(StorageOptions, section)
    assert caught.value.line == 3 and caught.value.key == "S.DESTINATION"
    assert "is required" in str(caught.value) and "\"DESTINATION\"" in str(caught.value)


def test_parse_options_within_a_nested_dict_points_at_its_key() -> None:
    section = storage_section(port="ssh")
    args = parse_options(ArgsOptions, storage_section(), parameters=section.parameters["ARGS_DICT"] | {"PORT": "1"},
                         within="ARGS_DICT")
    assert args.bucket == "b"
    with pytest.raises(ConfigError) as caught:
        parse_options(ArgsOptions, section, parameters=section.parameters["ARGS_DICT"], within="ARGS_DICT")
    assert caught.value.line == 12
    assert caught.value.key == "STORAGE.ARGS_DICT.PORT"
    assert "'ssh'" in str(caught.value)


def test_parse_options_on_a_top_level_key_of_a_configuration_section() -> None:
    class Daily(BaseModel):
        number: LegacyInt = Field(alias="NUMBER")

    class Keep(BaseModel):
        daily: Daily = Field(alias="DAILY")

    section = load('{"GENERAL": {},\n"CLEANUP": {\n"BUCKET": "b",\n"KEEP": {"DAILY": {"NUMBER": "seven"}}}}').sections[0]
    with pytest.raises(ConfigError) as caught:
        parse_options(Keep, section, parameters=section.extra["KEEP"], within="KEEP")
    assert caught.value.line == 4 and caught.value.key == "CLEANUP.KEEP.DAILY.NUMBER"


def test_parse_options_never_echoes_a_secret_value() -> None:
    section = load('{"GENERAL": {}, "M": {"PARAMETERS": {"MONGO_PWD": "hunter2-secret"}}}').sections[0]
    with pytest.raises(ConfigError) as caught:
        parse_options(SecretOptions, section)
    assert "hunter2" not in str(caught.value)
    assert "M.MONGO_PWD" in str(caught.value)


def test_parse_options_counts_further_problems_in_the_same_sentence() -> None:
    section = load('{"GENERAL": {}, "S": {"PARAMETERS": {"RETRIES": "x", "REMOVE_OBJECTIVES": "maybe"}}}').sections[0]
    with pytest.raises(ConfigError) as caught:
        parse_options(StorageOptions, section)
    assert "2 more problem(s)" in str(caught.value)
    assert str(caught.value).count("\n") == 0


def test_parse_options_on_a_hand_built_section_without_positions() -> None:
    section = SectionSettings(name="S", action="execute", module="storage", parameters={"DESTINATION": "local"},
                              position=Position(FILE, 3))
    assert parse_options(StorageOptions, section).destination == "local"
    bad = SectionSettings(name="S", action="execute", module="storage", parameters={"RETRIES": "x"})
    with pytest.raises(ConfigError) as caught:
        parse_options(StorageOptions, bad)
    assert caught.value.key == "S.RETRIES"
