"""Active Directory source (new, ``NAME: ad_backup``): the domain controller's directory as one stream ``ad``.

On a Samba AD DC, ``samba-tool domain backup offline`` (default; locks the databases, the DC may keep
running) or ``online`` (replicates from a running DC over the network, credentials from a 0600 file)
writes a ``.tar.bz2`` into a private temporary folder in WORK_FOLDER; that file is streamed into the
set, then removed. The password reaches samba-tool only through a temporary 0600 file named by
``PASSWD_FILE`` in its environment (samba-tool has no authentication-file option; ``--password``
would put it on the command line). On Windows (``WINDOWS_METHOD``), ``ntdsutil`` makes an
install-from-media copy (``ifm``) or ``wbadmin`` a system-state backup (``systemstate``); the folder
it writes is streamed as a tar. Restore writes the file back (``--target``) or rebuilds a new Samba
DC from it with ``samba-tool domain backup restore`` (``--to-dc DIR --new-server-name NAME``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ncbackup import platform
from ncbackup.config.types import LegacyPath, parse_options
from ncbackup.engine.logs import add_secret
from ncbackup.errors import BackupError, CommandFailed, ConfigError, SourceError
from ncbackup.process import child_env, run, which
from ncbackup.sources._dbsupport import copy_stream, drop_blank_values, failure_reason, secret_file
from ncbackup.sources.base import CheckLine, RestoreRequest, SourceDescriptor, StreamReport
from ncbackup.stages.keys import refuse_if_readable_by_others

log = logging.getLogger(__name__)

STREAM_NAME = "ad"
# Where samba-tool reads smb.conf when -s is not given (Debian's build; `smbd -b` shows CONFIGFILE).
SYSTEM_SMB_CONF = Path("/etc/samba/smb.conf")
SAMBA_METHODS = {"offline": "samba-offline", "online": "samba-online"}


class AdOptions(BaseModel):
    """The AD section's PARAMETERS."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    mode: Literal["offline", "online"] = Field(
        "offline", alias="MODE",
        description="Samba: `offline` (`samba-tool domain backup offline`, the local DC's files) or `online` "
                    "(`samba-tool domain backup online` against the running DC `SERVER`)",
    )
    smb_conf: LegacyPath | None = Field(
        None, alias="SMB_CONF", json_schema_extra={"shown_default": "samba-tool's (/etc/samba/smb.conf)"},
        description="the DC's smb.conf (`samba-tool -s`)",
    )
    server: str | None = Field(None, alias="SERVER", description="online: the DC to back up (name or address)")
    credentials_file: LegacyPath | None = Field(
        None, alias="CREDENTIALS_FILE",
        description="online: a 0600 file of `username = ...`, `password = ...` and optional `domain = ...` lines "
                    "(the format of `smbclient -A`); the password reaches samba-tool only in a temporary 0600 file",
    )
    samba_tool: str = Field("samba-tool", alias="SAMBA_TOOL_BIN", description="the samba-tool program")
    windows_method: Literal["ifm", "systemstate"] | None = Field(
        None, alias="WINDOWS_METHOD", json_schema_extra={"shown_default": "none: Samba"},
        description="on a Windows DC: `ifm` (`ntdsutil` install-from-media copy of NTDS and SYSVOL) or "
                    "`systemstate` (`wbadmin start systemstatebackup`); set, it replaces the Samba modes",
    )
    wbadmin_target: str | None = Field(
        None, alias="WBADMIN_TARGET",
        description="systemstate: the volume wbadmin writes to (e.g. `E:`); it must not hold a WindowsImageBackup "
                    "folder already (ncbackup streams and removes the one wbadmin writes)",
    )
    ntdsutil: str = Field("ntdsutil", alias="NTDSUTIL_BIN", description="the ntdsutil program")
    wbadmin: str = Field("wbadmin", alias="WBADMIN_BIN", description="the wbadmin program")
    timeout_seconds: float | None = Field(
        None, alias="TIMEOUT_SECONDS", json_schema_extra={"shown_default": "no limit"},
        description="seconds the backup program may take; a longer one is stopped and the stream fails",
    )

    @model_validator(mode="before")
    @classmethod
    def _ignore_blank_values(cls, values: Any) -> Any:
        values = drop_blank_values(values)
        if isinstance(values, dict):
            # Modes are words: "Offline" and "IFM" mean the same.
            for key in ("MODE", "WINDOWS_METHOD"):
                if isinstance(values.get(key), str):
                    values = {**values, key: values[key].strip().lower()}
        return values

    @model_validator(mode="after")
    def _online_needs_server_and_credentials(self) -> AdOptions:
        if self.windows_method is None and self.mode == "online" and (not self.server or self.credentials_file is None):
            raise ValueError("MODE online needs SERVER (the DC to back up) and CREDENTIALS_FILE (a 0600 file); add them")
        if self.windows_method == "systemstate" and not self.wbadmin_target:
            raise ValueError("WINDOWS_METHOD systemstate needs WBADMIN_TARGET (a volume such as E:); add it")
        return self

    @property
    def method(self) -> str:
        """What the manifest records: samba-offline, samba-online, ifm or systemstate."""
        return self.windows_method or SAMBA_METHODS[self.mode]


@dataclass(frozen=True)
class SambaLogin:
    """Who samba-tool logs in as for an online backup; the password is never put on a command line."""

    user: str               # "DOMAIN\\user" or "user", for -U
    password: str


def _credential_values(path: Path, *, key: str) -> dict[str, str]:
    """``name = value`` lines of the smbclient-style credentials file, names lower-cased; only the password is masked.

    Not config/credentials.read_credentials: that masks every value, and a domain such as ``AD`` or a user such
    as ``Administrator`` would then vanish from every log line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"the credentials file {path} does not exist; create it (username = ..., password = ..., "
                          "domain = ... lines, mode 0600) or fix CREDENTIALS_FILE", key=key) from None
    except (OSError, UnicodeDecodeError) as error:
        problem = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        raise ConfigError(f"the credentials file {path} cannot be read ({problem}); fix its permissions or content",
                          key=key) from None
    refuse_if_readable_by_others(path, "credentials file", key=key)
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, separator, value = stripped.partition("=")
        if not separator or not name.strip():
            # The line may be a bare password: never quote it.
            raise ConfigError(f"line {number} of the credentials file {path} is not `name = value`; write username, "
                              "password and domain lines", key=key)
        values[name.strip().lower()] = value.strip()
    if values.get("password"):
        add_secret(values["password"], where=f"the password in {path}")
    return values


def read_login(options: AdOptions, *, section_name: str = "AD") -> SambaLogin:
    """The online login from CREDENTIALS_FILE (0600, else ConfigError); the password is masked in logs."""
    key = f"{section_name}.CREDENTIALS_FILE"
    if options.credentials_file is None:
        raise ConfigError(f"section {section_name}: MODE online needs CREDENTIALS_FILE; add it", key=key)
    path = options.credentials_file.expanduser()
    values = _credential_values(path, key=key)
    user, password, domain = values.get("username", ""), values.get("password", ""), values.get("domain", "")
    if not user or not password:
        raise ConfigError(f"the credentials file {path} of section {section_name} needs `username = ...` and "
                          "`password = ...` lines; add them", key=key)
    if "%" in user or "%" in domain:
        # samba-tool reads "user%password" in -U: a % would turn the rest of the name into a password.
        raise ConfigError(f"the user name in {path} holds %, which samba-tool reads as the start of a password; "
                          "fix the username line", key=key)
    return SambaLogin(user=f"{domain}\\{user}" if domain else user, password=password)


def samba_config_args(options: AdOptions) -> list[str]:
    return [f"--configfile={options.smb_conf}"] if options.smb_conf is not None else []


def samba_backup_argv(options: AdOptions, target_folder: Path, login: SambaLogin | None) -> list[str]:
    """The samba-tool command line: no secret in it (the online password is in PASSWD_FILE)."""
    if options.mode == "offline":
        return [options.samba_tool, "domain", "backup", "offline", f"--targetdir={target_folder}", *samba_config_args(options)]
    if login is None:
        raise BackupError("an online AD backup needs its login; this is a bug")
    return [options.samba_tool, "domain", "backup", "online", f"--server={options.server}", f"--targetdir={target_folder}",
            f"--username={login.user}", *samba_config_args(options)]


def ntdsutil_argv(options: AdOptions, ifm_folder: PureWindowsPath | Path) -> list[str]:
    """``ntdsutil "activate instance ntds" ifm "create sysvol full <folder>" quit quit``: one ntdsutil command per argument."""
    folder = str(ifm_folder)
    shown = f'"{folder}"' if " " in folder else folder
    return [options.ntdsutil, "activate instance ntds", "ifm", f"create sysvol full {shown}", "quit", "quit"]


def wbadmin_argv(options: AdOptions) -> list[str]:
    return [options.wbadmin, "start", "systemstatebackup", f"-backupTarget:{options.wbadmin_target}", "-quiet"]


def wbadmin_folder(target: str) -> Path:
    """The folder wbadmin writes a system-state backup to on a volume: ``E:`` -> ``E:\\WindowsImageBackup``."""
    volume = target.rstrip("\\/")
    return Path(f"{volume}\\WindowsImageBackup") if len(volume) == 2 and volume[1] == ":" else Path(volume) / "WindowsImageBackup"


@contextmanager
def private_folder(work_folder: Path, prefix: str) -> Iterator[Path]:
    """A fresh folder only the owner may enter (mkdtemp: 0700), in WORK_FOLDER when it exists; removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=work_folder if work_folder.is_dir() else None))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _one_backup_file(folder: Path) -> Path:
    files = sorted(folder.glob("*.tar.bz2"))
    if len(files) != 1:
        raise SourceError(f"samba-tool reported success but left {len(files)} backup files in {folder}; "
                          "run the same samba-tool command by hand to see what it wrote")
    return files[0]


def write_folder_as_tar(folder: Path, sink: BinaryIO, *, arcname: str) -> None:
    """Stream folder into sink as an uncompressed tar (the pipeline compresses); nothing is held in memory."""
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        archive.add(folder, arcname=arcname, recursive=True)


@dataclass
class AdStream:
    """The directory backup of this DC, made by the configured method."""

    options: AdOptions
    work_folder: Path
    section_name: str = "AD"
    name: str = STREAM_NAME
    kind: str = "ad"
    suffix: str = ".tar.bz2"      # the Windows methods stream a plain tar (see AdSource.streams)

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        report.metadata.update({"method": self.options.method, "format": self.suffix.lstrip(".")})
        try:
            if self.options.windows_method == "ifm":
                self._write_ifm(sink)
            elif self.options.windows_method == "systemstate":
                self._write_system_state(sink)
            else:
                self._write_samba(sink)
        except CommandFailed as error:
            raise SourceError(f"{self._what()} failed ({failure_reason(error)}); {self._hint()}") from error
        except (SourceError, ConfigError):
            raise
        except BackupError as error:
            raise SourceError(f"{self._what()} could not start: {failure_reason(error)}") from error

    def _what(self) -> str:
        return {"samba-offline": "samba-tool domain backup offline",
                "samba-online": f"samba-tool domain backup online of {self.options.server}",
                "ifm": "ntdsutil ifm", "systemstate": "wbadmin start systemstatebackup"}[self.options.method]

    def _hint(self) -> str:
        if self.options.method == "samba-online":
            return "check that the DC is up and the credentials file"
        if self.options.method == "samba-offline":
            return "check SMB_CONF and that this host is a Samba AD DC"
        return "run it by hand as an administrator to see why"

    def _run(self, argv: list[str], *, env: dict[str, str] | None = None) -> None:
        # Progress goes to stderr; on success it is noise, on failure its tail is in the error.
        run(argv, timeout_seconds=self.options.timeout_seconds, env=env, stderr_log_level=logging.DEBUG)

    def _write_samba(self, sink: BinaryIO) -> None:
        login = read_login(self.options, section_name=self.section_name) if self.options.mode == "online" else None
        # The backup file holds every password hash of the domain: it lives only in a 0700 folder.
        with private_folder(self.work_folder, ".ncbackup-ad-") as folder:
            target = folder / "backup"
            platform.create_private_folder(target)
            argv = samba_backup_argv(self.options, target, login)
            if login is None:
                self._run(argv)
            else:
                with secret_file(login.password + "\n", folder=folder, suffix=".passwd") as password_file:
                    # samba reads PASSWD_FILE's first line as the password (cli_credentials_guess).
                    self._run(argv, env=child_env({"PASSWD_FILE": str(password_file)}))
            backup_file = _one_backup_file(target)
            with open(backup_file, "rb") as reader:
                copy_stream(reader, sink)

    def _write_ifm(self, sink: BinaryIO) -> None:
        with private_folder(self.work_folder, ".ncbackup-ad-ifm-") as folder:
            ifm_folder = folder / "ifm"          # ntdsutil wants a folder that does not exist yet, or is empty
            self._run(ntdsutil_argv(self.options, ifm_folder))
            if not ifm_folder.is_dir():
                raise SourceError(f"ntdsutil reported success but wrote nothing to {ifm_folder}; run it by hand to see why")
            write_folder_as_tar(ifm_folder, sink, arcname="ifm")

    def _write_system_state(self, sink: BinaryIO) -> None:
        folder = wbadmin_folder(str(self.options.wbadmin_target))
        if folder.exists():
            # Never remove a backup ncbackup did not make: the folder must be ours alone.
            raise SourceError(f"{folder} already exists; move it away or choose another WBADMIN_TARGET volume, "
                              "ncbackup streams and then removes the folder wbadmin writes there")
        try:
            self._run(wbadmin_argv(self.options))
            if not folder.is_dir():
                raise SourceError(f"wbadmin reported success but {folder} does not exist; run it by hand to see why")
            write_folder_as_tar(folder, sink, arcname="WindowsImageBackup")
        finally:
            shutil.rmtree(folder, ignore_errors=True)


class AdSource:
    """The AD section as a Source: one stream, ``ad``."""

    def __init__(self, options: AdOptions, *, work_folder: Path, section_name: str = "AD") -> None:
        self.report = StreamReport()          # about the source as a whole (sources/base.Source)
        self.options = options
        self.work_folder = work_folder
        self.section_name = section_name

    @classmethod
    def from_section(cls, section, general) -> AdSource:
        return cls(parse_options(AdOptions, section), work_folder=general.work_folder, section_name=section.name)

    def describe(self) -> str:
        if self.options.windows_method == "ifm":
            return "Active Directory: ntdsutil install-from-media copy (NTDS and SYSVOL)"
        if self.options.windows_method == "systemstate":
            return f"Active Directory: wbadmin system-state backup via {self.options.wbadmin_target}"
        if self.options.mode == "online":
            return f"Active Directory: samba-tool domain backup online of {self.options.server}"
        return f"Active Directory: samba-tool domain backup offline ({self.options.smb_conf or SYSTEM_SMB_CONF})"

    def streams(self) -> Iterator[AdStream]:
        yield AdStream(options=self.options, work_folder=self.work_folder, section_name=self.section_name,
                       suffix=".tar" if self.options.windows_method else ".tar.bz2")

    def check(self) -> list[CheckLine]:
        if self.options.windows_method is not None:
            return self._check_windows()
        lines = [_program_line(self.options.samba_tool, "samba-tool")]
        smb_conf = self.options.smb_conf or SYSTEM_SMB_CONF
        lines.append(_readable_line(smb_conf, "smb.conf"))
        if self.options.mode == "online":
            try:
                login = read_login(self.options, section_name=self.section_name)
                lines.append(CheckLine(True, f"credentials file {self.options.credentials_file}: mode "
                                             f"{platform.mode_text(Path(str(self.options.credentials_file)))}, "
                                             f"user {login.user}"))
            except ConfigError as error:
                lines.append(CheckLine(False, str(error)))
            lines.append(CheckLine(True, f"AD: will run samba-tool domain backup online against {self.options.server} "
                                         "(connection not tested)"))
        else:
            lines.append(CheckLine(True, "AD: will run samba-tool domain backup offline (locks the DC's databases "
                                         "while it copies them)"))
        return lines

    def _check_windows(self) -> list[CheckLine]:
        if self.options.windows_method == "ifm":
            return [_program_line(self.options.ntdsutil, "ntdsutil"),
                    CheckLine(True, "AD: will run ntdsutil \"activate instance ntds\" ifm \"create sysvol full ...\" "
                                    "into a temporary folder in WORK_FOLDER and stream it as a tar")]
        folder = wbadmin_folder(str(self.options.wbadmin_target))
        lines = [_program_line(self.options.wbadmin, "wbadmin")]
        if folder.exists():
            lines.append(CheckLine(False, f"{folder} already exists; move it away or choose another WBADMIN_TARGET"))
        lines.append(CheckLine(True, f"AD: will run wbadmin start systemstatebackup -backupTarget:{self.options.wbadmin_target}, "
                                     f"stream {folder} as a tar, then remove it"))
        return lines


def _program_line(program: str, what: str) -> CheckLine:
    found = which(program)
    if found is None:
        return CheckLine(False, f"{what} ({program}) was not found; install it or give its full path in the section")
    return CheckLine(True, f"{what}: {found}")


def _readable_line(path: Path, what: str) -> CheckLine:
    if not path.is_file():
        return CheckLine(False, f"{what} {path} does not exist; fix SMB_CONF")
    if not os.access(path, os.R_OK):
        return CheckLine(False, f"{what} {path} is not readable; run ncbackup as the user samba runs as (root)")
    return CheckLine(True, f"{what} {path} is readable")


def restore_ad(reader: BinaryIO, request: RestoreRequest) -> list[str]:
    """Rebuild a new Samba DC in request.dc_folder from a Samba backup (``samba-tool domain backup restore``)."""
    dc_folder, new_server_name = request.dc_folder, request.new_server_name
    if dc_folder is None or not new_server_name:
        raise BackupError(f"stream {request.stream_name} is rebuilt as a DC only with --to-dc DIR --new-server-name NAME; "
                          "otherwise restore it with --target DIR as a file")
    method = request.metadata.get("method")
    if method not in SAMBA_METHODS.values():
        raise BackupError(f"stream {request.stream_name} was made by {method!r}, not samba-tool; restore it with --target "
                          "DIR and follow the Windows steps in docs/ad.md")
    if dc_folder.exists() and any(dc_folder.iterdir()):
        raise BackupError(f"{dc_folder} is not empty; choose a new folder for the restored DC")
    options = AdOptions.model_validate(dict(request.options or {}))
    dc_folder.parent.mkdir(parents=True, exist_ok=True)
    with private_folder(dc_folder.parent, ".ncbackup-ad-restore-") as folder:
        backup_file = folder / f"{request.stream_name}.tar.bz2"
        with open(backup_file, "wb") as handle:
            copy_stream(reader, handle)
        argv = [options.samba_tool, "domain", "backup", "restore", f"--backup-file={backup_file}",
                f"--newservername={new_server_name}", f"--targetdir={dc_folder}"]
        try:
            run(argv, timeout_seconds=options.timeout_seconds, stderr_log_level=logging.DEBUG)
        except CommandFailed as error:
            raise BackupError(f"samba-tool domain backup restore into {dc_folder} failed ({failure_reason(error)}); "
                              "it must run as root, and the new server name must be a valid host name") from error
    tls_folder = dc_folder / "private" / "tls"
    if (dc_folder / "private").is_dir() and not tls_folder.exists():
        # The backup leaves out private/tls; samba then fails to start its LDAP server ("Unable to save certificate").
        platform.create_private_folder(tls_folder)
    log.info("restored DC in %s: check %s, stop the old DCs, then start samba -s %s (docs/ad.md)",
             dc_folder, dc_folder / "etc" / "smb.conf", dc_folder / "etc" / "smb.conf")
    return []


DESCRIPTOR = SourceDescriptor(
    key="ad", factory=AdSource, restorers={"ad": restore_ad}, execute_names=("ad_backup",), dump_folder="ad",
    secret_file_keys=("CREDENTIALS_FILE",),
)
