"""``ncbackup notify-test -c conf.json [--section NAME]``: send a test message through each notifier.

ON is ignored (every notifier gets the test), retries are those of a run. One line per notifier: ok,
or why not. Exit 0 when every notifier delivered, 1 otherwise, 3 when the config is unusable.
"""

from __future__ import annotations

from pathlib import Path

from ncbackup.commands.common import add_logging_argument, guarded, one_line, setup_console_logging
from ncbackup.config import load_config
from ncbackup.engine.logs import mask_secrets
from ncbackup.engine.result import RunResult
from ncbackup.errors import ConfigError
from ncbackup.exitcodes import EXIT_OK, EXIT_WARNINGS
from ncbackup.notify.message import build_message
from ncbackup.notify.registry import LEGACY_NAME, build_notifiers, deliver


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "notify-test", help="send a test message through each notifier and say which worked",
        description="Send a test message through every notifier of the config (NOTIFY sections and the legacy "
                    "GENERAL MESSAGE_CONFIG_* keys), whatever their ON, and print one line per notifier: ok, or "
                    "why not. Exit 0 when all delivered, 1 otherwise.")
    parser.add_argument("-c", "--config", required=True, type=Path, help="the JSON config file")
    parser.add_argument("--section", default=None, metavar="NAME",
                        help=f"only the NOTIFY section NAME ({LEGACY_NAME}: the legacy GENERAL report)")
    add_logging_argument(parser)
    parser.set_defaults(handler=main)


@guarded
def main(args) -> int:
    setup_console_logging(args.logging_level)
    config = load_config(args.config)
    deliveries = build_notifiers(config, only_section=args.section)
    if not deliveries:
        which = f"no notifier named {args.section}" if args.section else "no notifier"
        raise ConfigError(f"{which} in {config.path}; add a NOTIFY section (docs/notify.md)"
                          + (" or check the section name" if args.section else ""))
    result = RunResult(config_path=str(config.path), hostname=config.general.hostname)
    message = build_message(result, "", is_test=True)
    failed = 0
    for delivery in deliveries:
        problem = deliver(delivery, message)
        failed += problem is not None
        verdict = "ok" if problem is None else f"FAILED: {problem}"
        print(one_line(mask_secrets(f"{delivery.name} ({delivery.method}): {verdict}")))
    return EXIT_OK if not failed else EXIT_WARNINGS
