"""The CLEANUP section as ``Rules``: the original's KEEP keys exactly, plus the new ones.

```json
"CLEANUP": {"BUCKET": "acme-backups", "PREFIX": "web1/",
            "KEEP": {"DAILY": {"NUMBER": "7"}, "WEEKLY": {"NUMBER": "2", "DAY": "1"},
                     "MONTHLY": {"NUMBER": "2", "DAY": "1"}}}
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from ncbackup.config.settings import Config, Position, SectionSettings
from ncbackup.config.types import LegacyFloat, LegacyInt, parse_options
from ncbackup.errors import ConfigError
from ncbackup.retention.rules import Period, Rules, parse_within

CLEANUP_SECTION = "CLEANUP"
KEEP_KEY = "KEEP"
_EXAMPLE_KEEP = '"KEEP": {"DAILY": {"NUMBER": "7"}, "WEEKLY": {"NUMBER": "2", "DAY": "1"}}'


@dataclass(frozen=True)
class Policy:
    rules: Rules
    bucket: str | None = None            # BUCKET: only the STORAGE sections writing to this bucket
    prefix: str | None = None            # PREFIX: ... and under this prefix
    section: SectionSettings | None = None


# --------------------------------------------------------------------------------------------------
# The option models (their fields are the reference tables of docs/retention.md)


def _day_between(low: int, high: int, what: str) -> Any:
    def check(value: int | None) -> int | None:
        if value is not None and not low <= value <= high:
            raise ValueError(f"expected {what}")
        return value
    return AfterValidator(check)


def _to_within(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_within(str(value))


Number = Annotated[LegacyInt, Field(ge=0)]
Weekday = Annotated[LegacyInt | None, _day_between(1, 7, "an ISO weekday: 1 (Monday) to 7 (Sunday)")]
DayOfMonth = Annotated[LegacyInt | None, _day_between(1, 31, "a day of the month, 1 to 31")]
Within = Annotated[timedelta, BeforeValidator(_to_within)]


class KeepNumber(BaseModel):
    """HOURLY, YEARLY: how many periods keep a set."""

    number: Number = Field(alias="NUMBER", description="How many hours (years) keep their newest set; `0` turns the rule off.")


class KeepDaily(BaseModel):
    number: Number = Field(alias="NUMBER", description="How many days keep their newest set; `0` turns the rule off.")
    day: LegacyInt | None = Field(
        None, alias="DAY", description="Accepted for configs that carry it; has no effect on DAILY.",
        json_schema_extra={"allowed": "any whole number"},
    )


class KeepWeekly(BaseModel):
    number: Number = Field(alias="NUMBER", description="How many ISO weeks (Monday to Sunday) keep a set; `0` turns the rule off.")
    day: Weekday = Field(
        None, alias="DAY",
        description="Keep the first set made on or after this weekday of each week (a failed Monday is covered by "
                    "Tuesday's set); without DAY, the newest set of the week.",
        json_schema_extra={"allowed": "whole number, 1 (Monday) to 7 (Sunday)", "shown_default": "the newest set of the week"},
    )


class KeepMonthly(BaseModel):
    number: Number = Field(alias="NUMBER", description="How many months keep a set; `0` turns the rule off.")
    day: DayOfMonth = Field(
        None, alias="DAY",
        description="Keep the first set made on or after this day of each month; a day past the month's end means "
                    "its last day; without DAY, the newest set of the month.",
        json_schema_extra={"allowed": "whole number, 1 to 31", "shown_default": "the newest set of the month"},
    )


class KeepOptions(BaseModel):
    """The KEEP object: each key is one rule; a set kept by any rule is kept."""

    last: Number | None = Field(None, alias="LAST", description="Keep the n newest complete sets.",
                                json_schema_extra={"allowed": "whole number, >= 0"})
    hourly: KeepNumber | None = Field(
        None, alias="HOURLY", description="The newest complete set of each of the last `NUMBER` hours that have one.",
        json_schema_extra={"allowed": '`{"NUMBER": n}`'})
    daily: KeepDaily | None = Field(
        None, alias="DAILY", description="The newest complete set of each of the last `NUMBER` days that have one.",
        json_schema_extra={"allowed": '`{"NUMBER": n}`'})
    weekly: KeepWeekly | None = Field(
        None, alias="WEEKLY", description="One complete set for each of the last `NUMBER` ISO weeks that have one (see `DAY`).",
        json_schema_extra={"allowed": '`{"NUMBER": n, "DAY": d}`, d 1-7'})
    monthly: KeepMonthly | None = Field(
        None, alias="MONTHLY", description="One complete set for each of the last `NUMBER` months that have one (see `DAY`).",
        json_schema_extra={"allowed": '`{"NUMBER": n, "DAY": d}`, d 1-31'})
    yearly: KeepNumber | None = Field(
        None, alias="YEARLY", description="The newest complete set of each of the last `NUMBER` years that have one.",
        json_schema_extra={"allowed": '`{"NUMBER": n}`'})
    within: Within | None = Field(
        None, alias="WITHIN",
        description="Every complete set made within this span before the newest complete set (not before now).",
        json_schema_extra={"allowed": "`12h`, `14d`, `6w`, `3m` (months of 30 days), `1y` (365 days), or combined: `1y6m`"})


class CleanupOptions(BaseModel):
    """The CLEANUP section's own keys (section level, not in PARAMETERS)."""

    bucket: str | None = Field(
        None, alias="BUCKET", description="Prune only the object-store storages (S3, OSS) writing to this bucket.",
        json_schema_extra={"shown_default": "every storage of the config"})
    prefix: str | None = Field(
        None, alias="PREFIX", description="... and only those whose base is under this key prefix.",
        json_schema_extra={"shown_default": "any prefix"})
    keep: dict[str, Any] | None = Field(
        None, alias=KEEP_KEY, description="The rules: an object of the keys in the next table.",
        json_schema_extra={"shown_default": "**required**", "allowed": "object"})
    incomplete_after_hours: LegacyFloat = Field(
        24.0, alias="INCOMPLETE_AFTER_HOURS", gt=0,
        description="An incomplete set (no manifest or signature) is removed only when older than this, "
                    "and never while a run holds the lock.")


_KEEP_ENTRIES: dict[str, type[BaseModel]] = {
    "HOURLY": KeepNumber, "DAILY": KeepDaily, "WEEKLY": KeepWeekly, "MONTHLY": KeepMonthly, "YEARLY": KeepNumber,
}


# --------------------------------------------------------------------------------------------------
# Reading the section


def cleanup_section(config: Config) -> SectionSettings | None:
    """The config's CLEANUP section (any case), if any."""
    return next((s for s in config.sections if s.name.upper() == CLEANUP_SECTION and s.action is None), None)


def _known_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _error(message: str, *, at: Position | None, key: str) -> ConfigError:
    return ConfigError(message, file=at.file if at else None, line=at.line if at else None,
                       column=at.column if at else None, key=key)


def _check_keys(
    values: Mapping[str, Any], model: type[BaseModel], *, at: Position | None, where: str,
    positions: Mapping[str, Position] | None = None,
) -> None:
    """An unknown key is an error naming the known ones: a typo must never mean "keep nothing"."""
    known = _known_keys(model)
    for key in values:
        if key not in known:
            raise _error(f'unknown key "{key}"; the keys here are {", ".join(known)}; fix the spelling',
                         at=(positions or {}).get(key) or at, key=f"{where}.{key}")


def _keep_values(section: SectionSettings) -> dict[str, Any]:
    """KEEP, every key checked, every entry an object with NUMBER."""
    at = section.key_positions.get(KEEP_KEY) or section.position
    where = f"{section.name}.{KEEP_KEY}"
    keep = section.extra.get(KEEP_KEY)
    if keep is not None and not isinstance(keep, Mapping):
        raise _error(f"KEEP must be an object of rules, got {keep!r}; write it like {_EXAMPLE_KEEP}", at=at, key=where)
    if not keep:
        raise _error(f"CLEANUP has no rule, so it would keep nothing; add {_EXAMPLE_KEEP}", at=at, key=where)
    values = dict(keep)
    _check_keys(values, KeepOptions, at=at, where=where)
    for key, entry in values.items():
        model = _KEEP_ENTRIES.get(key)
        if model is None:
            continue
        if not isinstance(entry, Mapping):
            raise _error(f'{key} must be an object such as {{"NUMBER": "7"}}, got {entry!r}; wrap it in {{ }}',
                         at=at, key=f"{where}.{key}")
        _check_keys(entry, model, at=at, where=f"{where}.{key}")
        if "NUMBER" not in entry:
            raise _error(f'{key} needs NUMBER (how many to keep); add "NUMBER": "7"', at=at, key=f"{where}.{key}")
        values[key] = entry
    return values


def _period(entry: KeepNumber | KeepDaily | KeepWeekly | KeepMonthly | None, *, has_day: bool) -> Period | None:
    if entry is None or entry.number == 0:
        return None
    day = entry.day if has_day and isinstance(entry, (KeepWeekly, KeepMonthly)) else None
    return Period(number=entry.number, day=day)


def policy_from_config(config: Config) -> Policy | None:
    """The config's retention policy (None without a CLEANUP section); ConfigError naming line and key when invalid."""
    section = cleanup_section(config)
    if section is None:
        return None
    _check_keys(section.extra, CleanupOptions, at=section.position, where=section.name,
                positions=section.key_positions)
    keep_values = _keep_values(section)
    options = parse_options(CleanupOptions, section, parameters=section.extra)
    keep = parse_options(KeepOptions, section, parameters=keep_values, within=KEEP_KEY)
    rules = Rules(
        last=keep.last or None,
        hourly=_period(keep.hourly, has_day=False),
        daily=_period(keep.daily, has_day=False),
        weekly=_period(keep.weekly, has_day=True),
        monthly=_period(keep.monthly, has_day=True),
        yearly=_period(keep.yearly, has_day=False),
        within=keep.within,
        incomplete_after=timedelta(hours=options.incomplete_after_hours),
    )
    return Policy(rules=rules, bucket=options.bucket, prefix=options.prefix, section=section)
