"""The CLEANUP section read into Rules: the original's configs load, every mistake is one sentence with line and key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ncbackup.config.load import loads_config
from ncbackup.errors import ConfigError
from ncbackup.retention.policy import policy_from_config
from ncbackup.retention.rules import Period, Rules

FILE = Path("/etc/ncbackup/conf.json")

# The original's CLEANUP, as COMPAT.md and docs/config.md show it: every value a string.
ORIGINAL = """{
  "GENERAL": {"HOSTNAME": "web1"},
  "CLEANUP": {
    "BUCKET": "acme-backups",
    "PREFIX": "web1/",
    "KEEP": {
      "DAILY":   { "NUMBER": "7" },
      "WEEKLY":  { "NUMBER": "2", "DAY": "1" },
      "MONTHLY": { "NUMBER": "2", "DAY": "1" }
    }
  }
}"""


def cleanup(keep: str, *, more: str = "") -> str:
    """A config whose CLEANUP's KEEP stands on line 4 (more: extra CLEANUP keys, each on its own line from line 5)."""
    return '{"GENERAL": {},\n"CLEANUP": {\n"BUCKET": "b",\n"KEEP": ' + keep + more + "}}"


def policy(text: str):
    return policy_from_config(loads_config(text, path=FILE))


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        policy(text)
    return caught.value


def test_the_originals_cleanup_loads_into_the_expected_rules():
    loaded = policy(ORIGINAL)
    assert loaded is not None
    assert loaded.rules == Rules(daily=Period(7), weekly=Period(2, day=1), monthly=Period(2, day=1))
    assert (loaded.bucket, loaded.prefix) == ("acme-backups", "web1/")
    assert loaded.section is not None and loaded.section.name == "CLEANUP"


def test_the_example_in_docs_config_md_loads():
    page = (Path(__file__).resolve().parents[3] / "docs" / "config.md").read_text(encoding="utf-8")
    start = page.index('"CLEANUP": {')
    block = page[start:page.index("```", start)]
    loaded = policy('{"GENERAL": {},\n' + block + "}")
    assert loaded is not None and loaded.rules.daily == Period(7)


def test_no_cleanup_section_means_no_policy():
    assert policy('{"GENERAL": {}, "FILESET": {"ACTION": "execute", "NAME": "filesbackup"}}') is None


def test_numbers_and_every_new_key_load():
    loaded = policy(cleanup(
        '{"LAST": 3, "HOURLY": {"NUMBER": 24}, "DAILY": {"NUMBER": 7.0}, "WEEKLY": {"NUMBER": 4},'
        ' "MONTHLY": {"NUMBER": "6", "DAY": 31}, "YEARLY": {"NUMBER": "2"}, "WITHIN": "6w"}',
        more=',\n"INCOMPLETE_AFTER_HOURS": 6'))
    assert loaded is not None
    assert loaded.rules == Rules(
        last=3, hourly=Period(24), daily=Period(7), weekly=Period(4), monthly=Period(6, day=31), yearly=Period(2),
        within=timedelta(weeks=6), incomplete_after=timedelta(hours=6),
    )
    assert loaded.prefix is None


def test_number_zero_turns_a_rule_off_and_daily_ignores_day():
    loaded = policy(cleanup('{"DAILY": {"NUMBER": "7", "DAY": "1"}, "WEEKLY": {"NUMBER": "0", "DAY": "1"}, "LAST": "0"}'))
    assert loaded is not None
    assert loaded.rules == Rules(daily=Period(7))


def test_all_rules_off_keeps_only_the_newest_complete_set():
    loaded = policy(cleanup('{"DAILY": {"NUMBER": "0"}}'))
    assert loaded is not None and loaded.rules == Rules()


@pytest.mark.parametrize(("keep", "key", "words"), [
    ('{"DAYLY": {"NUMBER": "7"}}', "CLEANUP.KEEP.DAYLY", "LAST, HOURLY, DAILY, WEEKLY, MONTHLY, YEARLY, WITHIN"),
    ('{"daily": {"NUMBER": "7"}}', "CLEANUP.KEEP.daily", "DAILY"),
    ('{"WEEKLY": {"NUMBER": "2", "DAYS": "1"}}', "CLEANUP.KEEP.WEEKLY.DAYS", "NUMBER, DAY"),
    ('{"HOURLY": {"NUMBER": "2", "DAY": "1"}}', "CLEANUP.KEEP.HOURLY.DAY", "NUMBER"),
    ('{"WEEKLY": {"NUMBER": "2", "DAY": "8"}}', "CLEANUP.KEEP.WEEKLY.DAY", "1 (Monday) to 7 (Sunday)"),
    ('{"WEEKLY": {"NUMBER": "2", "DAY": "0"}}', "CLEANUP.KEEP.WEEKLY.DAY", "1 (Monday) to 7 (Sunday)"),
    ('{"MONTHLY": {"NUMBER": "2", "DAY": "32"}}', "CLEANUP.KEEP.MONTHLY.DAY", "1 to 31"),
    ('{"DAILY": {"NUMBER": "seven"}}', "CLEANUP.KEEP.DAILY.NUMBER", "whole number"),
    ('{"DAILY": {"NUMBER": "-1"}}', "CLEANUP.KEEP.DAILY.NUMBER", "greater than or equal to 0"),
    ('{"DAILY": {"DAY": "1"}}', "CLEANUP.KEEP.DAILY", "needs NUMBER"),
    ('{"DAILY": "7"}', "CLEANUP.KEEP.DAILY", "must be an object"),
    ('{"LAST": "x"}', "CLEANUP.KEEP.LAST", "whole number"),
    ('{"WITHIN": "2 weeks"}', "CLEANUP.KEEP.WITHIN", '"14d"'),
    ('{}', "CLEANUP.KEEP", "add \"KEEP\""),
    ('"7"', "CLEANUP.KEEP", "must be an object"),
])
def test_each_mistake_in_keep_is_one_sentence_with_line_and_key(keep, key, words):
    problem = error(cleanup(keep))
    assert (problem.file, problem.line, problem.key) == (FILE, 4, key)
    message = str(problem)
    assert words in message
    assert "\n" not in message and "Traceback" not in message


def test_a_cleanup_without_keep_says_to_add_it():
    problem = error('{"GENERAL": {},\n"CLEANUP": {\n"BUCKET": "b"}}')
    assert problem.key == "CLEANUP.KEEP" and problem.line == 2
    assert 'add "KEEP"' in str(problem)


@pytest.mark.parametrize(("more", "key", "words"), [
    (',\n"INCOMPLETE_AFTER_HOURS": "0"', "CLEANUP.INCOMPLETE_AFTER_HOURS", "greater than 0"),
    (',\n"INCOMPLETE_AFTER_HOURS": "soon"', "CLEANUP.INCOMPLETE_AFTER_HOURS", "number"),
    (',\n"KEPP": {"DAILY": {"NUMBER": "7"}}', "CLEANUP.KEPP", "BUCKET, PREFIX, KEEP, INCOMPLETE_AFTER_HOURS"),
])
def test_each_mistake_at_cleanup_level_names_its_own_line(more, key, words):
    problem = error(cleanup('{"DAILY": {"NUMBER": "7"}}', more=more))
    assert (problem.line, problem.key) == (5, key)
    assert words in str(problem)
