"""FULL_EVERY: when an incremental chain must start again with a full set (a duration, or a weekday)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ncbackup.config.values import to_duration_seconds

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class FullEvery:
    """Either seconds since the chain's full set, or a weekday (0 = Monday) whose start is a full's deadline."""

    seconds: float | None = None
    weekday: int | None = None

    def __str__(self) -> str:
        if self.weekday is not None:
            return WEEKDAYS[self.weekday]
        seconds = self.seconds or 0
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds >= size and seconds % size == 0:
                return f"{int(seconds // size)}{unit}"
        return f"{seconds:g}s"

    def is_due(self, full_at: datetime, now: datetime) -> bool:
        """True when a full is due: the duration has passed since full_at, or a weekday began after it.

        Both datetimes are aware; the weekday is read in now's time zone (the server's local time).
        """
        if self.weekday is None:
            return (now - full_at).total_seconds() >= (self.seconds or 0)
        start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        last = start_of_day - timedelta(days=(now.weekday() - self.weekday) % 7)
        return full_at < last


def to_full_every(value: Any) -> FullEvery | None:
    """FULL_EVERY as written: `7d`, `36h`, seconds, or a weekday name (`sunday`, `sun`); blank: none."""
    if value is None or isinstance(value, FullEvery):
        return value
    text = str(value).strip().lower()
    if not text or text in ("none", "never", "off"):
        return None
    for number, name in enumerate(WEEKDAYS):
        if text == name or (len(text) >= 3 and name.startswith(text)):
            return FullEvery(weekday=number)
    try:
        return FullEvery(seconds=to_duration_seconds(value))
    except ValueError:
        raise ValueError('expected a duration such as "7d" or "36h", or a weekday such as "sunday"') from None
