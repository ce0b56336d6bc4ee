"""Retention: which backup sets to keep, and removing the others (ARCHITECTURE.md section 7).

- ``policy``: the CLEANUP section (legacy KEEP keys and the new ones) parsed into ``Rules``.
- ``rules``: the pure rule engine: sets + rules + now -> one ``Decision`` per set, with its reasons.
  No storage, no clock, no I/O: property-tested on its own.
- ``prune``: lists a storage, feeds the engine, and removes what it decided, signature and manifest first.

``ncbackup prune`` and a run's cleanup after a completed set both go through ``prune.prune_storage``.
The exact semantics are written down in docs/retention.md.
"""
