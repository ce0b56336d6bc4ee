"""custom_command storage with real programs (install, cp, cat, find, rm) against a local folder."""

from __future__ import annotations

import pytest

from ncbackup.errors import ConfigError, StorageError
from ncbackup.storage.command import CommandStorage
from ncbackup.storage.registry import build_storage
from tests.integration.storage.helpers import TrickleStream, general, random_bytes, read_all, storage_section
from tests.support import need_binary

pytestmark = pytest.mark.integration

EVIL_KEY = "20261126T030000Z/my backup ;$(touch pwned) `touch pwned2` & echo 'x' > pwned3.000"

STDIN_TEMPLATES = {
    "UPLOAD_COMMAND_TEMPLATE": "install -D -m 600 %(stdin)s %(DEST)s/%(remote)s",
    "DOWNLOAD_COMMAND_TEMPLATE": "cat %(DEST)s/%(remote)s",
    "LIST_COMMAND_TEMPLATE": "find %(DEST)s/%(prefix)s -type f -printf '%%s\\t%%P\\n'",
    "REMOVE_COMMAND_TEMPLATE": "rm -f %(DEST)s/%(remote)s",
}


def make_storage(tmp_path, templates: dict, **args) -> CommandStorage:
    destination = tmp_path / "dest"
    destination.mkdir(exist_ok=True)
    section = storage_section("custom_command", {"DEST": str(destination), **args}, **templates)
    storage = build_storage(section, general(tmp_path))
    assert isinstance(storage, CommandStorage)
    return storage


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    need_binary("install")
    need_binary("find")
    monkeypatch.chdir(tmp_path)  # where an injected "touch pwned" would land


def no_injection(tmp_path) -> bool:
    return not any((tmp_path / name).exists() for name in ("pwned", "pwned2", "pwned3.000"))


def test_stdin_template_roundtrip_with_hostile_file_name(tmp_path):
    storage = make_storage(tmp_path, STDIN_TEMPLATES)
    data = random_bytes(3 * 1024 * 1024)
    storage.put(EVIL_KEY, TrickleStream(data))
    stored = tmp_path / "dest" / "web1" / EVIL_KEY
    assert stored.read_bytes() == data
    assert no_injection(tmp_path)
    assert read_all(storage.get(EVIL_KEY)) == data
    assert [(o.key, o.size_bytes) for o in storage.list()] == [(EVIL_KEY, len(data))]
    storage.delete(EVIL_KEY)
    storage.delete(EVIL_KEY)  # rm -f: missing is fine
    assert list(storage.list()) == []
    assert no_injection(tmp_path)
    assert list((tmp_path / "work").iterdir()) == []  # nothing staged for stdin mode


def test_a_dash_argument_selects_stdin_mode_like_the_originals_aws_s3_cp_dash(tmp_path):
    need_binary("tee")
    # GNU tee copies stdin to its file arguments and, for "-", to stdout (discarded here).
    templates = dict(STDIN_TEMPLATES, UPLOAD_COMMAND_TEMPLATE="tee %(DEST)s/%(file)s -")
    storage = make_storage(tmp_path, templates)
    assert storage.templates["upload"].uses_stdin
    storage.put("s/part.000", TrickleStream(b"through stdin"))
    assert (tmp_path / "dest" / "part.000").read_bytes() == b"through stdin"


def test_staged_template_gets_each_part_as_a_file_removed_after_success(tmp_path):
    templates = dict(STDIN_TEMPLATES, UPLOAD_COMMAND_TEMPLATE="cp %(OBJECTIVES)s/%(file)s %(DEST)s/%(file)s")
    storage = make_storage(tmp_path, templates)
    data = random_bytes(1024 * 1024 + 1)
    storage.put(EVIL_KEY, TrickleStream(data))
    name = EVIL_KEY.split("/", 1)[1]
    assert (tmp_path / "dest" / name).read_bytes() == data
    assert list((tmp_path / "work").iterdir()) == []
    assert no_injection(tmp_path)


def test_staged_part_is_removed_when_the_command_fails(tmp_path):
    templates = dict(STDIN_TEMPLATES, UPLOAD_COMMAND_TEMPLATE="cp %(OBJECTIVES)s/%(file)s %(DEST)s/missing-dir/%(file)s")
    storage = make_storage(tmp_path, templates)
    with pytest.raises(StorageError, match="upload command for s/p failed .*cp exited with status 1"):
        storage.put("s/p", TrickleStream(b"data"))
    assert list((tmp_path / "work").iterdir()) == []


def test_failing_stdin_command_is_a_storage_error(tmp_path):
    templates = dict(STDIN_TEMPLATES, UPLOAD_COMMAND_TEMPLATE="install -D %(stdin)s /proc/no/such/%(file)s")
    storage = make_storage(tmp_path, templates)
    with pytest.raises(StorageError, match="install exited with status 1"):
        storage.put("s/p", TrickleStream(random_bytes(2 * 1024 * 1024)))


def test_unknown_placeholder_is_a_config_error_naming_it(tmp_path):
    templates = dict(STDIN_TEMPLATES, UPLOAD_COMMAND_TEMPLATE="cp %(OBJECTIVES)s/%(file)s %(BUKET)s/")
    with pytest.raises(ConfigError, match=r"UPLOAD_COMMAND_TEMPLATE: unknown placeholder %\(BUKET\)s"):
        make_storage(tmp_path, templates)


def test_bad_quoting_and_commands_that_never_see_the_part_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="quotes"):
        make_storage(tmp_path, dict(STDIN_TEMPLATES, LIST_COMMAND_TEMPLATE="ls 'unclosed"))
    with pytest.raises(ConfigError, match="never receives the part"):
        make_storage(tmp_path, dict(STDIN_TEMPLATES, UPLOAD_COMMAND_TEMPLATE="touch %(DEST)s/%(file)s"))


def test_missing_optional_templates_make_list_get_delete_clear_errors(tmp_path):
    storage = make_storage(tmp_path, {"UPLOAD_COMMAND_TEMPLATE": STDIN_TEMPLATES["UPLOAD_COMMAND_TEMPLATE"]})
    storage.put("s/p", TrickleStream(b"x"))
    with pytest.raises(StorageError, match="LIST_COMMAND_TEMPLATE"):
        list(storage.list())
    with pytest.raises(StorageError, match="DOWNLOAD_COMMAND_TEMPLATE"):
        storage.get("s/p")
    with pytest.raises(StorageError, match="REMOVE_COMMAND_TEMPLATE"):
        storage.delete("s/p")


def test_get_of_a_missing_object_is_a_storage_error_and_staging_is_cleaned(tmp_path):
    storage = make_storage(tmp_path, STDIN_TEMPLATES)
    with pytest.raises(StorageError, match="could not be fetched"):
        storage.get("s/none")
    assert list((tmp_path / "work").iterdir()) == []


def test_check_reports_a_program_that_is_not_installed(tmp_path):
    storage = make_storage(tmp_path, dict(STDIN_TEMPLATES, REMOVE_COMMAND_TEMPLATE="no-such-tool-xyz %(remote)s"))
    lines = storage.check()
    assert [line.ok for line in lines] == [True, True, True, False]
    assert "no-such-tool-xyz" in lines[-1].text


def test_args_dict_and_upload_command_dict_values_are_placeholders(tmp_path):
    destination = tmp_path / "elsewhere"
    destination.mkdir()
    section = storage_section(
        "custom_command", {"DEST": str(tmp_path / "dest")},
        UPLOAD_COMMAND_TEMPLATE="install -D %(stdin)s %(DEST)s/%(HOSTNAME)s-%(file)s",
        UPLOAD_COMMAND_DICT={"DEST": str(destination)},
    )
    build_storage(section, general(tmp_path)).put("s/p", TrickleStream(b"v"))
    assert (destination / "web1-p").read_bytes() == b"v"


def test_stdin_upload_that_breaks_is_removed_with_the_remove_template(tmp_path):
    import io

    class Dies(io.RawIOBase):
        sent = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            if self.sent > 2 * 1024 * 1024:
                raise RuntimeError("source died")
            buffer[:] = bytes(len(buffer))
            self.sent += len(buffer)
            return len(buffer)

    templates = dict(STDIN_TEMPLATES, UPLOAD_COMMAND_TEMPLATE="tee %(DEST)s/%(file)s -")
    templates["REMOVE_COMMAND_TEMPLATE"] = "rm -f %(DEST)s/%(file)s"
    storage = make_storage(tmp_path, templates)
    with pytest.raises(RuntimeError, match="source died"):
        storage.put("s/p", Dies())
    assert list((tmp_path / "dest").iterdir()) == []
