"""Execute a plan's steps in order and record a StepResult for each.

Failure policy (kept simple on purpose): a failing step fails the run, but the steps after it still
run, as the original ran every section whatever happened before; except that a step is SKIPPED
when it reads a folder that a failed step of this run was supposed to write (it would only work on
missing or half-written data). The disk space guard may stop the run: the remaining steps are then
skipped. Undo hooks (the command runner's UNDO_COMMANDS) and snapshot releases run at the end of the run in
every case, SIGTERM and Ctrl-C included (engine/interrupt.py): a signal fails the running step and skips the rest.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ncbackup import process
from ncbackup.engine.context import RunContext
from ncbackup.engine.diskspace import Level, check_space
from ncbackup.engine.interrupt import Interrupted, shielded
from ncbackup.engine.plan import (
    CommandsStep,
    DataGroup,
    DataStep,
    Plan,
    PluginStep,
    ProgramStep,
    SnapshotStep,
    Step,
    StepKind,
    StorageStep,
)
from ncbackup.engine.result import Status, StepResult
from ncbackup.errors import BackupError
from ncbackup.incremental.run import finish as finish_incremental
from ncbackup.incremental.run import set_chain

if TYPE_CHECKING:
    from ncbackup.config.settings import SectionSettings
    from ncbackup.engine.backupset import PipelineSpec
    from ncbackup.engine.setresult import SetResult
    from ncbackup.engine.tee import NamedStorage
    from ncbackup.hooks.commands import CommandRunner
    from ncbackup.incremental.run import StreamState
    from ncbackup.retention.policy import Policy
    from ncbackup.signing import SecretKey, Trust
    from ncbackup.stages.base import Stage
    from ncbackup.storage.base import Storage

log = logging.getLogger(__name__)

KILL_EVERY_SECONDS = 0.2   # past MAX_RUNTIME, how often programs the run still starts are killed


def _overlaps(a: Path, b: Path) -> bool:
    a, b = Path(a).resolve(), Path(b).resolve()
    return a == b or a in b.parents or b in a.parents


def _stages_for(group: DataGroup, context: RunContext, *, is_set: bool, result: StepResult) -> tuple[Stage, Stage, int | None]:
    """The compression stage, encryption stage and part size of a group (encryption built only now:
    it may create a missing key file, which must never happen at plan or check time)."""
    from ncbackup.stages.registry import compression_for, compression_from_section, encryption_from_section

    general = context.general
    if group.compression is not None or is_set:
        compression = compression_from_section(group.compression, general)
    else:
        compression = compression_for("none")
    choice = encryption_from_section(group.encryption, general)
    if group.encryption is not None or is_set:
        for warning in choice.warnings:
            result.warn(warning)
    return compression, choice.stage, choice.part_size_bytes


def _absorb_set_result(set_result: SetResult, result: StepResult) -> None:
    """Copy a SetResult's per-stream and per-storage outcomes into the step result."""
    result.part_count = sum(len(stream.parts) for stream in set_result.streams)
    for stream in set_result.streams:
        result.bytes_in += stream.bytes_in
        result.bytes_out += stream.bytes_out
        for warning in stream.warnings:
            result.warn(f"{stream.name}: {warning}")
        result.notes.extend(f"{stream.name}: {note}" for note in stream.notes)
        for error in stream.run_errors:  # the stream is good (restorable), but the run must fail
            result.fail(f"{stream.name}: {error}")
        if stream.error is not None:
            result.fail(f"stream {stream.name}: {stream.error}")
    for report in set_result.source_reports:   # about a source as a whole (a MySQL instance), not one stream
        for warning in report.warnings:
            result.warn(warning)
        result.notes.extend(report.notes)
        for error in report.errors:
            result.fail(error)
    for stream in set_result.streams:
        for label in str(stream.metadata.get("snapshot") or "").split():
            if label not in result.snapshots:
                result.snapshots.append(label)
    for repair in set_result.repairs:
        result.warn(repair)  # a part that had to be copied from a sibling storage: the set is whole, but say so
    if set_result.error is not None:
        result.fail(set_result.error)
    for outcome in set_result.storages:
        if outcome.error is not None:
            result.fail(f"storage {outcome.section_name}: {outcome.error}")


def _signer_for(group: DataGroup, context: RunContext, result: StepResult) -> SecretKey:
    """The set's signing key (SIGNING_KEY, default beside KEY_FILE), created with a loud warning on the first run."""
    from ncbackup.signing import load_or_create_signing_key, public_key_path
    from ncbackup.stages.registry import signing_key_path

    path = signing_key_path(group.encryption, context.config.path)
    key, warnings = load_or_create_signing_key(path)
    for warning in warnings:
        log.warning("!!! %s !!!", warning)
        result.warn(warning)
    log.info("signing the set with key %s (public key %s, in %s)", key.public.id_text, key.public.encoded(),
             public_key_path(path))
    result.notes.append(f"signed with key {key.public.id_text}: public key {key.public.encoded()}")
    return key


def run_backup_set(step: DataStep, context: RunContext, *, result: StepResult) -> None:
    from ncbackup.engine.backupset import NamedStorage, PipelineSpec, write_backup_set

    group = step.group
    compression, encryption, part_size_bytes = _stages_for(group, context, is_set=True, result=result)
    storages = [NamedStorage(section.name, storage) for section, storage in group.storages]
    incremental = _prepare_incremental(group, context, storages, result)
    spec = PipelineSpec(
        sources=group.all_sources, compression=compression, encryption=encryption,
        part_size_bytes=part_size_bytes, storages=storages,
        signer=_signer_for(group, context, result), stop=context.stop, snapshots=tuple(context.snapshots),
        chain=set_chain(incremental),
    )
    spec = _with_source_chains(spec, group)
    result.destinations = [_destination_label(section) for section, _storage in group.storages]
    try:
        with context.progress_factory(step.name) as on_progress:
            set_result = write_backup_set(spec, hostname=context.general.hostname, on_progress=on_progress)
    except BaseException:
        for state in incremental:
            state.discard()
        raise
    result.notes.extend(finish_incremental(incremental, set_result))
    result.set_id = set_result.set_id
    _absorb_set_result(set_result, result)
    if not set_result.is_complete and result.error is None:
        result.fail("the backup set is incomplete (no storage received every part)")
    if set_result.is_complete and set_result.set_id is not None:
        _end_chains(group, set_result, result)
    context.last_set_bytes_out = result.bytes_out
    _prune_after_set(group, set_result, context, result)
    _remove_inputs(group, context, result)


def _prepare_incremental(group: DataGroup, context: RunContext, storages: list[NamedStorage],
                         result: StepResult) -> list[StreamState]:
    """Decide each INCREMENTAL files stream of the set (full or incremental, and why full); hand it its tracker's state."""
    from ncbackup import platform
    from ncbackup.incremental.decide import Policy
    from ncbackup.incremental.run import list_storages, prepare_folder, prepare_stream
    from ncbackup.incremental.state import state_path
    from ncbackup.sources.files import FilesSource

    sources = [source for source in group.all_sources if isinstance(source, FilesSource) and source.options.incremental]
    if not sources:
        return []
    folder = context.general.state_folder or platform.default_state_folder()
    try:
        prepare_folder(folder)
    except BackupError as error:
        # Never worse than before INCREMENTAL: the set is full, and the run says why.
        result.warn(f"{error}; the files streams are full sets until then")
        return []
    listings = list_storages(storages)
    now = datetime.now(timezone.utc)
    states: list[StreamState] = []
    for source in sources:
        options = source.options
        state = prepare_stream(
            stream_name=source.stream_name,
            path=state_path(folder, context.config.path, source.section_name, source.stream_name),
            policy=Policy(is_incremental=True, full_every=options.full_every, max_chain=options.max_chain),
            stream_fingerprint=source.fingerprint(), listings=listings, now=now,
        )
        source.incremental = state
        states.append(state)
        decision = state.decision
        if decision.is_incremental:
            line = f"{source.stream_name}: incremental on top of set {decision.chain[-1]}"
        else:
            line = f"{source.stream_name}: full because {decision.reason}"
        log.info("%s", line)
        result.notes.append(line)
    return states


def _prune_after_set(group: DataGroup, set_result: SetResult, context: RunContext, result: StepResult) -> None:
    """With a CLEANUP section: prune each storage that received the whole set; a set that failed never prunes.
    A prune problem is a warning of the step, never a failure of the backup."""
    from ncbackup.retention.policy import cleanup_section, policy_from_config
    from ncbackup.retention.prune import matches_location

    if cleanup_section(context.config) is None:
        return
    if set_result.set_id is None or set_result.error is not None or set_result.failed_streams:
        result.notes.append("no prune: the backup set failed")
        return
    policy = policy_from_config(context.config)
    if policy is None:
        return
    completed = {outcome.section_name for outcome in set_result.storages if outcome.is_ok}
    for section, storage in group.storages:
        if section.name in completed and matches_location(policy, storage):
            _prune_into(storage, policy, context, result)


def _prune_into(storage: Storage, policy: Policy, context: RunContext, result: StepResult) -> None:
    """Prune one storage while this run holds the lock (incomplete sets may go) and record it on the step."""
    from ncbackup.retention.prune import prune_storage

    try:
        outcome = prune_storage(storage, policy, _run_trust(context), hostname=context.general.hostname,
                                now=datetime.now(timezone.utc), dry_run=context.is_dry_run, may_remove_incomplete=True)
    except BackupError as error:
        result.warn(f"prune of {storage.name}: {error}")
        return
    result.pruned.append(outcome.summary_dict())
    for warning in outcome.warnings:
        result.warn(f"prune of {storage.name}: {warning}")
    log.info("%s", outcome.summary_line())
    for decision in outcome.decisions:
        log.debug("%s %s: %s", decision.set_id, "keep" if decision.keep else "remove", "; ".join(decision.reasons))


def _with_source_chains(spec: PipelineSpec, group: DataGroup) -> PipelineSpec:
    """spec, its chain joined by the sets the group's chained sources need (sources/base.ChainedSource: MYSQL INCREMENTAL)."""
    from dataclasses import replace

    from ncbackup.setformat import set_order
    from ncbackup.sources.base import ChainedSource

    storages = {section.name: storage for section, storage in group.storages}
    now = datetime.now(timezone.utc)
    needed = {set_id for source in group.all_sources if isinstance(source, ChainedSource)
              for set_id in source.begin_set(storages, now=now)}
    if not needed:
        return spec
    return replace(spec, chain=tuple(sorted(needed | set(spec.chain), key=set_order)))


def _end_chains(group: DataGroup, set_result: SetResult, result: StepResult) -> None:
    """The set is complete on every storage: chained sources keep where it ended (their state for the next run)."""
    from ncbackup.sources.base import ChainedSource

    storages = [outcome.section_name for outcome in set_result.storages]
    failed = [stream.name for stream in set_result.failed_streams]
    for source in group.all_sources:
        if isinstance(source, ChainedSource) and set_result.set_id is not None:
            for warning in source.end_set(set_result.set_id, storages=storages, failed_streams=failed):
                result.warn(warning)


def _run_trust(context: RunContext) -> Trust:
    """The keys whose sets this run may judge: the same as `ncbackup list -c` (its own signing key, TRUSTED_SIGNERS)."""
    from ncbackup.commands.setselect import trust_for

    return trust_for(context.config, [], allow_unsigned=False)


def run_storage_step(step: StorageStep, context: RunContext, *, result: StepResult) -> None:
    """A legacy STORAGE ACTION: list logs the sets (as `ncbackup list`); remove prunes by CLEANUP."""
    if step.kind == StepKind.LIST:
        from ncbackup.commands.list_sets import render_table
        from ncbackup.setformat import list_sets

        sets = list_sets(step.storage, _run_trust(context))
        for line in render_table(sets, step.storage.name).splitlines():
            log.info("%s", line)
        result.notes.append(f"{len(sets)} set(s) on {step.storage.name}: "
                            + (", ".join(f"{info.set_id} ({info.state})" for info in sets) or "none"))
        return
    if step.policy is None:
        raise AssertionError("a prune step always has its CLEANUP policy (build_plan checks)")
    _prune_into(step.storage, step.policy, context, result)


def _destination_label(section: SectionSettings) -> str:
    return str(section.parameters.get("DESTINATION") or "local")


def run_to_folder(step: DataStep, context: RunContext, *, result: StepResult) -> None:
    from ncbackup.engine.backupset import PipelineSpec, write_to_folder

    group = step.group
    compression, encryption, part_size_bytes = _stages_for(group, context, is_set=False, result=result)
    for section, source in group.sources:
        if getattr(getattr(source, "options", None), "incremental", False) is True:
            result.warn(f"INCREMENTAL of section {section.name} is ignored: its data goes to a folder for the "
                        "sections after it, not into a backup set, so it is written whole")
    for folder, sources in group.output_folders:
        folder = Path(folder)
        existed = folder.exists()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BackupError(f"cannot create the folder {folder} ({error.strerror}); check DESTINATION and permissions") from None
        spec = PipelineSpec(sources=sources, compression=compression, encryption=encryption,
                            part_size_bytes=part_size_bytes, storages=[], stop=context.stop)
        with context.progress_factory(step.name) as on_progress:
            set_result = write_to_folder(spec, folder, on_progress=on_progress)
        # Only what this run made may ever be removed: the folder if it is new, else the files written.
        if not existed:
            context.produced_paths.append(folder)
        context.produced_paths.extend(folder / part.name for stream in set_result.streams for part in stream.parts)
        _absorb_set_result(set_result, result)
    _remove_inputs(group, context, result)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _remove_inputs(group: DataGroup, context: RunContext, result: StepResult) -> None:
    """REMOVE_OBJECTIVES: remove input folders (or the files in them) this run wrote inside WORK_FOLDER; refuse anything else."""
    if not group.remove_inputs or result.status == Status.FAILED:
        return
    work = Path(context.general.work_folder).resolve()
    folders = group.input_folders or (list(group.folder_input.last_folders) if group.folder_input is not None else [])
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            continue
        resolved = folder.resolve()
        if folder.is_symlink() or work not in resolved.parents:
            result.warn(f"REMOVE_OBJECTIVES: refused to remove {folder}: ncbackup only removes what it wrote "
                        f"inside WORK_FOLDER {work}")
            continue
        if context.produced_this_run(resolved):
            _remove(resolved)
            log.info("removed %s (REMOVE_OBJECTIVES)", folder)
            continue
        ours = [entry for entry in resolved.iterdir() if context.produced_this_run(entry)] if resolved.is_dir() else []
        if not ours:
            result.warn(f"REMOVE_OBJECTIVES: refused to remove {folder}: this run did not write it")
            continue
        for entry in ours:
            _remove(entry)
        log.info("removed the %d file(s) this run wrote in %s (REMOVE_OBJECTIVES)", len(ours), folder)
        left = sorted(entry.name for entry in resolved.iterdir())
        if left:
            result.warn(f"REMOVE_OBJECTIVES: left {len(left)} entr{'y' if len(left) == 1 else 'ies'} in {folder} "
                        "that this run did not write")


def run_execute(step: ProgramStep, context: RunContext, *, result: StepResult) -> None:
    from ncbackup.plugins.external import run_program

    for warning in step.program.warnings:
        result.warn(warning)
    run_program(step.program, context.logger)


def run_load(step: PluginStep, context: RunContext, *, result: StepResult) -> None:
    from ncbackup.plugins.legacy import run_plugin

    answers = run_plugin(step.sections[0], step.plugin, logger=context.logger)
    output = answers[-1] if answers else None
    if output not in (None, "", [], {}):
        result.notes.append(f"output: {output}")


def _run_builtin_plugin(plugin_class: type, step: Step, context: RunContext) -> object:
    from ncbackup.plugins.legacy import drive, plugin_parameters

    section = step.sections[0]
    plugin = plugin_class(plugin_parameters(section), context.logger.getChild(section.name), context=context)
    return drive(plugin, where=f"built-in {plugin_class.__name__}")[-1]


def run_size(step: Step, context: RunContext, *, result: StepResult) -> None:
    from ncbackup.plugins.size_calculation import SizeCalculation

    size = str(_run_builtin_plugin(SizeCalculation, step, context))
    if size == "N/A":
        result.warn("nothing to measure: no OBJECTIVES found and no backup set written in this run")
    else:
        context.result.size_human = size
        result.notes.append(f"backup size {size}")


def run_qa(step: Step, context: RunContext, *, result: StepResult) -> None:
    from ncbackup.plugins.qa import QA

    findings = _run_builtin_plugin(QA, step, context)
    for finding in findings if isinstance(findings, list) else []:
        result.warn(str(finding))


def run_commands(step: CommandsStep, context: RunContext, *, result: StepResult) -> None:
    runner = step.runner
    runner.logger = context.logger.getChild(step.name)
    if runner.undo_commands:
        # Registered before enter: a snapshot created by the first command is undone even if the second fails.
        context.undo.callback(_undo, runner, context)
    runner.enter(context)


def _undo(runner: CommandRunner, context: RunContext) -> None:
    try:
        runner.exit(context)
    except BackupError as error:
        context.result.warnings.append(f"{runner.name}: undo at the end of the run failed: {error}")
        context.result.error = context.result.error or f"{runner.name}: undo failed: {error}"


def run_snapshot(step: SnapshotStep, context: RunContext, *, result: StepResult) -> None:
    """Remove what an interrupted run left, take the snapshot; its release is on the run's exit stack before take."""
    snapshot = step.snapshot
    context.undo.callback(_release_snapshot, step, context)
    try:
        for line in snapshot.cleanup_leftovers():
            log.warning("%s: %s", step.name, line)
            result.warn(line)
    except BackupError as error:
        result.warn(f"could not remove the snapshots an interrupted run left: {error}")
    taken = snapshot.take()
    labels = [f"{taken.method}:{snapshot_id}" for snapshot_id in taken.ids]
    step.view.mapping = dict(taken.mapping)
    step.view.label = " ".join(labels)
    result.snapshots.extend(labels)
    context.snapshots.extend(labels)
    result.notes.extend(taken.notes)
    for live, readable in taken.mapping.items():
        result.notes.append(f"took {', '.join(labels)}: FILESET paths under {live} are read from {readable}")
        log.info("%s: took %s; FILESET paths under %s are read from %s", step.name, ", ".join(labels), live, readable)


def _release_snapshot(step: SnapshotStep, context: RunContext) -> None:
    """At the end of the run: a snapshot that cannot be released is a warning (the next run removes it), never a crash."""
    step.view.mapping = {}
    try:
        warnings = step.snapshot.release()
    except Exception as error:
        log.exception("%s: release crashed", step.name)
        warnings = [f"release failed ({type(error).__name__}: {error}); the next run removes the snapshot"]
    for warning in warnings:
        log.warning("%s: %s", step.name, warning)
        context.result.warnings.append(f"{step.name}: {warning}")
    if not warnings:
        log.info("%s: snapshot released", step.name)


def interrupted_text(signal_name: str) -> str:
    return (f"the run was stopped by {signal_name}: the step running then was interrupted (a set it was writing is "
            "not marked complete), the remaining steps were skipped, and the snapshots and undo commands were released")


def run_step(step: Step, context: RunContext, *, result: StepResult) -> None:
    """Run one step by its kind; raises BackupError to fail the step."""
    if isinstance(step, DataStep):
        (run_backup_set if step.kind == StepKind.BACKUP_SET else run_to_folder)(step, context, result=result)
    elif isinstance(step, ProgramStep):
        run_execute(step, context, result=result)
    elif isinstance(step, PluginStep):
        run_load(step, context, result=result)
    elif isinstance(step, CommandsStep):
        run_commands(step, context, result=result)
    elif isinstance(step, StorageStep):
        run_storage_step(step, context, result=result)
    elif isinstance(step, SnapshotStep):
        run_snapshot(step, context, result=result)
    elif step.kind == StepKind.SIZE:
        run_size(step, context, result=result)
    elif step.kind == StepKind.QA:
        run_qa(step, context, result=result)
    else:
        raise AssertionError(f"no runner for step kind {step.kind}")


def max_runtime_text(context: RunContext) -> str:
    """The run's error once MAX_RUNTIME has passed: what happened and what to do."""
    seconds = context.general.max_runtime_seconds
    limit = f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"
    return (f"the run exceeded GENERAL MAX_RUNTIME ({limit}) and was stopped: the step running then was interrupted "
            "(a set it was writing is not marked complete) and the remaining steps were skipped; find what hangs or "
            "is slow in the log, or raise MAX_RUNTIME")


@contextmanager
def runtime_limit(context: RunContext) -> Iterator[None]:
    """While the block runs: once MAX_RUNTIME has passed, set context.stop and keep killing every program the run
    started (a step may start one more before it sees the flag), until the block ends."""
    done = threading.Event()

    def watch() -> None:
        if done.wait(context.general.max_runtime_seconds):
            return
        log.critical("%s", max_runtime_text(context))
        context.stop.set()
        while True:
            process.kill_all_running()
            if done.wait(KILL_EVERY_SECONDS):
                return

    watchdog = threading.Thread(target=watch, name="max-runtime", daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        done.set()
        watchdog.join()


def execute_plan(plan: Plan, context: RunContext) -> None:
    """Run every step in order into context.result; undo hooks and snapshot releases run at the end whatever
    happened (after the MAX_RUNTIME watchdog has stopped, so it never kills them; shielded from stop signals)."""
    try:
        with runtime_limit(context):
            _execute_steps(plan, context)
    finally:
        with shielded():
            context.undo.close()


def _execute_steps(plan: Plan, context: RunContext) -> None:
    run_result = context.result
    failed_writes: list[Path] = []
    stop_reason: str | None = None
    for step in plan.steps:
        result = StepResult(name=step.name, kind=step.kind.value, start=datetime.now(timezone.utc))
        run_result.steps.append(result)
        if stop_reason is None and context.stop.is_set():
            stop_reason = "the run exceeded GENERAL MAX_RUNTIME"
            run_result.error = max_runtime_text(context)
        if stop_reason is not None:
            result.status, result.error = Status.SKIPPED, None
            result.notes.append(f"skipped: {stop_reason}")
            continue
        feeder = next((w for w in failed_writes for r in step.reads if _overlaps(w, r)), None)
        if feeder is not None:
            result.status = Status.SKIPPED
            result.notes.append(f"skipped: it reads {feeder}, which a failed step should have written")
            log.warning("%s: skipped: it reads %s, which a failed step should have written", step.name, feeder)
            continue
        verdict = check_space(context.general)
        if verdict.level == Level.STOP:
            stop_reason = verdict.message
            log.critical("%s", verdict.message)
            run_result.error = verdict.message
            result.status = Status.SKIPPED
            result.notes.append(f"skipped: {verdict.message}")
            continue
        if verdict.level == Level.CRITICAL:
            log.critical("%s", verdict.message)
        elif verdict.level == Level.WARNING:
            log.warning("%s", verdict.message)
        if verdict.level in (Level.CRITICAL, Level.WARNING) and verdict.message not in run_result.warnings:
            run_result.warnings.append(verdict.message)
        log.info("step %s (%s): %s", step.name, step.kind.value, step.description)
        started = time.monotonic()
        try:
            run_step(step, context, result=result)
        except BackupError as error:
            result.fail(str(error))
        except Exception as error:
            log.exception("step %s crashed", step.name)
            result.fail(f"internal error ({type(error).__name__}: {error}); please report this bug")
        except KeyboardInterrupt as interrupt:
            # SIGTERM or Ctrl-C: programs run in their own process groups, so end them here; then unwind.
            process.kill_all_running()
            signal_name = interrupt.signal_name if isinstance(interrupt, Interrupted) else "SIGINT"
            result.fail(f"interrupted by {signal_name}")
            stop_reason = f"the run was stopped by {signal_name}"
            run_result.error = interrupted_text(signal_name)
            log.critical("%s", run_result.error)
        result.duration_seconds = time.monotonic() - started
        if context.stop.is_set():
            if result.error is not None:
                result.error = f"interrupted by MAX_RUNTIME: {result.error}"
            stop_reason = "the run exceeded GENERAL MAX_RUNTIME"
            run_result.error = max_runtime_text(context)
        result.finalize()
        if result.status == Status.FAILED:
            log.error("%s failed: %s", step.name, result.error)
            failed_writes.extend(step.writes)
        else:
            for warning in result.warnings:
                log.warning("%s: %s", step.name, warning)
            log.info("%s: %s", step.name, result.status.value)
