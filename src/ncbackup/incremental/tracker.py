"""The change tracker of an incremental files stream: a merge-join of the previous state with the walk.

Both are in walk order (roots in order, then pre-order with children sorted by ``walk_key``), so one
cursor over the previous records answers every ``unchanged`` call, and the next state is written as the
walk goes. A member is unchanged when its kind, size, mtime, ctime, inode and device all match the
record of the same name (GNU tar's listed-incremental rule); a directory is carried like a file, and
the walk still descends into it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from ncbackup.archive.changes import Carried, walk_key
from ncbackup.archive.index import FILE, HARDLINK
from ncbackup.incremental.state import ROOT, Record, StateDamaged, StateInfo, StateWriter

log = logging.getLogger(__name__)

# The kinds a walk member may have been stored as: a regular file may have been a hard link's second name.
_SAME_KIND = {FILE: (FILE, HARDLINK)}


def walk_order_key(name: bytes) -> tuple[str, ...]:
    """Where a member name sorts within its root's walk (component by component, as the walk sorts them)."""
    return tuple(walk_key(os.fsdecode(part)) for part in name.split(b"/"))


class StateTracker:
    """``ChangeTracker`` over a previous state (or none: a full stream, which only records the next state)."""

    def __init__(
        self,
        writer: StateWriter,
        *,
        previous: StateInfo | None = None,
        records: Iterator[tuple[Record, bytes, bytes]] | None = None,
        check_device: bool = True,
    ) -> None:
        self._writer = writer
        self._sets = previous.sets if previous is not None else ()
        # This stream's own members: index of this set in the next state's table (the previous table, then it).
        self.own_set_index = len(self._sets)
        self._previous_roots = list(previous.roots) if previous is not None else []
        self._records = records if records is not None else iter(())
        self._check_device = check_device
        self._current: Record | None = None
        self._encoded = b""          # the current record's bytes in the previous state, and the name they follow
        self._before = b""
        self._current_key: tuple[str, ...] | None = None
        self._root_at = -1          # ordinal of the previous root whose records the cursor is in
        self._entered = -1          # ordinal of the previous root the walk entered last
        self._is_root_matched = False
        self.carried = 0
        self.stored_count = 0
        self._advance()

    def _advance(self) -> None:
        try:
            item = next(self._records, None)
        except StateDamaged as error:
            # Checked whole before the walk, so only a file changed under us gets here: the rest is stored again.
            log.warning("the previous state became unreadable during the walk (%s); the rest of the walk is stored", error)
            self._records = iter(())
            item = None
        current = None
        if item is not None:
            current, self._encoded, self._before = item
            if current.kind == ROOT:
                self._root_at += 1
        self._current = current
        self._current_key = None

    def begin_root(self, name: bytes) -> None:
        """The walk starts the root stored under this member name: move the cursor to its records, if any."""
        self._writer.add_root(name)
        try:
            ordinal = self._previous_roots.index(name, self._entered + 1)
        except ValueError:
            self._is_root_matched = False
            return
        # Skip what is left of earlier roots (gone from the walk) up to this root's marker, then past it.
        while self._current is not None and (self._current.kind != ROOT or self._root_at < ordinal):
            self._advance()
        self._is_root_matched = self._current is not None
        if self._is_root_matched:
            self._entered = ordinal
            self._advance()

    def _find(self, name: bytes) -> tuple[Record, bytes, bytes] | None:
        """The previous record of name (with its encoding), consuming the records before it (deleted since);
        None when it is new."""
        current = self._current
        if current is None or not self._is_root_matched:
            return None
        if current.name != name:
            key = walk_order_key(name)
            while current is not None and current.kind != ROOT:
                if self._current_key is None:
                    self._current_key = walk_order_key(current.name)
                if self._current_key >= key:
                    break
                self._advance()
                current = self._current
            if current is None or current.kind == ROOT or current.name != name:
                return None
        found = (current, self._encoded, self._before)
        self._advance()
        return found

    def unchanged(self, name: bytes, info: os.stat_result, kind: str) -> Carried | None:
        found = self._find(name)
        if found is None:
            return None
        record, encoded, before = found
        if (record.kind not in _SAME_KIND.get(kind, (kind,)) or record.size != info.st_size
                or record.mtime_ns != info.st_mtime_ns or record.ctime_ns != info.st_ctime_ns
                or record.ino != info.st_ino or (self._check_device and record.dev != info.st_dev)):
            return None
        if record.dev != info.st_dev:
            self._writer.add(record._replace(dev=info.st_dev))
        else:
            self._writer.add_encoded(record, encoded, before)
        self.carried += 1
        return Carried(set_id=self._sets[record.set_index], kind=record.kind, offset=record.offset,
                       size=record.size if record.kind == FILE else 0, link=record.link)

    def stored(self, name: bytes, info: os.stat_result, kind: str, offset: int, link: bytes | None) -> None:
        self._writer.add(Record(name, kind, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev,
                                self.own_set_index, offset, link))
        self.stored_count += 1
