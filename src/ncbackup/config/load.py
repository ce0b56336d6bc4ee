"""Read a config file into ``Config``: JSON kept in section order, every key's line and column known.

A small recursive-descent JSON reader (strings decoded by the standard library's own scanner) so
that every error names the line and column of the problem and what was expected, duplicate keys are
seen (later wins, with a warning naming both lines) and ``__`` comment keys are dropped.
"""

from __future__ import annotations

import bisect
import json
import json.decoder
import re
import socket
import tempfile
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ncbackup.config.legacy import is_comment_key, normalise_keys, scalar_text, stringify_scalars
from ncbackup.config.secret_values import register_config_secrets
from ncbackup.config.settings import Config, GeneralSettings, Position, SectionSettings
from ncbackup.config.types import (
    DurationSeconds,
    LegacyBool,
    LegacyFloat,
    LegacyPath,
    clean_path_text,
    validate_values,
)
from ncbackup.errors import ConfigError

ACTIONS = ("execute", "load")
PARAMETERS_MODES = ("named", "flat")
LOG_FILE_NAME = "ncbackup.log"
# Keys of a section that describe the section itself; every other top-level key goes to ``extra``.
ENVELOPE_KEYS = frozenset(
    {"ACTION", "NAME", "FROM", "EXECUTABLE", "EXECUTE_WITH", "FILENAME", "CLASS",
     "PARAMETERS", "PARAMETERS_MODE", "TIMEOUT"}
)
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")
_WHITESPACE = " \t\n\r"
# "/", "c:\\", "C:": a whole file system, never a scratch folder.
_FILE_SYSTEM_ROOT = re.compile(r"[\\/]+|[A-Za-z]:[\\/]*")
_BARE_WORD = re.compile(r'[^\s,:\[\]{}"]+')
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_NO_COMMENTS = 'JSON has no comments; write a note as a "__NOTE": "..." key instead'
# Deeper nesting than this is no config; stop before Python's recursion limit does.
_MAX_DEPTH = 100


class JsonObject(dict):
    """A parsed JSON object: a dict (later duplicate wins) that remembers where it and each key stand."""

    def __init__(self, position: Position) -> None:
        super().__init__()
        self.position = position
        self.key_positions: dict[str, Position] = {}


def _error_at(position: Position | None, message: str, *, key: str) -> ConfigError:
    """A ConfigError located at position (file, line, column), naming key."""
    return ConfigError(
        message,
        file=position.file if position else None,
        line=position.line if position else None,
        column=position.column if position else None,
        key=key,
    )


def _plain(value: Any) -> Any:
    """A parsed value with every JsonObject turned into a plain dict."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


class _JsonReader:
    """Parse JSON text, recording key positions, dropping ``__`` keys and collecting duplicate-key warnings."""

    def __init__(self, text: str, file: Path) -> None:
        self.text = text
        self.file = file
        self.warnings: list[str] = []
        self._line_starts = [0] + [match.end() for match in re.finditer(r"\r\n|\r|\n", text)]

    def position(self, index: int) -> Position:
        line_index = bisect.bisect_right(self._line_starts, index) - 1
        return Position(self.file, line_index + 1, index - self._line_starts[line_index] + 1)

    def fail(self, index: int, message: str) -> ConfigError:
        where = self.position(index)
        return ConfigError(message, file=self.file, line=where.line, column=where.column)

    def skip_blanks(self, index: int) -> int:
        text = self.text
        while index < len(text) and text[index] in _WHITESPACE:
            index += 1
        return index

    def describe(self, index: int) -> str:
        if index >= len(self.text):
            return "the end of the file"
        return f"'{self.text[index]}'"

    @staticmethod
    def _inside_comment(path: str) -> bool:
        # A "__" key's value is dropped whole: nothing inside it deserves a warning.
        return any(is_comment_key(part) for part in path.split("."))

    def read_document(self) -> Any:
        index = self.skip_blanks(0)
        if index >= len(self.text):
            raise ConfigError(
                'the file is empty; a config is a JSON object such as {"GENERAL": {"HOSTNAME": "web1"}}',
                file=self.file,
            )
        value, end = self.read_value(index, path="", depth=0)
        end = self.skip_blanks(end)
        if end < len(self.text):
            closed = self.position(end - 1) if end else self.position(0)
            raise self.fail(
                end,
                f"unexpected {self.describe(end)} after the end of the JSON value closed on line {closed.line}; "
                "remove the stray text, or the extra '}' or ']' that closes the object too early",
            )
        return value

    def read_value(self, index: int, *, path: str, depth: int) -> tuple[Any, int]:
        if depth > _MAX_DEPTH:
            raise self.fail(index, f"the JSON is nested more than {_MAX_DEPTH} levels deep; flatten it")
        text = self.text
        if index >= len(text):
            raise self.fail(index, self._expected_value_message(path, "the end of the file"))
        char = text[index]
        if char == "{":
            return self.read_object(index, path=path, depth=depth)
        if char == "[":
            return self.read_array(index, path=path, depth=depth)
        if char == '"':
            return self.read_string(index)
        for word, value in (("true", True), ("false", False), ("null", None)):
            if text.startswith(word, index):
                return value, index + len(word)
        match = _NUMBER.match(text, index)
        if match:
            literal = match.group()
            if match.group(1) or match.group(2):
                return float(literal), match.end()
            try:
                return int(literal), match.end()
            except ValueError:  # past Python's int_max_str_digits (4300): no config means such a number
                raise self.fail(index, f"a number of {len(literal)} digits is too long; write a shorter one") from None
        if char == "'":
            raise self.fail(index, "JSON strings use double quotes; replace the single quotes with \"")
        if text.startswith("//", index) or text.startswith("/*", index) or char == "#":
            raise self.fail(index, _NO_COMMENTS)
        if char in ",}]":
            raise self.fail(index, self._expected_value_message(path, f"'{char}'"))
        bare = _BARE_WORD.match(text, index)
        found = bare.group()[:20] if bare else char
        raise self.fail(
            index,
            self._expected_value_message(path, f"'{found}'") + ' (put text in double quotes, e.g. "True")',
        )

    @staticmethod
    def _expected_value_message(path: str, found: str) -> str:
        after = f' for "{path.rsplit(".", 1)[-1]}"' if path else ""
        return f"expected a value{after} (a \"string\", a number, true, false, null, {{...}} or [...]) but found {found}"

    def read_string(self, index: int) -> tuple[str, int]:
        try:
            # json.decoder.scanstring is in the module but not in its type stubs.
            value, end = json.decoder.scanstring(self.text, index + 1, True)  # type: ignore[attr-defined]
        except json.JSONDecodeError as error:
            message = error.msg
            if message.startswith("Unterminated string"):
                raise self.fail(index, "this string is never closed; add the closing '\"'") from None
            if message.startswith("Invalid control character"):
                if self.text[error.pos] in "\r\n":
                    raise self.fail(
                        error.pos,
                        "a string runs past the end of the line; close it with '\"' on the same line "
                        "(write \\n for a line break inside a string)",
                    ) from None
                raise self.fail(
                    error.pos,
                    f"a string holds the control character {ord(self.text[error.pos]):#04x}; remove it",
                ) from None
            if message.startswith("Invalid \\escape") or message.startswith("Invalid \\u"):
                raise self.fail(
                    error.pos,
                    "invalid backslash escape in a string; write a backslash as \\\\ "
                    '(a Windows path is "c:\\\\backup")',
                ) from None
            raise self.fail(error.pos, f"invalid string: {message}") from None
        if _LONE_SURROGATE.search(value):
            # Valid JSON, but no file name, log or terminal can hold half of a UTF-16 pair.
            raise self.fail(index, "a string holds a \\uD800-\\uDFFF escape that is not part of a pair; remove it")
        if "\b" in value or "\f" in value:
            # Valid JSON, but "c:\backup" decodes to "c:<backspace>ackup": almost surely a Windows path.
            where = self.position(index)
            self.warnings.append(
                f"{self.file}, line {where.line}, column {where.column}: a string holds a \\b or \\f escape, "
                'probably a Windows path written with single backslashes; write "c:\\\\backup"'
            )
        return value, end

    def read_object(self, start: int, *, path: str, depth: int) -> tuple[JsonObject, int]:
        text = self.text
        result = JsonObject(self.position(start))
        index = self.skip_blanks(start + 1)
        if index < len(text) and text[index] == "}":
            return result, index + 1
        after_comma = False
        while True:
            if index >= len(text):
                raise self.fail(
                    index, f"the file ends inside the object opened on line {result.position.line}; add the missing '}}'"
                )
            if text[index] != '"':
                if after_comma and text[index] == "}":
                    raise self.fail(index, "a ',' is followed by '}'; remove the trailing comma")
                if text[index] == "'":
                    raise self.fail(index, "JSON keys use double quotes; replace the single quotes with \"")
                if text.startswith("//", index) or text.startswith("/*", index) or text[index] == "#":
                    raise self.fail(index, _NO_COMMENTS)
                raise self.fail(index, f'expected a key in double quotes but found {self.describe(index)}')
            key_index = index
            key, index = self.read_string(index)
            key_path = f"{path}.{key}" if path else key
            index = self.skip_blanks(index)
            if index >= len(text) or text[index] != ":":
                raise self.fail(index, f"expected ':' after the key \"{key}\" but found {self.describe(index)}")
            index = self.skip_blanks(index + 1)
            value, value_end = self.read_value(index, path=key_path, depth=depth + 1)
            if not is_comment_key(key):
                key_position = self.position(key_index)
                if key in result and not self._inside_comment(path):
                    earlier = result.key_positions[key].line
                    self.warnings.append(
                        f"{self.file}, line {key_position.line}: key \"{key_path}\" appears twice "
                        f"(lines {earlier} and {key_position.line}); the later value (line {key_position.line}) is used"
                    )
                result[key] = value
                result.key_positions[key] = key_position
            index = self.skip_blanks(value_end)
            if index < len(text) and text[index] == ",":
                index = self.skip_blanks(index + 1)
                after_comma = True
                continue
            if index < len(text) and text[index] == "}":
                return result, index + 1
            if index >= len(text):
                raise self.fail(
                    index, f"the file ends inside the object opened on line {result.position.line}; add the missing '}}'"
                )
            value_line = self.position(max(value_end - 1, 0)).line
            fix = (
                f"add a ',' at the end of line {value_line}"
                if text[index] == '"'
                else "add the missing ',' or '}'"
            )
            raise self.fail(index, f"expected ',' or '}}' after the value of \"{key}\"; {fix}")

    def read_array(self, start: int, *, path: str, depth: int) -> tuple[list[Any], int]:
        text = self.text
        opened = self.position(start)
        result: list[Any] = []
        index = self.skip_blanks(start + 1)
        if index < len(text) and text[index] == "]":
            return result, index + 1
        while True:
            if index < len(text) and text[index] == "]" and result:
                raise self.fail(index, "a ',' is followed by ']'; remove the trailing comma")
            value, value_end = self.read_value(index, path=path, depth=depth + 1)
            result.append(value)
            index = self.skip_blanks(value_end)
            if index < len(text) and text[index] == ",":
                index = self.skip_blanks(index + 1)
                continue
            if index < len(text) and text[index] == "]":
                return result, index + 1
            if index >= len(text):
                raise self.fail(index, f"the file ends inside the list opened on line {opened.line}; add the missing ']'")
            raise self.fail(index, f"expected ',' or ']' in the list opened on line {opened.line}; add the missing ','")


def parse_json(text: str, *, path: Path) -> tuple[Any, list[str]]:
    """Parse JSON text; return the value (objects as JsonObject) and the duplicate-key warnings."""
    reader = _JsonReader(text, path)
    return reader.read_document(), reader.warnings


# --------------------------------------------------------------------------------------------------
# GENERAL


def _to_percent(value: Any) -> Any:
    # "20%" reads as 20: the unit is already percent.
    if isinstance(value, str):
        return value.strip().removesuffix("%")
    return value


def _to_method(value: Any) -> str:
    method = str(value).strip().lower() or "post"
    if method not in ("post", "email", "sms", "wechat"):
        raise ValueError('expected "post", "email", "sms" or "wechat" (email, sms and wechat take their settings from '
                         'a NOTIFY section of that METHOD: see docs/notify.md)')
    return method


class _GeneralKeys(BaseModel):
    """The GENERAL keys ncbackup itself reads; every entry is also kept as a string in ``entries``."""

    model_config = ConfigDict(extra="ignore")

    hostname: str | None = Field(
        None, alias="HOSTNAME", json_schema_extra={"shown_default": "the machine's host name"},
        description="the server's name; every storage puts this server's backups under `HOSTNAME/`, so it may "
                    "not contain `/` or `\\` or be `..`",
    )
    work_folder: LegacyPath | None = Field(
        None, alias="WORK_FOLDER",
        json_schema_extra={"shown_default": "the system temp folder + `/ncbackup` (e.g. `/tmp/ncbackup`)"},
        description="scratch space. ncbackup streams, so a pure built-in pipeline leaves it empty; it is used when "
                    "an external script sits between data sections and needs files on disk, by `rsync` and "
                    "staged `custom_command` storages (one part at a time) and by SQLite copies. A file system "
                    "root (`/`, `c:\\`) is refused",
    )
    home_folder: LegacyPath | None = Field(
        None, alias="HOME_FOLDER", json_schema_extra={"shown_default": "not set (only external scripts and plugins need it)"},
        description="the install folder of the original tool: where `execute` programs (`HOME_FOLDER/NAME/EXECUTABLE`) "
                    "and `load` plugins (`HOME_FOLDER/FROM/FILENAME.py`) are found",
    )
    log_folder: LegacyPath | None = Field(
        None, alias="LOG_FOLDER", json_schema_extra={"shown_default": "no log file (stderr only)"},
        description="the log: a **file** path (`/var/log/nc-backup-py/ncbackup.log`), or a **folder** (an existing "
                    "folder, or a path written with a trailing `/`): then `ncbackup.log` inside it. A missing log "
                    "folder is created by the first run (mode 0700, said once in the log); its parent must exist",
    )
    local_backup: LegacyPath | None = Field(
        None, alias="LOCAL_BACKUP",
        description="folder for local copies; the default base folder of a `local` storage",
    )
    is_disk_space_check_on: LegacyBool = Field(
        True, alias="DISK_SPACE_CHECK", description="the free-space guard on WORK_FOLDER's file system",
    )
    disk_space_threshold_percent: Annotated[LegacyFloat, BeforeValidator(_to_percent)] = Field(
        20.0, ge=0, le=100, alias="DISK_SPACE_THRESHOLD",
        description="percent of free space on WORK_FOLDER's file system under which the guard warns (below half "
                    "of it: critical; below a tenth: the run stops); `\"20%\"` is read as 20",
    )
    report_url: str | None = Field(
        None, alias="MESSAGE_CONFIG_COMMAND", json_schema_extra={"shown_default": "no report"},
        description="URL that receives the run report (form POST: `srvname`, `result`, `bckmethod`, `size`, `log`, "
                    "`error`, `destination`)",
    )
    report_method: Annotated[str, BeforeValidator(_to_method)] = Field(
        "post", alias="MESSAGE_CONFIG_METHOD", json_schema_extra={"allowed": "`post`, `email`, `sms`, `wechat`"},
        description="how the report is sent: `post` sends the form POST to MESSAGE_CONFIG_COMMAND; `email`, `sms` "
                    "and `wechat` need a NOTIFY section of that METHOD holding their settings (docs/notify.md)",
    )
    max_runtime_seconds: DurationSeconds = Field(
        24 * 3600, alias="MAX_RUNTIME", json_schema_extra={"shown_default": "`24h`"},
        description="a run that lasts longer is stopped: its running step is interrupted (programs killed), the "
                    "remaining steps are skipped, no set is marked complete, undo commands still run and the run "
                    "fails (exit 2); a run that finds the lock held by a run older than this fails naming the "
                    "holder; seconds, or `90m`, `24h`, `2d`",
    )
    alert_after_hours: LegacyFloat = Field(
        26.0, gt=0, alias="ALERT_AFTER_HOURS",
        description="when a run starts and the newest complete set on a storage is older than this many hours, "
                    "the run warns (even if it then succeeds); `ncbackup status` flags such hosts",
    )
    state_folder: LegacyPath | None = Field(
        None, alias="STATE_FOLDER",
        json_schema_extra={"shown_default": "`/var/lib/ncbackup` for root, else `~/.local/state/ncbackup`"},
        description="local state of incremental file backups (docs/incremental.md): one small file per config and "
                    "files stream, written after each complete set; created with mode 0700. A file system root is "
                    "refused",
    )


def _general_entries(general: JsonObject) -> dict[str, str]:
    entries: dict[str, str] = {}
    for key, value in general.items():
        if value is None:
            continue
        if isinstance(value, (dict, list)):
            # The original passed str(value) to scripts; JSON text is the faithful equivalent.
            entries[key] = json.dumps(_plain(value))
        else:
            entries[key] = scalar_text(value)
    return entries


def resolve_log_file(text: str, *, position: Position | None) -> Path:
    """LOG_FOLDER is a log file, or a folder (existing, or written with a trailing separator) holding ncbackup.log.

    The log's folder may be missing (a run creates it, 0700) but not its parent: a typo there should
    not silently grow a tree of folders.
    """
    stripped = text.strip()
    path = Path(clean_path_text(stripped))
    names_folder = stripped.endswith(("/", "\\")) or path.is_dir()
    folder = path if names_folder else path.parent
    if not folder.is_dir() and not folder.parent.is_dir():
        raise _error_at(
            position,
            f"neither the log folder {folder} nor its parent {folder.parent} exists; ncbackup creates only the "
            "log folder itself: create its parent or point LOG_FOLDER at an existing folder",
            key="GENERAL.LOG_FOLDER",
        )
    return path / LOG_FILE_NAME if names_folder else path


def build_general(general: JsonObject, *, position: Position | None) -> GeneralSettings:
    """GENERAL -> GeneralSettings, with the defaults of COMPAT.md section 2."""
    keys = validate_values(
        _GeneralKeys,
        general,
        section_name="GENERAL",
        positions=general.key_positions,
        fallback=position,
        container="GENERAL",
    )
    entries = _general_entries(general)
    log_file = None
    if keys.log_folder is not None:
        log_file = resolve_log_file(entries["LOG_FOLDER"], position=general.key_positions.get("LOG_FOLDER"))
    hostname = (keys.hostname or "").strip() or socket.gethostname()
    # HOSTNAME becomes a storage prefix: a separator or ".." would write outside this server's folder.
    if re.search(r"[/\\\x00-\x1f]", hostname) or hostname in (".", ".."):
        raise _error_at(
            general.key_positions.get("HOSTNAME"),
            f"{hostname!r} cannot be a storage folder name; use a plain name such as \"web1\" (no '/', '\\' or '..')",
            key="GENERAL.HOSTNAME",
        )
    if keys.work_folder is not None and _FILE_SYSTEM_ROOT.fullmatch(str(keys.work_folder)):
        raise _error_at(
            general.key_positions.get("WORK_FOLDER"),
            "a file system root cannot be the scratch folder; use a folder such as /var/tmp/ncbackup",
            key="GENERAL.WORK_FOLDER",
        )
    if keys.state_folder is not None and _FILE_SYSTEM_ROOT.fullmatch(str(keys.state_folder)):
        raise _error_at(
            general.key_positions.get("STATE_FOLDER"),
            "a file system root cannot be the state folder; use a folder such as /var/lib/ncbackup",
            key="GENERAL.STATE_FOLDER",
        )
    report_url = (keys.report_url or "").strip() or None
    return GeneralSettings(
        hostname=hostname,
        work_folder=keys.work_folder or Path(tempfile.gettempdir()) / "ncbackup",
        home_folder=keys.home_folder,
        log_file=log_file,
        local_backup=keys.local_backup,
        is_disk_space_check_on=keys.is_disk_space_check_on,
        disk_space_threshold_percent=keys.disk_space_threshold_percent,
        report_url=report_url,
        report_method=keys.report_method,
        max_runtime_seconds=keys.max_runtime_seconds,
        alert_after_hours=keys.alert_after_hours,
        state_folder=keys.state_folder,
        entries=entries,
        position=position,
    )


# --------------------------------------------------------------------------------------------------
# Other sections


def _text_or_none(section: JsonObject, key: str, *, name: str) -> str | None:
    """A top-level envelope value as text; absent, null or blank -> None."""
    if key not in section:
        return None
    value = section[key]
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise _error_at(
            section.key_positions.get(key), 'expected a string such as "value", not an object or list; fix it',
            key=f"{name}.{key}",
        )
    text = scalar_text(value).strip()
    return text or None


def _timeout_seconds(section: JsonObject, *, name: str) -> float | None:
    text = _text_or_none(section, "TIMEOUT", name=name)
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise _error_at(
            section.key_positions.get("TIMEOUT"),
            f"expected a positive number of seconds such as \"3600\", got {text!r}; fix it or remove TIMEOUT for no limit",
            key=f"{name}.TIMEOUT",
        )
    return seconds


def build_section(name: str, section: JsonObject, *, position: Position) -> SectionSettings:
    """One non-GENERAL section -> SectionSettings (aliases applied, ARGS_DICT parsed, positions kept)."""
    raw_action = _text_or_none(section, "ACTION", name=name)
    action = raw_action.lower() if raw_action else None
    if action is not None and action not in ACTIONS:
        raise _error_at(
            section.key_positions.get("ACTION"),
            f'unknown ACTION "{raw_action}"; use "execute" (run a program), "load" (a Python plugin), '
            "or leave ACTION out for a section other sections read",
            key=f"{name}.ACTION",
        )
    module_name = _text_or_none(section, "NAME", name=name)
    from_folder = _text_or_none(section, "FROM", name=name)
    class_name = _text_or_none(section, "CLASS", name=name)
    filename = _text_or_none(section, "FILENAME", name=name)
    if action == "execute" and module_name is None:
        raise _error_at(
            position,
            'ACTION "execute" needs NAME (the built-in name, or the folder under HOME_FOLDER holding the program); add it',
            key=name,
        )
    if action == "load":
        missing = [key for key, value in (("FROM", from_folder), ("CLASS", class_name)) if value is None]
        if missing:
            raise _error_at(
                position,
                f'ACTION "load" needs {" and ".join(missing)} (the plugin folder under HOME_FOLDER and its class); add it',
                key=name,
            )
        filename = filename or from_folder
    module = module_name if action == "execute" else from_folder if action == "load" else (module_name or from_folder)

    raw_parameters: dict[str, Any] = {}
    parameters: dict[str, Any] = {}
    parameter_positions: dict[str, Position] = {}
    if section.get("PARAMETERS") is not None:
        block = section["PARAMETERS"]
        if not isinstance(block, JsonObject):
            raise _error_at(
                section.key_positions.get("PARAMETERS"),
                'PARAMETERS must be an object such as {"KEY": "value"}; wrap its entries in { }',
                key=f"{name}.PARAMETERS",
            )
        raw_parameters = _plain(block)
        normal, parameter_positions = normalise_keys(block, block.key_positions, where=f"{name}.PARAMETERS")
        parameters = stringify_scalars(_plain(normal))

    mode_text = _text_or_none(section, "PARAMETERS_MODE", name=name)
    parameters_mode = mode_text.lower() if mode_text else "named"
    if parameters_mode not in PARAMETERS_MODES:
        raise _error_at(
            section.key_positions.get("PARAMETERS_MODE"),
            f'unknown PARAMETERS_MODE "{mode_text}"; use "named" (--KEY value, the default) or "flat" (values only)',
            key=f"{name}.PARAMETERS_MODE",
        )

    others = {key: value for key, value in section.items() if key not in ENVELOPE_KEYS}
    extra, extra_positions = normalise_keys(others, section.key_positions, where=name)
    key_positions = {key: at for key, at in section.key_positions.items() if key in ENVELOPE_KEYS}
    key_positions.update(extra_positions)

    return SectionSettings(
        name=name,
        action=action,
        module=module,
        executable=_text_or_none(section, "EXECUTABLE", name=name),
        execute_with=_text_or_none(section, "EXECUTE_WITH", name=name),
        filename=filename,
        class_name=class_name,
        parameters=parameters,
        raw_parameters=raw_parameters,
        parameters_mode=parameters_mode,
        timeout_seconds=_timeout_seconds(section, name=name),
        extra=stringify_scalars(_plain(extra)),
        position=position,
        parameter_positions=parameter_positions,
        key_positions=key_positions,
    )


# --------------------------------------------------------------------------------------------------
# Entry points


def loads_config(text: str, *, path: Path | str = "<config>") -> Config:
    """Parse config text (path names it in messages); raise ConfigError naming file, line, column and the fix."""
    file = Path(path)
    document, warnings = parse_json(text, path=file)
    if not isinstance(document, JsonObject):
        raise ConfigError(
            'the top level must be an object such as {"GENERAL": {...}, "FILESET": {...}}; wrap the sections in { }',
            file=file, line=1, column=1,
        )
    general: GeneralSettings | None = None
    sections: list[SectionSettings] = []
    for name, body in document.items():
        position = document.key_positions[name]
        if not isinstance(body, JsonObject):
            raise _error_at(
                position,
                f'section "{name}" must be an object such as {{"ACTION": "execute", ...}}; '
                'wrap its keys in { } (or start its name with "__" to make it a comment)',
                key=name,
            )
        if name == "GENERAL":
            general = build_general(body, position=position)
        else:
            sections.append(build_section(name, body, position=position))
    if general is None:
        near = [name for name in document if name.strip().upper() == "GENERAL"]
        hint = f' ("{near[0]}" is spelled differently: the name is GENERAL, in capitals)' if near else ""
        raise ConfigError(
            f'there is no GENERAL section{hint}; add "GENERAL": {{"HOSTNAME": "...", "WORK_FOLDER": "..."}} to the config',
            file=file,
        )
    config = Config(path=file, general=general, sections=sections, warnings=warnings)
    # Masked by value from now on, before any log line, report or error can quote them.
    register_config_secrets(config)
    return config


def load_config(path: Path | str) -> Config:
    """Read and parse the config file at path; every problem is a ConfigError naming the file and the fix."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError("config file not found; check the path given with -c", file=file) from None
    except OSError as error:
        # Windows says PermissionError for a folder: test for the folder first to name the real problem.
        if file.is_dir():
            raise ConfigError("is a folder, not a config file; give the path of the .json file", file=file) from None
        if isinstance(error, PermissionError):
            raise ConfigError(
                "cannot be read (permission denied); run as a user who may read it, or fix its permissions", file=file
            ) from None
        raise ConfigError(
            f"cannot be read ({error.strerror or error}); check the path and the disk", file=file
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"is not UTF-8 text (byte {error.start}); save it as UTF-8", file=file, line=line
        ) from None
    return loads_config(text, path=file)
