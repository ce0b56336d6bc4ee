"""The position-tracking JSON reader: same values as the json module, and errors that point at the mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ncbackup.config import loads_config
from ncbackup.config.load import parse_json
from ncbackup.errors import ConfigError

FILE = Path("conf.json")


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        loads_config(text, path=FILE)
    return caught.value


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "x", "b": [1, -2.5, 3e2, 0, true, false, null], "c": {"d": {}}, "e": []}',
        '{"unicode": "caf\\u00e9 \\ud83d\\ude00", "escapes": "a\\"b\\\\c\\/d\\n\\t", "raw": "日本"}',
        '  {\r\n"crlf" :\r\n "x" ,\t"n": -0.0 }  \n',
        '{"big": 123456789012345678901234567890, "neg": -1E-3}',
    ],
)
def test_reader_gives_the_same_values_as_the_json_module(text: str) -> None:
    value, warnings = parse_json(text, path=FILE)
    assert value == json.loads(text)
    assert warnings == []


def test_missing_comma_between_two_keys_names_line_column_and_fix() -> None:
    text = '{\n  "GENERAL": {\n    "HOSTNAME": "web1"\n    "WORK_FOLDER": "/tmp/w"\n  }\n}\n'
    error = error_of(text)
    # The json module agrees on where the problem is.
    with pytest.raises(json.JSONDecodeError) as reference:
        json.loads(text)
    assert (error.line, error.column) == (reference.value.lineno, reference.value.colno) == (4, 5)
    assert error.file == FILE
    assert "expected ',' or '}' after the value of \"HOSTNAME\"" in str(error)
    assert "add a ',' at the end of line 3" in str(error)
    assert str(error).startswith("conf.json, line 4, column 5: ")


def test_missing_comma_between_two_sections_names_the_previous_section() -> None:
    text = '{\n "GENERAL": {},\n "A": {"ACTION": "execute", "NAME": "x"}\n "B": {}\n}'
    error = error_of(text)
    assert (error.line, error.column) == (4, 2)
    assert 'after the value of "A"' in str(error)


def test_trailing_comma_in_an_object_is_named() -> None:
    error = error_of('{"GENERAL": {"HOSTNAME": "a",\n}}')
    assert (error.line, error.column) == (2, 1)
    assert "remove the trailing comma" in str(error)


def test_trailing_comma_in_a_list_is_named() -> None:
    text = '{"GENERAL": {}, "A": {"PARAMETERS": {"L": ["a", "b",]}}}'
    error = error_of(text)
    assert error.line == 1 and error.column == text.index(",]") + 2
    assert "remove the trailing comma" in str(error)


def test_missing_colon_after_key() -> None:
    error = error_of('{"GENERAL" {}}')
    assert (error.line, error.column) == (1, 12)
    assert "expected ':' after the key \"GENERAL\"" in str(error)


def test_single_quotes_are_explained() -> None:
    error = error_of("{'GENERAL': {}}")
    assert (error.line, error.column) == (1, 2)
    assert "double quotes" in str(error)
    error = error_of('{"GENERAL": {"HOSTNAME": \'web\'}}')
    assert error.column == 26 and "double quotes" in str(error)


def test_string_not_closed_before_end_of_line() -> None:
    error = error_of('{"GENERAL": {\n  "HOSTNAME": "web1,\n  "WORK_FOLDER": "/tmp"}}')
    assert error.line == 2
    assert "close it with '\"' on the same line" in str(error)


def test_string_never_closed_at_end_of_file() -> None:
    error = error_of('{"GENERAL": {"HOSTNAME": "web1')
    assert (error.line, error.column) == (1, 26)
    assert "never closed" in str(error)


def test_file_ending_inside_an_object_names_where_it_opened() -> None:
    error = error_of('{\n"GENERAL": {\n "HOSTNAME": "a"\n')
    assert error.line == 4
    assert "opened on line 2" in str(error) and "'}'" in str(error)


def test_stray_text_after_the_top_level_object() -> None:
    error = error_of('{"GENERAL": {}}\n}, "A": {}}')
    assert (error.line, error.column) == (2, 1)
    assert "after the end of the JSON value" in str(error)


def test_comments_are_not_json_and_the_error_says_how_to_write_a_note() -> None:
    error = error_of('{\n  // backups\n  "GENERAL": {}}')
    assert (error.line, error.column) == (2, 3)
    assert '"__NOTE"' in str(error)


def test_windows_path_with_single_backslash_invalid_escape_is_explained() -> None:
    error = error_of('{"GENERAL": {"WORK_FOLDER": "c:\\data"}}')
    assert error.line == 1 and error.column == 32  # the backslash
    assert 'c:\\\\backup' in str(error)


def test_windows_path_with_single_backslash_valid_escape_warns() -> None:
    # "c:\backup" is valid JSON (\b is backspace) but surely a mistake: load, and warn.
    config = loads_config('{"GENERAL": {\n"WORK_FOLDER": "c:\\backup"}}', path=FILE)
    assert any("line 2" in warning and "single backslashes" in warning for warning in config.warnings)


def test_unquoted_word_is_not_a_value() -> None:
    error = error_of('{"GENERAL": {"DISK_SPACE_CHECK": True}}')
    assert (error.line, error.column) == (1, 34)
    assert 'expected a value for "DISK_SPACE_CHECK"' in str(error)
    assert "'True'" in str(error)


def test_missing_value_before_comma() -> None:
    error = error_of('{"GENERAL": {"HOSTNAME": , "A": "b"}}')
    assert error.column == 26
    assert "expected a value" in str(error)


def test_list_missing_comma() -> None:
    error = error_of('{"GENERAL": {}, "A": {"PARAMETERS": {"L": [\n"a"\n"b"]}}}')
    assert (error.line, error.column) == (3, 1)
    assert "opened on line 1" in str(error)


def test_excessive_nesting_is_an_error_not_a_crash() -> None:
    error = error_of('{"GENERAL": {}, "A": {"X": ' + "[" * 5000 + "]" * 5000 + "}}")
    assert "nested" in str(error)


def test_columns_count_characters_not_bytes() -> None:
    error = error_of('{"GENERAL": {"HOSTNAME": "日本" "X": "y"}}')
    assert error.column == 31
