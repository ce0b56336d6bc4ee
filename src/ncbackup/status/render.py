"""The status view as a text table and as JSON (the HTML page: status/html.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ncbackup.engine.result import human_size
from ncbackup.status.collect import STATES, HostStatus


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def shown(name: str) -> str:
    """A name read from storage, for a terminal: as is, or quoted with escapes when it holds a control character."""
    return name if name.isprintable() else repr(name)


def age_text(hours: float | None) -> str:
    if hours is None:
        return "-"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} d"


def trend_text(status: HostStatus) -> str:
    percent = status.trend_percent
    return "-" if percent is None else f"{percent:+.1f}%"


def states_text(status: HostStatus) -> str:
    return " ".join(f"{state}:{status.states[state]}" for state in STATES if status.states.get(state)) or "-"


def flag_text(status: HostStatus, alert_after_hours: float) -> str:
    if status.error is not None:
        return "UNREADABLE"
    if status.newest is None:
        return "NO COMPLETE SET"
    return f"OLDER THAN {alert_after_hours:g} h" if status.is_stale else "ok"


def render_text(hosts: list[HostStatus], *, now: datetime, alert_after_hours: float) -> str:
    """One row per host, then the problems (last failed or incomplete set, unreadable hosts) one line each."""
    if not hosts:
        return "no host folders found"
    rows = [("HOST", "NEWEST COMPLETE", "AGE", "SIZE", "TREND(7)", "SETS",
             "SIGNATURES", "FLAG")]
    for status in hosts:
        newest = status.newest
        rows.append((
            shown(status.host), newest.set_id if newest else "-", age_text(status.age_hours(now)),
            human_size(newest.size_bytes) if newest else "-", trend_text(status), str(status.set_count),
            states_text(status), flag_text(status, alert_after_hours),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    notes = []
    for status in hosts:
        if status.error is not None:
            notes.append(f"{shown(status.host)}: cannot be read: {status.error}")
        elif status.last_problem is not None:
            problem = status.last_problem
            notes.append(f"{shown(status.host)}: last {problem.state} set {problem.set_id}: {shown(problem.reason)}")
    stale = sum(1 for status in hosts if status.is_stale)
    summary = (f"{len(hosts)} host(s), {stale} flagged (no complete set newer than ALERT_AFTER_HOURS "
               f"{alert_after_hours:g} h, or unreadable)")
    return "\n".join(lines + ([""] + notes if notes else []) + ["", summary])


def host_as_dict(status: HostStatus, *, now: datetime) -> dict[str, Any]:
    newest = status.newest
    age = status.age_hours(now)
    return {
        "host": status.host,
        "storage": status.storage_name,
        "sets": status.set_count,
        "newest_complete": None if newest is None else {
            "set_id": newest.set_id, "finished_at": _iso(newest.finished_at), "size_bytes": newest.size_bytes,
        },
        "age_hours": None if age is None else round(age, 2),
        "recent_sizes_bytes": status.recent_sizes,
        "trend_percent": None if status.trend_percent is None else round(status.trend_percent, 1),
        "states": {state: status.states.get(state, 0) for state in STATES},
        "last_problem": None if status.last_problem is None else {
            "set_id": status.last_problem.set_id, "state": status.last_problem.state,
            "reason": status.last_problem.reason,
        },
        "is_stale": status.is_stale,
        "error": status.error,
        "sizes": [{"set_id": p.set_id, "finished_at": _iso(p.finished_at), "size_bytes": p.size_bytes}
                  for p in status.points],
    }


def render_json(hosts: list[HostStatus], *, now: datetime, alert_after_hours: float) -> dict[str, Any]:
    return {
        "generated_at": _iso(now),
        "alert_after_hours": alert_after_hours,
        "hosts": [host_as_dict(status, now=now) for status in hosts],
    }
