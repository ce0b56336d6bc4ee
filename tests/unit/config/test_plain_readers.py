"""The pydantic-free readers (config/values.read_plain) agree with the models they stand in for.

GENERAL and the ENCRYPTION key paths are read without pydantic so that `list` and `restore` start fast; whenever a
value is not plainly valid the model reads it instead and words the error. So the readers must never accept a value
the model refuses, and must give the same settings for every value they accept.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ncbackup.config.general import GeneralKeys
from ncbackup.config.load import GENERAL_READERS, build_general, loads_config
from ncbackup.config.types import validate_values
from ncbackup.config.values import read_plain
from ncbackup.errors import ConfigError
from ncbackup.stages.options import EncryptionOptions
from ncbackup.stages.registry import ENCRYPTION_READERS

EDGE_VALUES = [None, True, False, 0, 1, -1, 20, 100, 101, 150, 0.5, 100.5, float("nan"), float("inf"), "", " ", "0",
               "1", "20", "20%", "100%", "101", "150", "-3", "0.5", "1e3", "nan", "inf", "true", "no", "yes ", "maybe",
               "24h", "90m", "2d", "0s", "-1h", "3 days", "post", "EMAIL", "sms", "fax", "/var/backup", "/var/backup/",
               "c:\\backup", "web1", "x/y", "  web1  ", "1_000", ["/a", "/b c"], [], {"a": 1}]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 200), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(EDGE_VALUES),
    st.text(max_size=8),
    st.lists(st.sampled_from(["/a", "/b c", "x"]), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2),
)


def _fields(model: type, readers: dict) -> dict[str, tuple[str, object]]:
    """alias -> (field name, default) of the model's fields that readers cover."""
    out = {}
    for name, info in model.model_fields.items():
        if info.alias in readers:
            default = info.default_factory() if info.default_factory is not None else info.default
            out[info.alias] = (name, default)
    return out


@pytest.mark.parametrize(("model", "readers", "covers_all"), [(GeneralKeys, GENERAL_READERS, True),
                                                             (EncryptionOptions, ENCRYPTION_READERS, False)])
def test_every_key_has_the_models_field_name_and_default(model, readers, covers_all) -> None:
    fields = _fields(model, readers)
    assert set(fields) == set(readers), "a reader for a key the model does not have"
    if covers_all:
        assert {info.alias for info in model.model_fields.values()} == set(readers), "a GENERAL key without a reader"
    for key, (field_name, _convert, default) in readers.items():
        assert fields[key][0] == field_name, key
        assert fields[key][1] == (list(default) if isinstance(default, tuple) else default), key


def _agree(model: type, readers: dict, values: dict) -> None:
    plain = read_plain(values, readers)
    try:
        validated = validate_values(model, values, section_name="X", positions={}, fallback=None)
    except ConfigError:
        assert plain is None, f"the plain reader accepted what the model refuses: {values!r} -> {plain!r}"
        return
    if plain is None:
        return   # the model reads it then (a value the plain reader does not know how to judge)
    for field_name, value in plain.items():
        expected = getattr(validated, field_name)
        if isinstance(value, tuple):
            value = list(value)
        assert value == expected and type(value) is type(expected), (field_name, values)


@pytest.mark.parametrize("key", sorted(GENERAL_READERS))
def test_each_general_key_agrees_with_the_model_on_every_edge_value(key: str) -> None:
    for value in EDGE_VALUES:
        _agree(GeneralKeys, GENERAL_READERS, {key: value})


@pytest.mark.parametrize("key", sorted(ENCRYPTION_READERS))
def test_each_encryption_key_agrees_with_the_model_on_every_edge_value(key: str) -> None:
    for value in EDGE_VALUES:
        _agree(EncryptionOptions, ENCRYPTION_READERS, {key: value})


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(GENERAL_READERS)), VALUES, max_size=6))
def test_general_read_without_pydantic_equals_the_model(values) -> None:
    _agree(GeneralKeys, GENERAL_READERS, values)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(ENCRYPTION_READERS)), VALUES, max_size=3))
def test_encryption_keys_read_without_pydantic_equal_the_model(values) -> None:
    _agree(EncryptionOptions, ENCRYPTION_READERS, values)


def test_a_bad_general_value_is_still_one_sentence_naming_the_key(tmp_path: Path) -> None:
    text = '{"GENERAL": {"HOSTNAME": "web1",\n "DISK_SPACE_THRESHOLD": "120%"}}'
    with pytest.raises(ConfigError) as raised:
        loads_config(text, path=tmp_path / "conf.json")
    message = str(raised.value)
    assert "GENERAL.DISK_SPACE_THRESHOLD" in message and "line 2" in message and "120" in message


def test_general_settings_from_plain_values(tmp_path: Path) -> None:
    config = loads_config('{"GENERAL": {"HOSTNAME": " web1 ", "WORK_FOLDER": "/var/tmp/nc/", "MAX_RUNTIME": "2h",'
                          ' "DISK_SPACE_THRESHOLD": "15%", "DISK_SPACE_CHECK": "no", "ALERT_AFTER_HOURS": 30}}',
                          path=tmp_path / "conf.json")
    general = config.general
    assert (general.hostname, general.work_folder, general.max_runtime_seconds) == ("web1", Path("/var/tmp/nc"), 7200.0)
    assert (general.disk_space_threshold_percent, general.is_disk_space_check_on, general.alert_after_hours) == (15.0, False, 30.0)
    assert build_general is not None
