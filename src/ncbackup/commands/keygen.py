"""``ncbackup keygen [--output PATH] [--signing-key PATH]``: create an age identity file (0600) and print its
public recipient; and/or create a set-signing key (0600) with its public half beside it (PATH.pub)."""

from __future__ import annotations

import sys
from pathlib import Path

from ncbackup.commands.common import guarded
from ncbackup.exitcodes import EXIT_OK
from ncbackup.signing import public_key_path, write_signing_key
from ncbackup.stages.keys import write_identity_file
from ncbackup.stages.registry import DEFAULT_KEY_FILE


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "keygen",
        help="create an age identity (key) file and print its public recipient",
        description=(
            "Create an age identity file (mode 0600; an existing file is never overwritten) and print its "
            "public recipient (age1...). Keep the identity file somewhere safe: it is the only way to "
            "restore. A server that should write backups it cannot read gets only the recipient line in "
            "its KEY_FILE. With --signing-key, also (or, without --output, only) create the key that signs "
            "every backup set (minisign format); its public half PATH.pub is what a restoring machine trusts."
        ),
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=None,
        help=f"where to write the identity file (default {DEFAULT_KEY_FILE}, unless only --signing-key is given)",
    )
    parser.add_argument(
        "--signing-key", type=Path, default=None, metavar="PATH",
        help="also create a set-signing key at PATH (0600) and its public key at PATH.pub",
    )
    parser.set_defaults(handler=main)


@guarded
def main(args) -> int:
    if args.output is not None or args.signing_key is None:
        output = Path(args.output or DEFAULT_KEY_FILE)
        recipient = write_identity_file(output)
        # The public recipient only: the identity (secret) never reaches the terminal or a log.
        print(recipient)
        print(
            f"wrote the age identity to {output} (mode 0600); copy it somewhere safe: without it no backup "
            "made with it can be restored. For a write-only server, put only the line above in its KEY_FILE.",
            file=sys.stderr,
        )
    if args.signing_key is not None:
        key = write_signing_key(args.signing_key)
        print(key.public.encoded())
        print(
            f"wrote the signing key to {args.signing_key} (mode 0600) and its public key (id {key.public.id_text}) to "
            f"{public_key_path(args.signing_key)}; keep a copy of the .pub file: a restore on another machine trusts "
            "this server's sets with --trust-signer FILE. Point SIGNING_KEY at the key on the server.",
            file=sys.stderr,
        )
    return EXIT_OK
