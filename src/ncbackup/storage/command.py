"""custom_command storage: the original's UPLOAD_COMMAND_TEMPLATE, run as an argument list, never a shell.

A template is split with shlex first; ``%(NAME)s`` placeholders are then filled in each argument
separately, so a value with spaces or shell metacharacters stays one argument and is never
interpreted. How a part reaches the upload command:

- an argument ``-`` or ``%(stdin)s`` (which becomes /dev/stdin): the part is streamed on stdin;
- otherwise ``%(OBJECTIVES)s`` (e.g. ``%(OBJECTIVES)s/%(file)s``): the part is staged as a file in a
  folder of WORK_FOLDER, one part at a time, removed once the command has finished.

DOWNLOAD_COMMAND_TEMPLATE writes the object to ``%(OBJECTIVES)s/%(file)s`` when it names that
placeholder, otherwise to its stdout (``%(stdout)s`` is /dev/stdout, for tools that need a path);
LIST_COMMAND_TEMPLATE prints one key per line (or ``SIZE<TAB>KEY``);
REMOVE_COMMAND_TEMPLATE removes one object and succeeds when it is already gone.
"""

from __future__ import annotations

import builtins
import logging
import posixpath
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field

from ncbackup import process
from ncbackup.config.secret_values import is_secret_name
from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.config.types import LegacyFloat
from ncbackup.errors import BackupError, CommandFailed, ConfigError, StorageError
from ncbackup.sources.base import CheckLine
from ncbackup.storage.base import ObjectInfo
from ncbackup.storage.rsync import StagedFile

log = logging.getLogger(__name__)

COPY_CHUNK_BYTES = 1 << 20
STDIN_MARKER = "/dev/stdin"
STDOUT_MARKER = "/dev/stdout"
# Placeholders ncbackup fills in itself; ARGS_DICT / UPLOAD_COMMAND_DICT entries are added to them.
BUILTIN_PLACEHOLDERS = ("OBJECTIVES", "HOSTNAME", "WORK_FOLDER", "file", "key", "set_id", "prefix", "remote",
                        "stdin", "stdout")
_PLACEHOLDER = re.compile(r"%\((?P<name>[^)]*)\)")

TEMPLATE_KEYS = {
    "upload": "UPLOAD_COMMAND_TEMPLATE",
    "download": "DOWNLOAD_COMMAND_TEMPLATE",
    "list": "LIST_COMMAND_TEMPLATE",
    "remove": "REMOVE_COMMAND_TEMPLATE",
}


class CommandOptions(BaseModel):
    """PARAMETERS keys of DESTINATION custom_command (templates sit beside ARGS_DICT, as in the original)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    upload: str = Field(
        alias="UPLOAD_COMMAND_TEMPLATE", min_length=1, description="the command that stores one part (below)",
    )
    download: str | None = Field(
        default=None, alias="DOWNLOAD_COMMAND_TEMPLATE",
        description="the command that reads one part back (`restore`, `verify`)",
    )
    list: str | None = Field(
        default=None, alias="LIST_COMMAND_TEMPLATE",
        description="the command that lists the stored objects (`list`, `--latest`, cleanup)",
    )
    remove: str | None = Field(
        default=None, alias="REMOVE_COMMAND_TEMPLATE",
        description="the command that removes one object (cleanup, an aborted upload)",
    )
    prefix: str | None = Field(
        default=None, alias="PREFIX", json_schema_extra={"shown_default": "`<HOSTNAME>/`"},
        description="the base of every object name; `/` for none",
    )
    timeout_seconds: LegacyFloat | None = Field(
        default=None, alias="COMMAND_TIMEOUT", gt=0, json_schema_extra={"shown_default": "no limit"},
        description="seconds each command run may take",
    )


@dataclass(frozen=True)
class Template:
    """One command template, split into arguments once."""

    setting: str            # the config key, for messages
    words: tuple[str, ...]

    @property
    def uses_stdin(self) -> bool:
        return any(word == "-" or "%(stdin)s" in word for word in self.words)

    @property
    def uses_staging(self) -> bool:
        return any("%(OBJECTIVES)s" in word for word in self.words)

    def placeholders(self) -> set[str]:
        return {match["name"] for word in self.words for match in _PLACEHOLDER.finditer(word)}

    def argv(self, values: Mapping[str, str]) -> list[str]:
        """Fill placeholders argument by argument: a value never splits or joins arguments."""
        return [word % values for word in self.words]


def parse_template(text: str, *, setting: str, known: set[str], section: SectionSettings) -> Template:
    """Split a template and check its placeholders; ConfigError names the unknown one and the known ones."""
    position = section.parameter_positions.get(setting) or section.position

    def problem(message: str) -> ConfigError:
        return ConfigError(message, file=position.file if position else None,
                           line=position.line if position else None, key=setting)

    try:
        words = tuple(shlex.split(text))
    except ValueError as error:
        raise problem(f"cannot split the command ({error}); check its quotes") from None
    if not words:
        raise problem("the command is empty; write the program and its arguments")
    template = Template(setting=setting, words=words)
    unknown = sorted(template.placeholders() - known)
    if unknown:
        raise problem(
            f"unknown placeholder %({unknown[0]})s; use one of {', '.join(sorted(known))} "
            "(or add it to ARGS_DICT); write a literal % as %%",
        )
    probe = dict.fromkeys(known, "x")
    for word in words:
        try:
            word % probe
        except (ValueError, TypeError) as error:
            raise problem(f"bad placeholder in argument {word!r} ({error}); write %(NAME)s, and %% for a literal %") from None
    return template


class CommandStorage:
    """Runs the configured commands to store, fetch, list and remove ``<prefix><key>`` objects."""

    def __init__(self, templates: dict[str, Template | None], *, hostname: str, prefix: str, work_folder: Path,
                 extra_values: Mapping[str, str], timeout_seconds: float | None = None) -> None:
        self.templates = templates
        self.hostname = hostname
        self.prefix = prefix
        self.work_folder = work_folder
        self.extra_values = dict(extra_values)
        self.timeout_seconds = timeout_seconds
        self.can_list = templates["list"] is not None   # for callers picking a storage to read from
        upload = templates["upload"]
        if upload is None:
            raise ConfigError("DESTINATION custom_command needs UPLOAD_COMMAND_TEMPLATE; add it to the STORAGE section",
                              key="UPLOAD_COMMAND_TEMPLATE")
        program = upload.words[0]
        self.name = f"custom_command:{Path(program).name}:{prefix}"

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings) -> CommandStorage:
        from ncbackup.config.types import parse_options

        options = parse_options(CommandOptions, section)
        parameters = section.parameters or {}
        extra = {str(k): str(v) for k, v in dict(parameters.get("ARGS_DICT") or {}).items()}
        extra.update({str(k): str(v) for k, v in dict(parameters.get("UPLOAD_COMMAND_DICT") or {}).items()})
        known = set(BUILTIN_PLACEHOLDERS) | set(extra)
        templates: dict[str, Template | None] = {}
        for role, setting in TEMPLATE_KEYS.items():
            text = getattr(options, role)
            templates[role] = parse_template(text, setting=setting, known=known, section=section) if text else None
        upload = templates["upload"]
        if upload is None or not (upload.uses_stdin or upload.uses_staging):
            raise ConfigError(
                "the upload command never receives the part; give it %(OBJECTIVES)s/%(file)s (a staged file), "
                "or - / %(stdin)s (the part on stdin)", key="UPLOAD_COMMAND_TEMPLATE",
            )
        prefix = options.prefix if options.prefix is not None else f"{general.hostname}/"
        prefix = f"{prefix.strip().strip('/')}/" if prefix.strip().strip("/") else ""
        return cls(templates, hostname=general.hostname, prefix=prefix, work_folder=Path(general.work_folder),
                   extra_values=extra, timeout_seconds=options.timeout_seconds)

    # -- helpers --------------------------------------------------------------------------------

    def _values(self, key: str = "", *, staging: Path | None = None) -> dict[str, str]:
        set_id, _, file = key.rpartition("/")
        values = dict(self.extra_values)
        values.update({
            "OBJECTIVES": str(staging) if staging else "",
            "HOSTNAME": self.hostname,
            "WORK_FOLDER": str(self.work_folder),
            "file": file,
            "key": key,
            "set_id": set_id,
            "prefix": self.prefix,
            "remote": f"{self.prefix}{key}",
            "stdin": STDIN_MARKER,
            "stdout": STDOUT_MARKER,
        })
        return values

    def _template(self, role: str) -> Template:
        template = self.templates[role]
        if template is None:
            raise StorageError(
                f"{self.name} cannot {role} objects: add {TEMPLATE_KEYS[role]} to the STORAGE section "
                "(needed by list, restore, verify and cleanup)", is_permanent=True,
            )
        return template

    def _staging(self) -> Path:
        try:
            self.work_folder.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix="ncbackup-command-", dir=self.work_folder))
        except OSError as error:
            raise StorageError(f"cannot create a staging folder in WORK_FOLDER {self.work_folder}: {error}; "
                               "fix WORK_FOLDER") from None

    def _failed(self, error: BackupError, *, action: str, key: str) -> StorageError:
        return StorageError(f"the {action} command for {key or 'the storage'} failed ({error}); check the "
                            f"{TEMPLATE_KEYS[action]} command by hand")

    @staticmethod
    def _safe_key(key: str) -> str:
        clean = posixpath.normpath(key.lstrip("/"))
        if clean.startswith("..") or clean in {".", ""}:
            raise StorageError(f"refusing key {key!r}: it leaves the storage folder", is_permanent=True)
        return clean

    # -- the four operations --------------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO) -> None:
        """Run the upload command with the part on stdin, or staged as %(OBJECTIVES)s/%(file)s."""
        key = self._safe_key(key)
        template = self._template("upload")
        if template.uses_stdin:
            argv = template.argv(self._values(key))
            try:
                with process.stream_stdin(argv, timeout_seconds=self.timeout_seconds) as sink:
                    while chunk := stream.read(COPY_CHUNK_BYTES):
                        sink.write(chunk)
            except BaseException as error:
                # The command may have stored a truncated object: remove it when we know how.
                self._remove_quietly(key)
                if isinstance(error, BackupError):
                    raise self._failed(error, action="upload", key=key) from None
                raise
            return
        staging = self._staging()
        try:
            local = staging / posixpath.basename(key)
            with open(local, "wb") as handle:
                while chunk := stream.read(COPY_CHUNK_BYTES):
                    handle.write(chunk)
            try:
                process.run(template.argv(self._values(key, staging=staging)), timeout_seconds=self.timeout_seconds)
            except BackupError as error:
                raise self._failed(error, action="upload", key=key) from None
        except OSError as error:
            raise StorageError(f"cannot stage {key} in WORK_FOLDER {self.work_folder}: {error}; free space there") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _remove_quietly(self, key: str) -> None:
        template = self.templates["remove"]
        if template is None:
            return
        try:
            process.run(template.argv(self._values(key)), timeout_seconds=self.timeout_seconds, check=False)
        except BackupError as error:
            log.warning("%s: could not remove the incomplete %s: %s", self.name, key, error)

    def get(self, key: str) -> BinaryIO:
        """Run the download command into a staged file in WORK_FOLDER; the file goes when the stream is closed."""
        key = self._safe_key(key)
        template = self._template("download")
        staging = self._staging()
        local = staging / posixpath.basename(key)
        try:
            argv = template.argv(self._values(key, staging=staging))
            if not template.uses_staging:
                with process.stream_stdout(argv, timeout_seconds=self.timeout_seconds) as source, \
                        open(local, "wb") as handle:
                    while chunk := source.read(COPY_CHUNK_BYTES):
                        handle.write(chunk)
            else:
                process.run(argv, timeout_seconds=self.timeout_seconds)
            if not local.is_file():
                raise StorageError(f"the download command for {key} did not write {local}; check DOWNLOAD_COMMAND_TEMPLATE",
                                   is_permanent=True)
            return StagedFile(local, staging)
        except BackupError as error:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(error, StorageError):
                raise
            raise StorageError(f"{key} could not be fetched from {self.name} ({error}); check that it exists and "
                               "the DOWNLOAD_COMMAND_TEMPLATE command by hand") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Run the list command; each output line is KEY or SIZE<TAB>KEY (relative to the storage prefix)."""
        template = self._template("list")
        try:
            completed = process.run(template.argv(self._values()), timeout_seconds=self.timeout_seconds)
        except BackupError as error:
            raise self._failed(error, action="list", key="") from None
        found = []
        for line in completed.text.splitlines():
            if not line.strip():
                continue
            size_text, tab, name = line.partition("\t")
            if not tab:
                size_text, name = "0", line
            name = name.strip()
            if self.prefix and name.startswith(self.prefix):
                name = name[len(self.prefix):]
            try:
                size_bytes = int(size_text.strip())
            except ValueError:
                size_bytes = 0
            found.append(ObjectInfo(key=name, size_bytes=size_bytes))
        for info in sorted(found, key=lambda item: item.key):
            if info.key.startswith(prefix):
                yield info

    def delete(self, key: str) -> None:
        """Run the remove command for one key."""
        key = self._safe_key(key)
        try:
            process.run(self._template("remove").argv(self._values(key)), timeout_seconds=self.timeout_seconds)
        except CommandFailed as error:
            raise self._failed(error, action="remove", key=key) from None
        except BackupError as error:
            if isinstance(error, StorageError):
                raise
            raise self._failed(error, action="remove", key=key) from None

    def prune_support(self) -> str | None:
        """None when LIST, DOWNLOAD (manifests are read and verified) and REMOVE templates are all set; else which are missing."""
        missing = [TEMPLATE_KEYS[role] for role in ("list", "download", "remove") if self.templates[role] is None]
        if not missing:
            return None
        names = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
        return (f"prune cannot work here: {names} {'is' if len(missing) == 1 else 'are'} not set; prune lists the "
                f"sets, reads their manifests and removes old ones, so add {'it' if len(missing) == 1 else 'them'} "
                "to the STORAGE section")

    def check(self) -> builtins.list[CheckLine]:
        """Templates were checked when the section was read; here: every program they name is installed, no secret on argv."""
        lines = []
        for role, template in self.templates.items():
            if template is None:
                if role != "upload":
                    lines.append(CheckLine(True, f"{TEMPLATE_KEYS[role]} not set: {role} is unavailable for {self.name}"))
                continue
            secrets = sorted(name for name in template.placeholders() & set(self.extra_values) if is_secret_name(name))
            if secrets:
                lines.append(CheckLine(True, f"{TEMPLATE_KEYS[role]}: warning: %({secrets[0]})s puts a secret on the "
                                             "command line, where every local user can read it (ps); prefer the tool's "
                                             "own credentials file or environment"))
            program = template.words[0]
            if "%(" in program:
                lines.append(CheckLine(True, f"{TEMPLATE_KEYS[role]}: program is a placeholder, checked at run time"))
            elif process.which(program) is None:
                lines.append(CheckLine(False, f"{TEMPLATE_KEYS[role]}: program {program!r} was not found; install it "
                                              "or give its full path"))
            else:
                lines.append(CheckLine(True, f"{TEMPLATE_KEYS[role]}: {program} found"))
        return lines
