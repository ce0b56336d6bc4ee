"""ALERT_AFTER_HOURS at the start of a run: a storage whose newest complete set is too old is a warning.

Silence is an alert: a backup that stopped working weeks ago looks, to the run that finally succeeds,
like any other success. So each run first looks at what its storages hold and says how old the newest
complete set is when that is past the limit, whatever this run then does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from ncbackup.errors import BackupError
from ncbackup.signing import Trust
from ncbackup.status.collect import newest_complete
from ncbackup.storage.base import Storage

log = logging.getLogger(__name__)


def hours_text(hours: float) -> str:
    return f"{hours:.0f} h" if hours < 100 else f"{hours / 24:.1f} days"


def freshness_warnings(
    storages: Sequence[tuple[str, Storage]], trust: Trust, *, host: str, now: datetime, alert_after_hours: float,
) -> list[str]:
    """One warning per storage (section name, storage) whose newest complete set of host is older than
    alert_after_hours, or that holds sets but none complete; a storage that cannot be read is a warning too."""
    warnings: list[str] = []
    for section_name, storage in storages:
        try:
            found = newest_complete(storage, trust, host)
        except BackupError as error:
            warnings.append(f"could not check the age of the newest complete set on {section_name} ({storage.name}): "
                            f"{error}")
            continue
        limit = f"ALERT_AFTER_HOURS {alert_after_hours:g}"
        if found.newest_complete is None:
            if found.set_count:
                warnings.append(f"there is no complete set on {section_name} ({storage.name}) among its "
                                f"{found.set_count} set(s) ({limit}); check the last runs' logs and `ncbackup list`")
            continue
        manifest = found.newest_complete
        age_hours = (now - manifest.finished_at).total_seconds() / 3600
        if age_hours > alert_after_hours:
            warnings.append(f"the newest complete set on {section_name} ({storage.name}) is {hours_text(age_hours)} old "
                            f"(set {manifest.set_id}, {limit}); check why the runs since then did not complete")
    return warnings
