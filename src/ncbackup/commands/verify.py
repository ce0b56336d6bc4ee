"""``ncbackup verify -c conf.json [--set ID | --latest] [--key-file K]``: read a whole set back, write nothing.

Every part is checked for size and SHA-256; with a key that can decrypt (``--key-file``, else the
config's ENCRYPTION KEY_FILE when it holds an identity or passphrase) every stream is also
decrypted and decompressed to its end. Exit 0 when good, 1 with warnings (a stream that failed
during the backup), 2 naming the first bad part.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ncbackup.commands.common import EXIT_OK, EXIT_WARNINGS, add_logging_argument, guarded, setup_console_logging
from ncbackup.commands.setselect import (
    add_config_arguments,
    add_set_arguments,
    choose_set,
    default_key_file,
    open_configured_storage,
)
from ncbackup.engine.result import human_size
from ncbackup.engine.restore import verify_set


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("verify", help="check every part of a set and, given the key, decrypt it to the end",
                                   description=__doc__.split("\n\n")[0])
    add_config_arguments(parser)
    add_set_arguments(parser)
    parser.add_argument("--key-file", type=Path, help="identity or key file (default: the config's ENCRYPTION KEY_FILE)")
    add_logging_argument(parser)
    parser.set_defaults(handler=main)


@guarded
def main(args) -> int:
    setup_console_logging(args.logging_level)
    configured = open_configured_storage(args.config, args.storage)
    chosen = choose_set(configured.storage, args.set_id)
    for note in chosen.notes:
        print(f"note: {note}")
    explicit_key = args.key_file is not None
    key_file = args.key_file if explicit_key else default_key_file(configured.config)
    set_id = chosen.info.set_id
    print(f"verifying set {set_id} on {configured.storage.name}")
    report = verify_set(
        configured.storage, set_id, key_file=key_file, must_decrypt=explicit_key,
        on_stream=lambda name: print(f"  stream {name} ..."),
    )
    for note in report.notes:
        print(f"note: {note}")
    for warning in report.warnings:
        print(f"ncbackup: warning: {warning}", file=sys.stderr)
    decrypted = ", ".join(report.decrypted_streams) or "none"
    print(
        f"set {set_id} is good: {report.streams_checked} stream(s), {report.parts_checked} part(s), "
        f"{human_size(report.bytes_checked)} checked; decrypted and decompressed to the end: {decrypted}"
    )
    return EXIT_WARNINGS if report.warnings else EXIT_OK
