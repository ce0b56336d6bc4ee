"""Turn a config's sections into the ordered steps of a run.

Rules (ARCHITECTURE.md section 1, step 3):

- Consecutive built-in data sections (sources, COMPRESSION, ENCRYPTION, STORAGE) are FUSED into one
  streaming step. A group holding a STORAGE section writes a backup set; a group without one writes
  its streams as plain files into a folder (``to-folder``).
- A group continues while roles keep their order (sources, then compression, then encryption, then
  storages; several sources and several storages are fine). A source after a stage or a storage, or
  a second COMPRESSION/ENCRYPTION, starts a new group.
- A section ncbackup does not own (an external ``execute`` program, a user's ``load`` plugin) and the
  command runner are BARRIERS: the group before one is closed. If that group has no storage, its
  streams land in the folder its last section names (DESTINATION; FILESET default WORK_FOLDER/files,
  COMPRESSION WORK_FOLDER/compressed, ENCRYPTION WORK_FOLDER/encrypted, databases
  WORK_FOLDER/<PREFIX_FOLDER>) so that the program finds files there.
- A group that starts with a stage or storage section reads the files found in that section's
  OBJECTIVES folder(s) (default: COMPRESSION every subfolder of WORK_FOLDER, ENCRYPTION
  WORK_FOLDER/compressed, STORAGE WORK_FOLDER/encrypted); COMPRESSION packs each folder as a tar.
- SIZE and QA are built in and need no barrier: inside a data group they run right after it.
- Sections without ACTION are configuration read by other commands (CLEANUP): not steps.
- NOTIFY sections (``"NAME": "notify"``) are validated here but are not steps: they deliver at the end.
- A SNAPSHOT section (``"NAME": "snapshot"``) is a step of its own and no barrier: it closes a data group that
  already has its storage, else it runs before the open group; the FILESET sections after it (only those) read
  the paths under its live mount point from the snapshot. It is released at the end of the run.
- A STORAGE section with the original's PARAMETERS ACTION ``list`` or ``remove`` is not a storage of a
  data group: it is a step of its own (logs the sets; prunes by CLEANUP), run right after the group
  it follows, like SIZE and QA.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from ncbackup.config.settings import Config, GeneralSettings, SectionSettings
from ncbackup.config.types import LegacyBool, PathList, parse_options
from ncbackup.engine.builtins import DATA_ROLES, Role, builtin_key, role_of
from ncbackup.errors import ConfigError
from ncbackup.sources.files import FilesSource, SnapshotView

if TYPE_CHECKING:
    from ncbackup.hooks.commands import CommandRunner
    from ncbackup.plugins.external import ExternalProgram
    from ncbackup.plugins.legacy import PluginRef
    from ncbackup.retention.policy import Policy
    from ncbackup.snapshots.base import Snapshot
    from ncbackup.sources.base import Source
    from ncbackup.sources.folder import FolderSource
    from ncbackup.storage.base import Storage

ROLE_ORDER = {Role.SOURCE: 0, Role.COMPRESSION: 1, Role.ENCRYPTION: 2, Role.STORAGE: 3}


DEFAULT_STAGE_FOLDERS = {Role.COMPRESSION: "compressed", Role.ENCRYPTION: "encrypted"}
# A group starting with this role reads these WORK_FOLDER subfolders when OBJECTIVES is not given.
DEFAULT_INPUT_FOLDERS = {Role.ENCRYPTION: "compressed", Role.STORAGE: "encrypted"}


def _dump_folders_text() -> str:
    """The database sources' default dump folders, from their descriptors, for the generated reference."""
    from ncbackup.sources.registry import DESCRIPTORS

    return ", ".join(f"`{d.dump_folder}` ({d.key})" for d in DESCRIPTORS if d.dump_folder)


class FolderOptions(BaseModel):
    """The keys the planner itself reads from data sections (each plugin reads the rest)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    objectives: PathList = Field(
        default_factory=list, alias="OBJECTIVES",
        json_schema_extra={"shown_default": "COMPRESSION: every subfolder of WORK_FOLDER; ENCRYPTION: "
                                            "`WORK_FOLDER/compressed`; STORAGE: `WORK_FOLDER/encrypted`"},
        description="COMPRESSION, ENCRYPTION, STORAGE: the folders to read when the input is on disk",
    )
    destination: str | None = Field(
        None, alias="DESTINATION",
        json_schema_extra={"shown_default": "FILESET `WORK_FOLDER/files`, COMPRESSION `WORK_FOLDER/compressed`, "
                                            "ENCRYPTION `WORK_FOLDER/encrypted`, databases `WORK_FOLDER/PREFIX_FOLDER`"},
        description="sources, COMPRESSION, ENCRYPTION: the output folder when the output goes to disk (in a STORAGE "
                    "section DESTINATION names the backend instead)",
    )
    remove_objectives: LegacyBool | None = Field(
        None, alias="REMOVE_OBJECTIVES", json_schema_extra={"shown_default": "yes for COMPRESSION, no for the others"},
        description="remove the input folders once read. Only folders ncbackup itself produced inside WORK_FOLDER "
                    "are ever removed",
    )
    prefix_folder: str | None = Field(
        None, alias="PREFIX_FOLDER",
        json_schema_extra={"shown_default": _dump_folders_text()},
        description="database sources: the output folder's name inside WORK_FOLDER when the dump goes to disk",
    )
    action: str | None = Field(
        None, alias="ACTION", json_schema_extra={"shown_default": "`upload`", "allowed": "`upload`, `list`, `remove`"},
        description="STORAGE only, inside PARAMETERS (not the section's ACTION): `upload` writes the backup set; "
                    "the original's `list` logs the sets on the storage (as `ncbackup list`) and `remove` prunes it "
                    "with the CLEANUP rules (as `ncbackup prune`), each as a step of its own",
    )


@dataclass
class DataGroup:
    """Fused data sections: what a backup-set or to-folder step streams."""

    sections: list[SectionSettings]
    sources: list[tuple[SectionSettings, Source]] = field(default_factory=list)
    compression: SectionSettings | None = None
    encryption: SectionSettings | None = None
    storages: list[tuple[SectionSettings, Storage]] = field(default_factory=list)
    folder_input: FolderSource | None = None    # when the group starts after a barrier
    input_section: SectionSettings | None = None
    input_folders: list[Path] = field(default_factory=list)  # explicit folders read ([] = computed at run time)
    remove_inputs: bool = False
    output_folders: list[tuple[Path, list[Source]]] = field(default_factory=list)  # to-folder: (folder, sources)

    @property
    def all_sources(self) -> list[Source]:
        """The sections' sources, then the folder input (a group after a barrier reads its folders)."""
        sources = [source for _section, source in self.sources]
        if self.folder_input is not None:
            sources.append(self.folder_input)
        return sources

    @property
    def has_storage(self) -> bool:
        return bool(self.storages)


class StepKind(str, Enum):
    BACKUP_SET = "backup-set"   # DataStep with a storage
    TO_FOLDER = "to-folder"     # DataStep without one (barrier case)
    EXECUTE = "execute"         # ProgramStep
    LOAD = "load"               # PluginStep
    SIZE = "size"               # Step
    QA = "qa"                   # Step
    COMMANDS = "commands"       # CommandsStep
    LIST = "list"               # StorageStep: a STORAGE section with ACTION list
    PRUNE = "prune"             # StorageStep: a STORAGE section with ACTION remove
    SNAPSHOT = "snapshot"       # SnapshotStep


@dataclass
class Step:
    """One unit of the run, with a one-line description for ``check``. SIZE and QA steps need nothing more;
    the other kinds are the subclasses below, each with its own typed payload."""

    kind: StepKind
    name: str                 # section name(s)
    sections: list[SectionSettings]
    description: str = ""
    reads: list[Path] = field(default_factory=list)    # folders it reads (for "a failed step feeds it")
    writes: list[Path] = field(default_factory=list)   # folders it writes


@dataclass(kw_only=True)
class DataStep(Step):
    group: DataGroup


@dataclass(kw_only=True)
class ProgramStep(Step):
    program: ExternalProgram


@dataclass(kw_only=True)
class PluginStep(Step):
    plugin: PluginRef


@dataclass(kw_only=True)
class CommandsStep(Step):
    runner: CommandRunner


@dataclass(kw_only=True)
class StorageStep(Step):
    storage: Storage
    policy: Policy | None = None    # PRUNE: the CLEANUP rules


@dataclass(kw_only=True)
class SnapshotStep(Step):
    snapshot: Snapshot
    view: SnapshotView      # filled when taken; the FILESET sections after it read through it


@dataclass
class Plan:
    config: Config
    steps: list[Step]
    notes: list[str] = field(default_factory=list)    # e.g. OBJECTIVES ignored because the group is fused


def _line(section: SectionSettings) -> int | None:
    return section.position.line if section.position else None


def data_role(section: SectionSettings) -> Role:
    """The role of a section known to be a data section (source, stage, storage)."""
    role = role_of(section)
    if role not in DATA_ROLES:
        raise AssertionError(f"section {section.name} is not a data section")
    return role


def folder_options(section: SectionSettings) -> FolderOptions:
    return parse_options(FolderOptions, section)


def _section_folder(section: SectionSettings, role: Role, general: GeneralSettings) -> Path:
    """The folder a data section names for its output (DESTINATION or its default under WORK_FOLDER)."""
    options = folder_options(section)
    work = Path(general.work_folder)
    if role == Role.SOURCE:
        key = builtin_key(section)
        if key == "filesbackup":
            return Path(options.destination) if options.destination else work / "files"
        from ncbackup.sources.registry import SOURCES

        descriptor = SOURCES.get(key or "")
        # Where a source's plain dump lands in the barrier case, under WORK_FOLDER (or its DESTINATION).
        prefix = options.prefix_folder or (descriptor.dump_folder if descriptor else None) or key or "dump"
        return (Path(options.destination) if options.destination else work) / prefix
    if options.destination and options.destination.strip():
        return Path(options.destination.strip())
    return work / DEFAULT_STAGE_FOLDERS[role]


def _build_source(section: SectionSettings, general: GeneralSettings, config: Config) -> Source:
    from ncbackup.sources.registry import SOURCES

    key = builtin_key(section)
    descriptor = SOURCES.get(key or "")
    if descriptor is None:
        raise ConfigError(
            f"section {section.name}: the built-in source {key!r} is not available in this ncbackup version; "
            "remove the section or upgrade", file=config.path, line=_line(section), key="NAME",
        )
    return descriptor.factory.from_section(section, general)


STORAGE_ACTIONS = ("upload", "list", "remove")


def storage_action(section: SectionSettings, config: Config) -> str:
    """A STORAGE section's PARAMETERS ACTION: upload (the default), list or remove; ConfigError for anything else."""
    action = (folder_options(section).action or "upload").strip().lower()
    if action not in STORAGE_ACTIONS:
        raise ConfigError(
            f"section {section.name}: storage ACTION {action!r} is unknown; use upload, list or remove",
            file=config.path, line=_line(section), key="ACTION",
        )
    return action


def _build_storage(section: SectionSettings, general: GeneralSettings, config: Config) -> Storage:
    from ncbackup.storage.registry import build_storage

    return build_storage(section, general)


def _storage_step(section: SectionSettings, action: str, config: Config, policy: Policy | None) -> StorageStep:
    """The step of a legacy ACTION list/remove STORAGE section; remove without CLEANUP is a ConfigError."""
    if action == "remove" and policy is None:
        raise ConfigError(
            f"section {section.name}: storage ACTION 'remove' prunes by the CLEANUP rules, but the config has no "
            "CLEANUP section; add one (see docs/retention.md) or remove the section",
            file=config.path, line=_line(section), key="ACTION",
        )
    kind = StepKind.LIST if action == "list" else StepKind.PRUNE
    return StorageStep(kind, section.name, [section], storage=_build_storage(section, config.general, config),
                       policy=policy if kind == StepKind.PRUNE else None)


def _default_compression_inputs(general: GeneralSettings, exclude: list[Path]) -> list[Path]:
    """Every subfolder of WORK_FOLDER except ncbackup's own output folders (the original's default)."""
    work = Path(general.work_folder)
    if not work.is_dir():
        return []
    excluded = {p.resolve() for p in exclude}
    return sorted(p for p in work.iterdir() if p.is_dir() and not p.is_symlink() and p.resolve() not in excluded)


def _close_group(group: DataGroup, *, config: Config, steps: list[Step], notes: list[str]) -> None:
    general = config.general
    first_role = role_of(group.sections[0])
    if first_role != Role.SOURCE:
        from ncbackup.sources.folder import FolderSource

        section = group.sections[0]
        options = folder_options(section)
        group.input_section = section
        is_compression = first_role == Role.COMPRESSION
        default_remove = is_compression  # COMPAT.md: COMPRESSION removes its OBJECTIVES by default
        group.remove_inputs = default_remove if options.remove_objectives is None else bool(options.remove_objectives)
        folders_of: Callable[[], list[Path]]
        if options.objectives:
            group.input_folders = list(options.objectives)
            folders_of = partial(list, tuple(options.objectives))
            reads = list(options.objectives)
        elif is_compression:
            own_outputs = [_section_folder(s, data_role(s), general) for s in group.sections[1:]
                           if role_of(s) in DEFAULT_STAGE_FOLDERS] + [Path(general.work_folder) / "compressed"]
            folders_of = partial(_default_compression_inputs, general, own_outputs)
            reads = [Path(general.work_folder)]
        else:
            default = Path(general.work_folder) / DEFAULT_INPUT_FOLDERS[data_role(section)]
            group.input_folders = [default]
            folders_of = partial(list, (default,))
            reads = [default]
        group.folder_input = FolderSource(section.name, folders_of, pack=is_compression,
                                          description=f"the files in {', '.join(str(p) for p in reads)}"
                                          + (" (each folder packed as a tar)" if is_compression else ""))
    else:
        reads = []
        # In a fused group the stages' OBJECTIVES name the folders the original copied through: unused.
        for section in group.sections:
            if role_of(section) in (Role.COMPRESSION, Role.ENCRYPTION, Role.STORAGE):
                options = folder_options(section)
                if options.objectives:
                    notes.append(f"{section.name}: OBJECTIVES is not used: the data streams straight from "
                                 f"{group.sections[0].name} without intermediate folders")
    name = "+".join(s.name for s in group.sections)
    if group.has_storage:
        steps.append(DataStep(StepKind.BACKUP_SET, name, list(group.sections), reads=reads, group=group))
        return
    last = group.sections[-1]
    last_role = role_of(last)
    if last_role == Role.SOURCE:
        group.output_folders = [(_section_folder(section, Role.SOURCE, general), [source])
                                for section, source in group.sources]
    else:
        group.output_folders = [(_section_folder(last, data_role(last), general), group.all_sources)]
    writes = [folder for folder, _sources in group.output_folders]
    steps.append(DataStep(StepKind.TO_FOLDER, name, list(group.sections), reads=reads, writes=writes, group=group))


def _objective_folders(section: SectionSettings) -> list[Path]:
    try:
        return list(folder_options(section).objectives)
    except ConfigError:
        return []


def build_plan(config: Config) -> Plan:
    """Turn the config's sections into ordered steps; ConfigError (file, line, key) when a section is unusable."""
    from ncbackup.hooks.commands import CommandRunner
    from ncbackup.plugins import external, legacy
    from ncbackup.retention.policy import cleanup_section, policy_from_config

    general = config.general
    # An invalid CLEANUP stops the config before anything runs (a run prunes with it after each set).
    policy = policy_from_config(config) if cleanup_section(config) is not None else None
    steps: list[Step] = []
    notes: list[str] = []
    group: DataGroup | None = None
    deferred: list[Step] = []   # SIZE/QA met inside a data group: they run right after it
    snapshot_views: list[SnapshotView] = []   # the SNAPSHOT sections so far: the FILESET sections after them read through them

    def flush() -> None:
        nonlocal group
        if group is not None:
            _close_group(group, config=config, steps=steps, notes=notes)
            group = None
        steps.extend(deferred)
        deferred.clear()

    for section in config.sections:
        if section.action is None:
            continue  # configuration for other commands (CLEANUP)
        role = role_of(section)
        if role == Role.STORAGE and storage_action(section, config) != "upload":
            storage_step = _storage_step(section, storage_action(section, config), config, policy)
            (deferred if group is not None else steps).append(storage_step)
            continue
        if role is not None and role in DATA_ROLES:
            if group is not None:
                previous = data_role(group.sections[-1])
                continues = ROLE_ORDER[role] > ROLE_ORDER[previous] or (
                    role == previous and role in (Role.SOURCE, Role.STORAGE))
                if not continues:
                    flush()
            if group is None:
                group = DataGroup(sections=[])
            group.sections.append(section)
            if role == Role.SOURCE:
                source = _build_source(section, general, config)
                if isinstance(source, FilesSource):
                    source.snapshots.extend(snapshot_views)
                group.sources.append((section, source))
            elif role == Role.COMPRESSION:
                group.compression = section
            elif role == Role.ENCRYPTION:
                group.encryption = section
            else:
                group.storages.append((section, _build_storage(section, general, config)))
            continue
        if role == Role.NOTIFY:
            from ncbackup.notify.registry import NOTIFIERS
            from ncbackup.notify.sections import read_notify_section

            # Not a step: checked here so that `check` refuses it, delivered at the end of the run.
            read_notify_section(section, methods=list(NOTIFIERS), config_file=config.path)
            continue
        if role == Role.SNAPSHOT:
            from ncbackup.snapshots.registry import build_snapshot

            if group is not None and group.has_storage:
                flush()   # that group is complete: take the snapshot after it, not before
            view = SnapshotView(section.name)
            snapshot_views.append(view)
            # Not flushed otherwise: a group still open runs after the snapshot (its later FILESET sections read it).
            steps.append(SnapshotStep(StepKind.SNAPSHOT, section.name, [section], view=view,
                                      snapshot=build_snapshot(section, general, config_path=config.path)))
            continue
        if role in (Role.SIZE, Role.QA):
            step = Step(StepKind(role.value), section.name, [section], reads=_objective_folders(section))
            (deferred if group is not None else steps).append(step)
            continue
        # Everything else is a barrier.
        flush()
        if role == Role.COMMANDS:
            runner = CommandRunner.from_section(section, config_file=config.path)
            steps.append(CommandsStep(StepKind.COMMANDS, section.name, [section], runner=runner))
        elif section.action == "execute":
            program = external.resolve(section, general, config_file=config.path)
            steps.append(ProgramStep(StepKind.EXECUTE, section.name, [section], reads=_objective_folders(section), program=program))
        elif section.action == "load":
            ref = legacy.resolve(section, general, config_file=config.path)
            steps.append(PluginStep(StepKind.LOAD, section.name, [section], reads=_objective_folders(section), plugin=ref))
        else:
            raise ConfigError(f"section {section.name}: unknown ACTION {section.action!r}; use execute or load",
                              file=config.path, line=_line(section), key="ACTION")
    flush()
    for step in steps:
        step.description = describe_step(step, general)
    return Plan(config=config, steps=steps, notes=notes)


def _safe_describe(component: Source) -> str:
    try:
        return component.describe()
    except Exception as error:  # noqa: BLE001 - a description must never break the plan
        return f"(cannot describe: {error})"


def describe_step(step: Step, general: GeneralSettings) -> str:
    """One line: what the step reads, what it writes, where."""
    if isinstance(step, DataStep):
        group = step.group
        is_set = step.kind == StepKind.BACKUP_SET
        reads = [f"{section.name}: {_safe_describe(source)}" for section, source in group.sources]
        if group.folder_input is not None and group.input_section is not None:
            reads.append(f"{group.input_section.name}: {_safe_describe(group.folder_input)}")
        codec = "compressed (" + (_compression_text(group.compression) if group.compression else
                                  ("zstd level 3" if is_set else "none")) + ")"
        cipher = _encryption_text(group.encryption, is_set=is_set)
        if is_set:
            where = ", ".join(storage.name for _section, storage in group.storages)
            writes = f"writes a backup set under {general.hostname}/ to {where}"
        else:
            writes = "writes plain files into " + ", ".join(str(folder) for folder, _ in group.output_folders)
        removal = ""
        if group.remove_inputs and group.input_folders:
            removal = "; then removes its input folders if this run wrote them"
        return f"reads {'; '.join(reads)}; {codec}, {cipher}; {writes}{removal}"
    if isinstance(step, ProgramStep):
        return step.program.describe()
    if isinstance(step, PluginStep):
        return step.plugin.describe()
    if isinstance(step, CommandsStep):
        return step.runner.describe()
    if isinstance(step, SnapshotStep):
        method = str(step.sections[0].parameters.get("METHOD") or "").lower()
        source = step.sections[0].parameters.get("SOURCE") or ""
        return (f"takes a {method} snapshot of {source} (removing the ones an interrupted run left); the FILESET "
                "sections after it read from it; released at the end of the run")
    if step.kind == StepKind.SIZE:
        return "reports the backup size (OBJECTIVES if this run wrote them, else the last backup set of this run)"
    if isinstance(step, StorageStep):
        if step.kind == StepKind.LIST:
            return f"lists the backup sets under {general.hostname}/ on {step.storage.name}"
        return f"removes the sets under {general.hostname}/ on {step.storage.name} that no CLEANUP rule keeps"
    if step.kind == StepKind.QA:
        return "checks the running user and the permissions of config, key, credential and log files (warns only)"
    return step.kind.value


def _compression_text(section: SectionSettings) -> str:
    algorithm = str(section.parameters.get("ALGORITHM") or "zstd").lower()
    level = section.parameters.get("LEVEL")
    return f"{algorithm}{f' level {level}' if level not in (None, '') else ''}"


def _encryption_text(section: SectionSettings | None, *, is_set: bool) -> str:
    if section is None:
        return "not encrypted"
    key_file = section.parameters.get("KEY_FILE") or "/etc/nc-backup-py/key_file"
    size = section.parameters.get("FILE_SIZE")
    return f"encrypted with KEY_FILE {key_file}" + (f", parts of {size} MB" if size not in (None, "") else "")
