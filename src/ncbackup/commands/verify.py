"""``ncbackup verify -c conf.json [--set ID | --latest] [--key-file K] [--json]``: read a whole set back, write nothing.

Every part is checked for size and SHA-256; with a key that can decrypt (``--key-file``, else the
config's ENCRYPTION KEY_FILE when it holds an identity or passphrase) every stream is also
decrypted and decompressed to its end. An incremental set is checked with every set of its chain
(engine/chainsets.py), the full first. Exit 0 when good, 1 with warnings (a stream that failed
during the backup), 2 naming the first bad part or the set of the chain that is missing.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ncbackup.commands.common import add_logging_argument, guarded, setup_console_logging
from ncbackup.commands.setselect import (
    add_cipher_arguments,
    add_config_arguments,
    add_set_arguments,
    add_trust_arguments,
    choose_set,
    open_configured_storage,
    reading_key_file,
    trust_for,
)
from ncbackup.engine.chainsets import ChainLink, chain_links, first_problem, outside_references
from ncbackup.engine.restore import INDEX_KINDS, VerifyReport, verify_set
from ncbackup.engine.result import human_size
from ncbackup.errors import BackupError, ConfigError, IntegrityError
from ncbackup.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE, EXIT_WARNINGS
from ncbackup.setformat import Manifest


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify", help="check every part of a set and, given the key, decrypt it to the end",
        description="Read a whole backup set back and write nothing. Every part is checked for size and SHA-256; "
                    "with a key that can decrypt (--key-file, else the config's ENCRYPTION KEY_FILE when it holds "
                    "an identity or passphrase) every stream is also decrypted and decompressed to its end. An "
                    "incremental set is checked with every set of its chain, the full first. Exit status 1 means a "
                    "stream had already failed during the backup; 2 names the first bad part, or the set of the "
                    "chain that is missing.",
    )
    add_config_arguments(parser)
    add_set_arguments(parser)
    add_trust_arguments(parser)
    add_cipher_arguments(parser)
    parser.add_argument("--key-file", type=Path, metavar="FILE",
                        help="identity or key file (default: the config's ENCRYPTION KEY_FILE)")
    parser.add_argument("--json", action="store_true",
                        help="print what was checked as JSON: the set and every set of its chain, each with its status")
    add_logging_argument(parser)
    parser.set_defaults(handler=main)


@dataclass
class _Checked:
    """One set of what verify reads (the chosen set, or a set of its chain) and what came of it."""

    set_id: str
    manifest: Manifest | None = None
    signer: str | None = None
    status: str = "not checked"      # good | missing | incomplete | refused | damaged | not checked
    error: str | None = None
    report: VerifyReport | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        report = self.report
        return {
            "set_id": self.set_id,
            "level": self.manifest.level if self.manifest else None,
            "parent": self.manifest.parent if self.manifest else None,
            "signer": self.signer,
            "status": self.status,
            "error": self.error,
            "streams_checked": report.streams_checked if report else 0,
            "parts_checked": report.parts_checked if report else 0,
            "bytes_checked": report.bytes_checked if report else 0,
            "decrypted_streams": list(report.decrypted_streams) if report else [],
            "notes": list(report.notes) if report else [],
            "warnings": list(report.warnings) if report else [],
        }


def _from_link(link: ChainLink) -> _Checked:
    opened = link.opened
    checked = _Checked(link.set_id, manifest=opened.manifest if opened else None, signer=opened.signer if opened else None)
    if link.problem is not None:
        checked.status, checked.error = link.status or "refused", link.problem
    return checked


@guarded
def main(args) -> int:
    setup_console_logging(args.logging_level)
    as_json = args.json
    say = (lambda text: None) if as_json else print
    configured = open_configured_storage(args.config, args.storage)
    trust = trust_for(configured.config, args.trust_signers, allow_unsigned=args.allow_unsigned)
    chosen = choose_set(configured.storage, args.set_id, trust)
    for note in chosen.notes:
        say(f"note: {note}")
    key_file, cipher = reading_key_file(configured.config, args.key_file)
    set_id = chosen.info.set_id
    manifest = chosen.info.manifest
    if manifest is None:  # choose_set returns complete (authenticated) sets only
        raise BackupError(f"set {set_id} has no readable manifest; pick another set from `ncbackup list`")
    storage = configured.storage
    # The chain first (the full, then each incremental), the set asked for last: the order a restore reads them.
    links = chain_links(storage, manifest, trust)
    checked = [*(_from_link(link) for link in links),
               _Checked(set_id, manifest=manifest, signer=chosen.info.signer)]
    error: BackupError | None = None
    problem = first_problem(links)
    if problem is not None:
        error = BackupError(problem)
    else:
        if manifest.chain:
            say(f"set {set_id} is incremental: checking its chain of {len(manifest.chain)} set(s) with it")
        error = _verify_each(storage, checked, args, key_file=key_file, cipher=cipher, needed_by=set_id, say=say)
    if as_json:
        print(json.dumps(_json_report(storage.name, manifest, checked, chosen.notes, error), indent=2))
    if error is not None:
        raise error
    warnings = [warning for item in checked if item.report for warning in item.report.warnings]
    return EXIT_WARNINGS if warnings else EXIT_OK


def _verify_each(storage, checked: list[_Checked], args, *, key_file: Path | None, cipher: str, needed_by: str,
                 say) -> BackupError | None:
    """verify_set on each set in order; the first failure stops it, as an error naming which set of the chain."""
    for item in checked:
        manifest = item.manifest
        if manifest is None:   # chain_links opened every set before this runs
            return BackupError(f"set {item.set_id} has no readable manifest; pick another set from `ncbackup list`")
        signed = f"signed by key {item.signer}" if item.signer else "UNSIGNED (--allow-unsigned)"
        level = f" ({manifest.level})" if len(checked) > 1 else ""
        say(f"verifying set {item.set_id}{level} on {storage.name} ({signed})")
        try:
            report = verify_set(
                storage, manifest, key_file=key_file, must_decrypt=args.key_file is not None,
                on_stream=lambda name: say(f"  stream {name} ..."),
                expected_cipher=cipher, allowed_ciphers=tuple(args.allow_ciphers),
            )
            decrypted_indexes = any(stream.kind in INDEX_KINDS and stream.name in report.decrypted_streams
                                    for stream in manifest.streams)
            # Every member its file list carries must come from a set of its chain, or no restore can find it.
            problem = outside_references(storage, manifest, key_file=key_file) if decrypted_indexes else None
            if problem is not None:
                raise IntegrityError(problem)
        except BackupError as error:
            item.status, item.error = "damaged", str(error)
            if item.set_id == needed_by or isinstance(error, ConfigError):
                return error
            return BackupError(f"set {needed_by} needs set {item.set_id}, which failed its check: {error}")
        item.status, item.report = "good", report
        for note in report.notes:
            say(f"note: {note}")
        for warning in report.warnings:
            print(f"ncbackup: warning: {warning}", file=sys.stderr)
        decrypted = ", ".join(report.decrypted_streams) or "none"
        say(
            f"set {item.set_id} is good: {report.streams_checked} stream(s), {report.parts_checked} part(s), "
            f"{human_size(report.bytes_checked)} checked; decrypted and decompressed to the end: {decrypted}"
        )
    if len(checked) > 1:
        say(f"chain of set {needed_by} is good: {', '.join(item.set_id for item in checked)}")
    return None


def _json_report(storage_name: str, manifest: Manifest, checked: list[_Checked], notes: tuple[str, ...],
                 error: BackupError | None) -> dict[str, Any]:
    warned = any(item.report and item.report.warnings for item in checked)
    status = (EXIT_UNUSABLE if isinstance(error, ConfigError) else EXIT_FAILED) if error is not None else (
        EXIT_WARNINGS if warned else EXIT_OK)
    return {
        "storage": storage_name,
        "set_id": manifest.set_id,
        "level": manifest.level,
        "chain": list(manifest.chain),
        "good": error is None,
        "error": str(error) if error is not None else None,
        "exit_status": status,
        "notes": list(notes),
        "sets": [item.to_dict() for item in checked],
    }
