"""The CLEANUP section as ``Rules``: the original's KEEP keys exactly, plus the new ones.

```json
"CLEANUP": {"BUCKET": "acme-backups", "PREFIX": "web1/",
            "KEEP": {"DAILY": {"NUMBER": "7"}, "WEEKLY": {"NUMBER": "2", "DAY": "1"},
                     "MONTHLY": {"NUMBER": "2", "DAY": "1"}}}
```
"""

from __future__ import annotations

from dataclasses import dataclass

from ncbackup.config.settings import Config, SectionSettings
from ncbackup.retention.rules import Rules

CLEANUP_SECTION = "CLEANUP"


@dataclass(frozen=True)
class Policy:
    rules: Rules
    bucket: str | None = None            # BUCKET: only the STORAGE sections writing to this bucket
    prefix: str | None = None            # PREFIX: ... and under this prefix
    section: SectionSettings | None = None


def cleanup_section(config: Config) -> SectionSettings | None:
    """The config's CLEANUP section (any case), if any."""
    return next((s for s in config.sections if s.name.upper() == CLEANUP_SECTION and s.action is None), None)


def policy_from_config(config: Config) -> Policy | None:
    """The config's retention policy (None without a CLEANUP section); ConfigError naming line and key when invalid."""
    raise NotImplementedError
