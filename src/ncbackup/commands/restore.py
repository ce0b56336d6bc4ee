"""``ncbackup restore -c conf.json [--set ID | --latest] [--stream NAME ...] [--path GLOB ...] --target DIR``.

Streams come back part by part, each part checked against the manifest, then decrypted,
decompressed and handed to the restorer of their kind: file streams are extracted into --target
(members escaping it are refused), database dumps go to a server with --to-database and are
otherwise written as plain dump files into --target. Only complete sets are restored (an
incomplete set has no manifest to check against: decrypt its parts by hand with
``ncbackup decrypt``). A non-empty --target is refused unless --force.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
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
from ncbackup.config.settings import Config
from ncbackup.engine.restore import RestoreOptions, restore_set
from ncbackup.errors import BackupError
from ncbackup.exitcodes import EXIT_OK, EXIT_WARNINGS
from ncbackup.setformat import open_set


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "restore", help="restore streams of a backup set",
        description="Restore streams of a complete backup set. Every part is checked against the manifest, "
                    "then decrypted and decompressed: file streams are extracted into --target (members escaping "
                    "it are refused); database dumps are loaded into their server with --to-database, otherwise "
                    "written as plain dump files into --target. A non-empty --target is refused unless --force. "
                    "The parts of an incomplete set can be decrypted by hand with 'ncbackup decrypt'.",
    )
    add_config_arguments(parser)
    add_set_arguments(parser)
    add_trust_arguments(parser)
    add_cipher_arguments(parser)
    parser.add_argument("--stream", dest="streams", action="extend", nargs="+", default=[], metavar="NAME",
                        help="restore only these streams (default: all; 'ncbackup list' shows them)")
    parser.add_argument("--path", dest="paths", action="extend", nargs="+", default=[], metavar="GLOB",
                        help="file streams: restore only members matching these globs (e.g. 'etc/nginx/*')")
    parser.add_argument("--target", type=Path, metavar="DIR", help="an empty folder to restore into")
    parser.add_argument("--force", action="store_true", help="restore into a non-empty target, replacing same-named files")
    parser.add_argument("--key-file", type=Path, metavar="FILE",
                        help="identity or key file (default: the config's ENCRYPTION KEY_FILE)")
    parser.add_argument("--to-database", action="store_true", help="load database dumps into their server instead of writing files")
    parser.add_argument("--database", metavar="NAME", help="with --to-database: restore under this database name")
    parser.add_argument("--to-dc", type=Path, metavar="DIR",
                        help="AD streams (Samba): rebuild a new domain controller in DIR with samba-tool domain backup restore")
    parser.add_argument("--new-server-name", metavar="NAME", help="with --to-dc: the new DC's host name")
    add_logging_argument(parser)
    parser.set_defaults(handler=main)


def source_options_by_kind(config: Config, kinds: set[str]) -> dict[str, Mapping[str, Any]]:
    """Each stream kind asked for -> the parameters of the first config section that backs that kind up (credentials,
    binaries); only the sources of those kinds are imported."""
    from ncbackup.sources.kinds import options_for_kinds

    return options_for_kinds(list(config.sections), kinds)


@guarded
def main(args) -> int:
    setup_console_logging(args.logging_level)
    if (args.to_dc is None) != (args.new_server_name is None):
        raise BackupError("--to-dc DIR and --new-server-name NAME go together; give both (docs/ad.md)")
    configured = open_configured_storage(args.config, args.storage)
    trust = trust_for(configured.config, args.trust_signers, allow_unsigned=args.allow_unsigned)
    chosen = choose_set(configured.storage, args.set_id, trust, stream_names=tuple(args.streams))
    for note in chosen.notes:
        print(f"note: {note}")
    set_id = chosen.info.set_id
    manifest = chosen.info.manifest
    if manifest is None:  # choose_set returns complete (authenticated) sets only
        raise BackupError(f"set {set_id} has no readable manifest; pick another set from `ncbackup list`")
    if chosen.info.signer is None and args.allow_unsigned and manifest.format_version < 2:
        print(f"note: set {set_id} is unsigned: restoring it without proof of who wrote its manifest (--allow-unsigned)")
    key_file, cipher = reading_key_file(configured.config, args.key_file)
    options = RestoreOptions(
        target=args.target,
        stream_names=tuple(args.streams),
        paths=tuple(args.paths),
        force=args.force,
        key_file=key_file,
        to_database=args.to_database,
        database=args.database,
        options_by_kind=source_options_by_kind(configured.config, {stream.kind for stream in manifest.streams}),
        expected_cipher=cipher,
        allowed_ciphers=tuple(args.allow_ciphers),
        dc_folder=args.to_dc,
        new_server_name=args.new_server_name,
    )
    print(f"restoring set {set_id} from {configured.storage.name}")
    report = restore_set(configured.storage, manifest, options=options, on_stream=lambda name: print(f"  stream {name} ..."),
                         open_manifest=lambda chain_set_id: open_set(configured.storage, chain_set_id, trust).manifest)
    for line in report.restored:
        print(f"restored {line}")
    for read in report.selective:
        print(f"  {read.stream_name}: read {read.bytes_read} of the set's {read.set_bytes} bytes "
              f"({read.frames_read} of {read.frames_total} frames) for {read.members_selected} member(s)")
    for chain in report.chains:
        print(f"  {chain.stream_name}: " + ", ".join(f"{count} member(s) from set {chain_set}"
                                                  for chain_set, count in chain.members_by_set.items()))
    for warning in report.warnings:
        print(f"ncbackup: warning: {warning}", file=sys.stderr)
    return EXIT_WARNINGS if report.warnings else EXIT_OK
