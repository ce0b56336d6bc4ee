"""``ncbackup prune -c conf.json [--storage SECTION] [--dry-run] [--json]``: apply the CLEANUP rules to each storage."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ncbackup.commands.common import add_logging_argument, guarded, one_line, say_error, setup_console_logging
from ncbackup.commands.setselect import add_trust_arguments, storage_sections, trust_for
from ncbackup.config import load_config
from ncbackup.config.settings import Config, SectionSettings
from ncbackup.engine.lock import AlreadyRunning, lock_file_path, single_instance
from ncbackup.engine.result import human_size
from ncbackup.errors import BackupError, ConfigError
from ncbackup.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_WARNINGS
from ncbackup.retention.policy import Policy, policy_from_config
from ncbackup.retention.prune import PruneOutcome, matches_location, prune_storage
from ncbackup.signing import Trust
from ncbackup.storage.base import Storage


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "prune", help="remove old backup sets by the config's CLEANUP rules",
        description="Apply the config's CLEANUP rules to every STORAGE section (or the one named): print every set "
                    "with its decision and why, then remove the sets no rule keeps (docs/retention.md).")
    parser.add_argument("-c", "--config", required=True, type=Path, help="the JSON config file")
    parser.add_argument("--storage", metavar="SECTION", help="prune only this STORAGE section (default: every one)")
    parser.add_argument("--dry-run", action="store_true", help="print the decisions, remove nothing")
    parser.add_argument("--json", action="store_true", help="print the decisions and what was removed as JSON")
    add_trust_arguments(parser)
    add_logging_argument(parser)
    parser.set_defaults(handler=main)


def selected_storages(config: Config, policy: Policy, section_name: str | None) -> list[tuple[SectionSettings, Storage]]:
    """The STORAGE sections prune applies to, built: the named one, or every one whose location CLEANUP selects."""
    from ncbackup.storage.registry import build_storage

    sections = storage_sections(config)
    if not sections:
        raise ConfigError("the config has no STORAGE section; add one, or pass -c with the config that made the backups",
                          file=config.path)
    if section_name is not None:
        names = ", ".join(s.name for s in sections)
        sections = [s for s in sections if s.name == section_name]
        if not sections:
            raise ConfigError(f"there is no STORAGE section named {section_name!r}; use one of: {names}", file=config.path)
    chosen: list[tuple[SectionSettings, Storage]] = []
    seen: set[str] = set()
    for section in sections:
        storage = build_storage(section, config.general)
        # A legacy ACTION list/remove section names the same location as the upload section: prune it once.
        if storage.name in seen or not matches_location(policy, storage):
            continue
        seen.add(storage.name)
        chosen.append((section, storage))
    if not chosen:
        raise ConfigError(
            f"no STORAGE section{' ' + repr(section_name) if section_name else ''} writes to CLEANUP's BUCKET "
            f"{policy.bucket!r} and PREFIX {policy.prefix!r}; fix BUCKET/PREFIX in CLEANUP or remove them to prune "
            "every storage", file=config.path)
    return chosen


def render_outcome(outcome: PruneOutcome, section_name: str) -> str:
    """Per storage: the time zone, every set with its decision and reasons, unknown objects, what was removed."""
    lines = [f"{outcome.storage} (section {section_name}), days counted in {outcome.time_zone}:"]
    if not outcome.may_remove_incomplete:
        lines.append("  a run holds the lock: incomplete sets are kept")
    if not outcome.decisions:
        lines.append("  no backup sets")
    for decision in outcome.decisions:
        size = human_size(decision.candidate.size_bytes) if decision.candidate else "-"
        verdict = "keep" if decision.keep else ("would remove" if outcome.is_dry_run else "remove")
        lines.append(f"  {decision.set_id:<20} {verdict:<12} {size:>10}  {'; '.join(decision.reasons)}")
    lines.extend(f"  unknown object, left alone: {one_line(key)}" for key in outcome.unknown_keys)
    lines.extend(f"  warning: {one_line(text)}" for text in outcome.warnings)
    if outcome.is_dry_run:
        going = [d for d in outcome.decisions if not d.keep]
        going_bytes = sum(d.candidate.size_bytes for d in going if d.candidate)
        lines.append(f"  dry run: would remove {len(going)} set{'s' * (len(going) != 1)}, "
                     f"would free {human_size(going_bytes)}; nothing was removed")
    else:
        count = len(outcome.removed)
        lines.append(f"  removed {count} set{'s' * (count != 1)}, freed {human_size(outcome.freed_bytes)}")
    return "\n".join(lines)


def _prune_all(config: Config, policy: Policy, storages: list[tuple[SectionSettings, Storage]], trust: Trust, args,
               *, may_remove_incomplete: bool) -> int:
    now = datetime.now(timezone.utc)
    reports: list[dict[str, Any]] = []
    status = EXIT_OK
    for section, storage in storages:
        try:
            outcome = prune_storage(storage, policy, trust, hostname=config.general.hostname, now=now,
                                    dry_run=args.dry_run, may_remove_incomplete=may_remove_incomplete)
        except BackupError as error:
            status = EXIT_FAILED
            if args.json:
                reports.append({"section": section.name, "storage": storage.name, "error": str(error)})
            else:
                say_error(f"{storage.name} (section {section.name}): {error}")
            continue
        if outcome.warnings and status == EXIT_OK:
            status = EXIT_WARNINGS
        if args.json:
            reports.append({"section": section.name, **outcome.to_dict(), "error": None})
        else:
            print(render_outcome(outcome, section.name))
    if args.json:
        print(json.dumps({"config": str(config.path), "hostname": config.general.hostname, "dry_run": args.dry_run,
                          "lock_held": not may_remove_incomplete, "exit_status": status, "storages": reports},
                         indent=2))
    return status


@guarded
def main(args) -> int:
    from ncbackup.commands.run import prepare_work_folder

    setup_console_logging(args.logging_level)
    config = load_config(args.config)
    policy = policy_from_config(config)
    if policy is None:
        raise ConfigError("the config has no CLEANUP section, so prune has no rules; add one "
                          "(e.g. \"CLEANUP\": {\"KEEP\": {\"DAILY\": {\"NUMBER\": \"7\"}}}, see docs/retention.md)",
                          file=config.path)
    storages = selected_storages(config, policy, args.storage)
    trust = trust_for(config, args.trust_signers, allow_unsigned=args.allow_unsigned)
    prepare_work_folder(config)
    try:
        # Held for the whole prune, so no run starts meanwhile and writes a set we would call incomplete.
        with single_instance(lock_file_path(config.general.work_folder), config=config.path):
            return _prune_all(config, policy, storages, trust, args, may_remove_incomplete=True)
    except AlreadyRunning as held:
        if not args.json:
            print(f"a run holds the lock {held.lock_path} ({held.holder.describe()}): complete sets are pruned, "
                  "incomplete ones are kept (that run may be writing one)")
        return _prune_all(config, policy, storages, trust, args, may_remove_incomplete=False)
