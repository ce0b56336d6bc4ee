"""``ncbackup keygen [--output PATH]``: create an age identity file (0600) and print its public recipient."""

from __future__ import annotations

import sys
from pathlib import Path

from ncbackup.commands.common import EXIT_OK, guarded
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
            "its KEY_FILE."
        ),
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=DEFAULT_KEY_FILE,
        help=f"where to write the identity file (default {DEFAULT_KEY_FILE})",
    )
    parser.set_defaults(handler=main)


@guarded
def main(args) -> int:
    output = Path(args.output)
    recipient = write_identity_file(output)
    # The public recipient only: the identity (secret) never reaches the terminal or a log.
    print(recipient)
    print(
        f"wrote the age identity to {output} (mode 0600); copy it somewhere safe: without it no backup "
        "made with it can be restored. For a write-only server, put only the line above in its KEY_FILE.",
        file=sys.stderr,
    )
    return EXIT_OK
