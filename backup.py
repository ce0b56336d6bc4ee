#!/usr/bin/env python3
"""The original's entry point: ``python backup.py -r|-t -c conf.json [-l LEVEL]``.

-r runs the config (``ncbackup run``), -t tests it (``ncbackup check``); both keep the original's
options. Works from a checkout without installing: src/ is put on the import path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from ncbackup.cli import EXIT_UNUSABLE
from ncbackup.cli import main as ncbackup_main


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNUSABLE, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="backup.py", description="Run (-r) or test (-t) an nc-backup-py/ncbackup config.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("-r", "--run", action="store_true", help="run every section in file order")
    mode.add_argument("-t", "--test", action="store_true", help="check the config and reachability; run nothing")
    parser.add_argument("-c", "--config", required=True, help="the JSON config file")
    parser.add_argument("-l", "--logging_level", default="WARNING", help="CRITICAL, ERROR, WARNING, INFO or DEBUG")
    args = parser.parse_args(argv)
    command = ["run" if args.run else "check", "-c", args.config, "-l", args.logging_level]
    return ncbackup_main(command)


if __name__ == "__main__":
    sys.exit(main())
