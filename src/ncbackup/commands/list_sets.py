"""``ncbackup list -c conf.json [--storage SECTION] [--json]``: the backup sets on a storage."""

from __future__ import annotations

import json

from ncbackup.commands.common import add_logging_argument, guarded, setup_console_logging
from ncbackup.commands.setselect import add_config_arguments, add_trust_arguments, open_configured_storage, trust_for
from ncbackup.engine.result import human_size
from ncbackup.exitcodes import EXIT_OK
from ncbackup.setformat import STATE_COMPLETE, STATE_UNSIGNED, STATE_UNTRUSTED, SetInfo, list_sets


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("list", help="list the backup sets on a storage",
                                   description="List the backup sets on a storage: complete or not, time, size, streams.")
    add_config_arguments(parser)
    add_trust_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    add_logging_argument(parser)
    parser.set_defaults(handler=main)


def set_status(info: SetInfo) -> str:
    """complete, partial (some streams failed), incomplete, unsigned, untrusted or damaged (see setformat.STATE_*)."""
    if info.state == STATE_COMPLETE and info.manifest is not None and info.manifest.failed_streams:
        return "partial"
    return info.state


def short_problem(info: SetInfo) -> str:
    """What the table shows for a set that is not usable: a few words, not the whole sentence."""
    if info.state == STATE_UNTRUSTED:
        return f"signed by key {info.signer}, not trusted (--trust-signer)"
    if info.state == STATE_UNSIGNED:
        return "made before signing (--allow-unsigned to read)"
    return info.problem or "-"


def set_as_dict(info: SetInfo) -> dict:
    manifest = info.manifest
    return {
        "set_id": info.set_id,
        "status": set_status(info),
        "is_complete": info.is_complete,
        "started_at": info.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finished_at": manifest.finished_at.strftime("%Y-%m-%dT%H:%M:%SZ") if manifest else None,
        "size_bytes": info.size_bytes,
        "objects": info.object_count,
        "signer": info.signer,
        "snapshots": list(manifest.snapshots) if manifest else [],
        "level": manifest.level if manifest else None,
        "parent": manifest.parent if manifest else None,
        "chain": list(manifest.chain) if manifest else [],
        "streams": [
            {"name": s.name, "kind": s.kind, "status": s.status, "codec": s.codec, "cipher": s.cipher,
             "bytes_in": s.bytes_in, "bytes_out": s.bytes_out, "parts": len(s.parts)}
            for s in (manifest.streams if manifest else ())
        ],
        "problem": info.problem,
    }


def render_table(sets: list[SetInfo], storage_name: str) -> str:
    if not sets:
        return f"no backup sets on {storage_name}"
    rows = [("SET", "STATUS", "STARTED (UTC)", "SIZE", "LEVEL", "STREAMS")]
    for info in sets:
        manifest = info.manifest
        if manifest is not None:
            streams = ", ".join(s.name if s.is_ok else f"{s.name} (FAILED)" for s in manifest.streams)
            level = "full" if manifest.parent is None else f"incr of {manifest.parent}"
        else:
            streams, level = short_problem(info), "-"
        rows.append((info.set_id, set_status(info), info.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                     human_size(info.size_bytes), level, streams))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5] for row in rows]
    return f"sets on {storage_name}:\n" + "\n".join(line.rstrip() for line in lines)


@guarded
def main(args) -> int:
    setup_console_logging(args.logging_level)
    configured = open_configured_storage(args.config, args.storage)
    sets = list_sets(configured.storage, trust_for(configured.config, args.trust_signers, allow_unsigned=args.allow_unsigned))
    if args.json:
        print(json.dumps([set_as_dict(info) for info in sets], indent=2))
    else:
        print(render_table(sets, configured.storage.name))
    return EXIT_OK
