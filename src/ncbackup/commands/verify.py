"""``ncbackup verify -c conf.json [--set ID | --latest] [--key-file K]``: read a whole set back, write nothing.

Every part is checked for size and SHA-256; with a key that can decrypt (``--key-file``, else the
config's ENCRYPTION KEY_FILE when it holds an identity or passphrase) every stream is also
decrypted and decompressed to its end. Exit 0 when good, 1 with warnings (a stream that failed
during the backup), 2 naming the first bad part.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
from ncbackup.engine.restore import verify_set
from ncbackup.engine.result import human_size
from ncbackup.errors import BackupError
from ncbackup.exitcodes import EXIT_OK, EXIT_WARNINGS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify", help="check every part of a set and, given the key, decrypt it to the end",
        description="Read a whole backup set back and write nothing. Every part is checked for size and SHA-256; "
                    "with a key that can decrypt (--key-file, else the config's ENCRYPTION KEY_FILE when it holds "
                    "an identity or passphrase) every stream is also decrypted and decompressed to its end. Exit "
                    "status 1 means a stream had already failed during the backup; 2 names the first bad part.",
    )
    add_config_arguments(parser)
    add_set_arguments(parser)
    add_trust_arguments(parser)
    add_cipher_arguments(parser)
    parser.add_argument("--key-file", type=Path, metavar="FILE",
                        help="identity or key file (default: the config's ENCRYPTION KEY_FILE)")
    add_logging_argument(parser)
    parser.set_defaults(handler=main)


@guarded
def main(args) -> int:
    setup_console_logging(args.logging_level)
    configured = open_configured_storage(args.config, args.storage)
    trust = trust_for(configured.config, args.trust_signers, allow_unsigned=args.allow_unsigned)
    chosen = choose_set(configured.storage, args.set_id, trust)
    for note in chosen.notes:
        print(f"note: {note}")
    key_file, cipher = reading_key_file(configured.config, args.key_file)
    set_id = chosen.info.set_id
    manifest = chosen.info.manifest
    if manifest is None:  # choose_set returns complete (authenticated) sets only
        raise BackupError(f"set {set_id} has no readable manifest; pick another set from `ncbackup list`")
    signed = f"signed by key {chosen.info.signer}" if chosen.info.signer else "UNSIGNED (--allow-unsigned)"
    print(f"verifying set {set_id} on {configured.storage.name} ({signed})")
    report = verify_set(
        configured.storage, manifest, key_file=key_file, must_decrypt=args.key_file is not None,
        on_stream=lambda name: print(f"  stream {name} ..."),
        expected_cipher=cipher, allowed_ciphers=tuple(args.allow_ciphers),
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
