"""The original tool's decrypt command line, kept working from a checkout (no install needed).

    python encryption/encryption.py -d --KEY_FILE K --OBJECTIVES P --DESTINATION D --HOME_FOLDER H

P is one part (``X.000``) or the common prefix of the parts (``X`` matches ``X.000``, ``X.001``...;
as the original assumed a wild card at the end, any shorter prefix naming one file's parts works too);
D is the file to write (replaced if it exists, as the original did). HOME_FOLDER is accepted and
ignored. It runs the same code as ``ncbackup decrypt``: age, legacy OpenSSL and GnuPG data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Run from a checkout: put src/ on the path unless ncbackup is installed.
_SRC = Path(__file__).resolve().parent.parent / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from ncbackup.commands.common import EXIT_UNUSABLE, guarded, say_error  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="encryption.py", description="Decrypt backups of nc-backup-py and ncbackup (the original's command line)."
    )
    parser.add_argument("-d", "--DECRYPT", action="store_true", help="decrypt (the only mode this script keeps)")
    parser.add_argument("-o", "--OBJECTIVES", required=True,
                        help="one part (X.000) or a prefix of the part names (a wild card is assumed at the end)")
    parser.add_argument("-D", "--DESTINATION", required=True, help="the decrypted file to write")
    parser.add_argument("-k", "--KEY_FILE", required=True, help="the key file the backup was made with")
    parser.add_argument("-H", "--HOME_FOLDER", help="accepted and ignored")
    parser.add_argument("-s", "--FILE_SIZE", help="accepted and ignored")
    parser.add_argument("-r", "--REMOVE_OBJECTIVES", help="accepted and ignored")
    return parser


@guarded
def _decrypt(args) -> int:
    from ncbackup.commands.decrypt import run_decrypt

    return run_decrypt(
        input_path=Path(args.OBJECTIVES.strip()),
        output=Path(args.DESTINATION.strip()),
        key_file=Path(args.KEY_FILE.strip()),
        force=True,  # the original replaced DESTINATION
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, _unknown = parser.parse_known_args(argv)  # the original ignored unknown options too
    if not args.DECRYPT:
        say_error(
            "encryption.py only decrypts now (-d); backups are encrypted by `ncbackup run -c conf.json` "
            "or `python backup.py -r -c conf.json`"
        )
        return EXIT_UNUSABLE
    return _decrypt(args)


if __name__ == "__main__":
    sys.exit(main())
