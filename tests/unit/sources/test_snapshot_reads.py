"""plan_reads: FILESET_EXCLUDE paths under a snapshot's live mount point are excluded in the snapshot too."""

from __future__ import annotations

from ncbackup.sources.files import SnapshotView, plan_reads


def test_excludes_under_the_live_mount_point_are_translated_to_the_snapshot(tmp_path):
    live, readable = tmp_path / "srv" / "data", tmp_path / "snap" / "x"
    live.mkdir(parents=True)
    view = SnapshotView("SNAPSHOT", label="lvm:vg0/x", mapping={live: readable})
    excludes = [f"{live}/cache/", str(live / "tmp" / "*.part"), f"{tmp_path}/srv/database", "*.log"]
    plan = plan_reads([live], excludes, [view])
    assert plan.roots == [(readable, live)]
    assert plan.excludes == [*excludes, str(readable / "cache"), str(readable / "tmp" / "*.part")]
