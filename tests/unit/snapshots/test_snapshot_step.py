"""The engine's side: a snapshot's release is on the run's exit stack before take, so a half-made one is released."""

from __future__ import annotations

import json
import logging

from ncbackup.config import load_config
from ncbackup.engine.context import RunContext
from ncbackup.engine.plan import SnapshotStep, build_plan
from ncbackup.engine.result import RunResult
from ncbackup.engine.run import execute_plan
from ncbackup.errors import BackupError


class HalfTaken:
    """A take that dies halfway without cleaning up (as one killed by MAX_RUNTIME's watchdog might)."""

    name = "SNAPSHOT"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def check(self):
        return []

    def take(self):
        self.calls.append("take")
        raise BackupError("lvcreate was killed")

    def release(self) -> list[str]:
        self.calls.append("release")
        return ["could not remove vg0/x; the next run removes it"]

    def cleanup_leftovers(self) -> list[str]:
        self.calls.append("cleanup")
        return []


def test_a_take_that_fails_halfway_is_still_released_at_the_end_of_the_run(tmp_path):
    config_path = tmp_path / "conf.json"
    config_path.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log")},
        "SNAPSHOT": {"ACTION": "execute", "NAME": "snapshot",
                     "PARAMETERS": {"METHOD": "btrfs", "SOURCE": str(tmp_path / "www")}},
    }))
    config = load_config(config_path)
    plan = build_plan(config)
    (step,) = plan.steps
    assert isinstance(step, SnapshotStep)
    fake = HalfTaken()
    step.snapshot = fake
    result = RunResult(config_path=str(config_path), hostname="web1")
    execute_plan(plan, RunContext(config=config, result=result, logger=logging.getLogger("test")))
    assert fake.calls == ["cleanup", "take", "release"]
    assert result.steps[0].error == "lvcreate was killed"
    assert result.warnings == ["SNAPSHOT: could not remove vg0/x; the next run removes it"]
    assert step.view.label is None   # the FILESET sections after it are told it was not taken


class CloudLike:
    """A snapshot that maps no path (as the cloud methods): it only records its ids."""

    name = "SNAPSHOT"

    def check(self):
        return []

    def take(self):
        from ncbackup.snapshots.base import Taken

        return Taken(method="aws-ebs", ids=("snap-0abc", "snap-0def"))

    def release(self) -> list[str]:
        return []

    def cleanup_leftovers(self) -> list[str]:
        return []


def test_the_sets_written_after_a_snapshot_name_it_in_their_manifest_and_the_run_result(tmp_path):
    from ncbackup.engine.plan import DataStep
    from ncbackup.setformat import open_set
    from ncbackup.storage.local import LocalStorage
    from tests.support import ensure_signing_key, trust_of

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hello\n")
    config_path = tmp_path / "conf.json"
    config_path.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log")},
        "SNAPSHOT": {"ACTION": "execute", "NAME": "snapshot",
                     "PARAMETERS": {"METHOD": "btrfs", "SOURCE": str(tmp_path / "www")}},
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(tmp_path / "www")}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage",
                    "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": repr({"LOCAL_BACKUP": str(tmp_path / "b")})}},
    }))
    ensure_signing_key(tmp_path)
    config = load_config(config_path)
    plan = build_plan(config)
    snapshot_step = next(step for step in plan.steps if isinstance(step, SnapshotStep))
    snapshot_step.snapshot = CloudLike()
    result = RunResult(config_path=str(config_path), hostname="web1")
    execute_plan(plan, RunContext(config=config, result=result, logger=logging.getLogger("test")))
    data = next(step for step, plan_step in zip(result.steps, plan.steps, strict=True) if isinstance(plan_step, DataStep))
    assert data.error is None and data.set_id
    assert result.steps[0].snapshots == ["aws-ebs:snap-0abc", "aws-ebs:snap-0def"]
    manifest = open_set(LocalStorage(tmp_path / "b" / "web1"), data.set_id, trust_of(config_path)).manifest
    assert manifest.snapshots == ("aws-ebs:snap-0abc", "aws-ebs:snap-0def")
