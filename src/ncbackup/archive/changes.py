"""The seam between the tar walk and incremental backups: which members the walk may leave out.

An incremental files stream stores only the members that are new or changed since its parent set; the
others are *carried*: the walk writes no tar member for them, only their index entry, which names the
set that holds their bytes (``IndexEntry.set``) and the member's offset in that set's stream. The
tracker (``incremental/``) decides from the local state what changed, and is told every member the walk
saw so it can write the next state.

A full stream has no tracker. The walk calls the tracker once per member, in walk order (pre-order,
children sorted by name: the order of ``walk_key``), so a tracker can merge-join its previous state
with the walk without holding either in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Carried:
    """An unchanged member: where its bytes are and what its index entry says."""

    set_id: str            # the set whose files stream holds the member
    kind: str              # as the index spells it: file, dir, symlink, hardlink
    offset: int            # where its header starts in that set's plain tar stream
    size: int
    link: bytes | None = None   # symlink target or hard link's first name, as stored in that set


class ChangeTracker(Protocol):
    def unchanged(self, name: bytes, info: os.stat_result, kind: str) -> Carried | None:
        """The member as stored before when it has not changed since (by size, mtime, ctime, inode,
        device and kind), else None: the walk then stores it and calls ``stored``."""
        ...

    def stored(self, name: bytes, info: os.stat_result, kind: str, offset: int, link: bytes | None) -> None:
        """The walk wrote this member into this set's stream at offset (its header's first byte)."""
        ...


def walk_key(name: str) -> str:
    """The sort key of a folder's children in the walk (one place, so state files and walks agree)."""
    return name
