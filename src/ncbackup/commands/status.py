"""``ncbackup status -c conf.json [--storage SECTION] [--all-hosts] [--json] [--html FILE]``: how fresh, big and
healthy each host's backups are, read from the storage's manifests (never its parts)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from ncbackup.commands.common import add_logging_argument, guarded, setup_console_logging
from ncbackup.commands.setselect import (
    READ_ATTEMPTS,
    add_config_arguments,
    add_trust_arguments,
    open_configured_storage,
    trust_for,
)
from ncbackup.errors import BackupError
from ncbackup.exitcodes import EXIT_OK, EXIT_WARNINGS
from ncbackup.status.collect import TREND_SETS, every_host, fleet_status, workers_for
from ncbackup.status.html import render_html
from ncbackup.status.render import render_json, render_text
from ncbackup.storage.base import Storage
from ncbackup.storage.retry import with_retries


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "status", help="show each host's newest complete set, its age, size trend and problems",
        description="Show, per host, the newest complete set and its age, its size and the size trend, the last "
                    "failed or incomplete set, signature states and the number of sets, flagging hosts whose "
                    "newest complete set is older than GENERAL ALERT_AFTER_HOURS. Reads manifests only. "
                    "Exit status 1 when a host is flagged.")
    add_config_arguments(parser)
    add_trust_arguments(parser)
    parser.add_argument("--all-hosts", action="store_true",
                        help="every host folder beside this host's on the storage (bucket/prefix or folder), not "
                             "only this one; trust each host's signing key with TRUSTED_SIGNERS or --trust-signer")
    parser.add_argument("--verify-all", action="store_true",
                        help=f"open and verify every set (default: the newest {TREND_SETS} of each host, older ones "
                             "are counted as unverified); slower on a large fleet")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--html", type=Path, metavar="FILE",
                        help="also write a self-contained HTML page (table and size chart per host) to FILE")
    add_logging_argument(parser)
    parser.set_defaults(handler=main)


def _write_page(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise BackupError(f"cannot write the HTML page {path} ({error.strerror}); choose another --html path") from None


@guarded
def main(args) -> int:
    setup_console_logging(args.logging_level)
    configured = open_configured_storage(args.config, args.storage)
    general = configured.config.general
    trust = trust_for(configured.config, args.trust_signers, allow_unsigned=args.allow_unsigned)
    started = time.monotonic()
    hosts: list[tuple[str, Storage]]
    if args.all_hosts:
        hosts = [(name, with_retries(storage, attempts=READ_ATTEMPTS, first_wait_seconds=1.0))
                 for name, storage in every_host(configured.storage)]
    else:
        hosts = [(general.hostname, configured.storage)]
    now = datetime.now(timezone.utc)
    found = fleet_status(hosts, trust, now=now, alert_after_hours=general.alert_after_hours,
                         workers=workers_for(configured.storage), verify_newest=None if args.verify_all else TREND_SETS)
    if args.json:
        document = render_json(found, now=now, alert_after_hours=general.alert_after_hours)
        document["storage"] = configured.storage.name
        document["seconds"] = round(time.monotonic() - started, 2)
        print(json.dumps(document, indent=2))
    else:
        print(render_text(found, now=now, alert_after_hours=general.alert_after_hours))
    if args.html is not None:
        _write_page(args.html, render_html(found, now=now, alert_after_hours=general.alert_after_hours,
                                           title=f"ncbackup status: {configured.storage.name}"))
    return EXIT_WARNINGS if any(status.is_stale for status in found) else EXIT_OK
