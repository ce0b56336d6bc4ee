"""docs/retention.md's example table is what decide() returns: the page and the rule engine cannot drift apart."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from ncbackup.retention.rules import Candidate, Kind, Period, Rules, decide
from ncbackup.setformat import set_time
from tests.support import REPO

PAGE = REPO / "docs" / "retention.md"
MARKER = "<!-- EXAMPLE TABLE:"
KINDS = {"complete": Kind.WHOLE, "partial": Kind.PARTIAL, "incomplete": Kind.INCOMPLETE, "foreign": Kind.FOREIGN}
# What the text above the table states: DAILY 7, WEEKLY 2 DAY 1, zone UTC, prune on 2026-11-15 at 12:00.
RULES = Rules(daily=Period(7), weekly=Period(2, day=1))
NOW = datetime(2026, 11, 15, 12, 0, tzinfo=timezone.utc)
ROW = re.compile(r"\| `(?P<set_id>[0-9TZ-]+)` \| (?P<day>[^|]+) \| (?P<kind>\w+) \| (?P<decision>keep|remove) \| (?P<reasons>[^|]+) \|")


def example_rows() -> list[re.Match[str]]:
    text = PAGE.read_text(encoding="utf-8")
    table = text[text.index(MARKER):].split("\n\n", 1)[0]
    return [match for line in table.splitlines() if (match := ROW.fullmatch(line.strip()))]


def test_the_example_table_is_what_decide_returns():
    rows = example_rows()
    assert len(rows) == 15, "the example table in docs/retention.md lost rows (or this test's pattern drifted)"
    candidates = [Candidate(row["set_id"], set_time(row["set_id"]), KINDS[row["kind"]]) for row in rows]
    decisions = decide(candidates, RULES, now=NOW, tz=timezone.utc)
    shown = [(row["set_id"], row["decision"], row["reasons"].strip()) for row in rows]
    computed = [(item.set_id, "keep" if item.keep else "remove", "; ".join(item.reasons)) for item in decisions]
    assert computed == shown


def test_the_example_days_are_the_set_ids_days():
    for row in example_rows():
        assert set_time(row["set_id"]).strftime("%a %d") == row["day"].strip()


def test_the_example_keep_block_is_the_rules_the_test_uses():
    text = PAGE.read_text(encoding="utf-8")
    assert '"KEEP": { "DAILY": { "NUMBER": "7" }, "WEEKLY": { "NUMBER": "2", "DAY": "1" } }' in text
    words = " ".join(text.split())
    assert "Sunday 2026-11-15 at 12:00" in words and "in the time zone UTC" in words
