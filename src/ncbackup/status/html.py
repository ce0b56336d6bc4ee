"""The status view as one self-contained HTML page: inline CSS, an inline SVG size chart per host, no
scripts and no external assets; every name read from storage is escaped."""

from __future__ import annotations

from datetime import datetime
from html import escape

from ncbackup.engine.result import human_size
from ncbackup.status.collect import HostStatus
from ncbackup.status.render import age_text, flag_text, shown, states_text, trend_text

CHART_WIDTH, CHART_HEIGHT = 160, 36

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}
th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:middle}
th{background:#f4f4f4}
tr.stale td{background:#fdecea}
td.flag{font-weight:bold}
tr.stale td.flag{color:#b00020}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
svg polyline{fill:none;stroke:#1565c0;stroke-width:1.5}
.problem{color:#8a4b00;font-size:12px}
"""


def size_chart(status: HostStatus) -> str:
    """An inline SVG polyline of the host's complete set sizes over time (empty box without two sets)."""
    points = status.points
    box = f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" ' \
          f'viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" aria-label="set size over time">'
    if len(points) < 2:
        return box + "</svg>"
    first = points[0].finished_at.timestamp()
    span = max(points[-1].finished_at.timestamp() - first, 1.0)
    largest = max(point.size_bytes for point in points) or 1
    coordinates = " ".join(
        f"{2 + (point.finished_at.timestamp() - first) / span * (CHART_WIDTH - 4):.1f},"
        f"{CHART_HEIGHT - 2 - point.size_bytes / largest * (CHART_HEIGHT - 4):.1f}"
        for point in points
    )
    return f'{box}<polyline points="{coordinates}"/></svg>'


def render_html(hosts: list[HostStatus], *, now: datetime, alert_after_hours: float, title: str) -> str:
    rows = []
    for status in hosts:
        newest = status.newest
        problem = ""
        if status.error is not None:
            problem = f'<div class="problem">cannot be read: {escape(status.error)}</div>'
        elif status.last_problem is not None:
            last = status.last_problem
            problem = (f'<div class="problem">last {escape(last.state)} set {escape(last.set_id)}: '
                       f"{escape(last.reason)}</div>")
        rows.append(
            f'<tr class="{"stale" if status.is_stale else "ok"}">'
            f'<td class="host">{escape(shown(status.host))}{problem}</td>'
            f'<td>{escape(newest.set_id) if newest else "-"}</td>'
            f'<td class="num">{escape(age_text(status.age_hours(now)))}</td>'
            f'<td class="num">{escape(human_size(newest.size_bytes)) if newest else "-"}</td>'
            f'<td class="num">{escape(trend_text(status))}</td>'
            f"<td>{size_chart(status)}</td>"
            f'<td class="num">{status.set_count}</td>'
            f"<td>{escape(states_text(status))}</td>"
            f'<td class="flag">{escape(flag_text(status, alert_after_hours))}</td>'
            "</tr>"
        )
    stale = sum(1 for status in hosts if status.is_stale)
    generated = now.strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="summary">{len(hosts)} host(s), {stale} flagged (no complete set newer than ALERT_AFTER_HOURS '
        f"{alert_after_hours:g} h, or unreadable). Generated {escape(generated)}.</p>"
        '<table id="hosts"><thead><tr><th>host</th><th>newest complete set</th><th>age</th><th>size</th>'
        "<th>trend (last 7)</th><th>size over time</th><th>sets</th><th>signatures</th><th>flag</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></body></html>\n"
    )
