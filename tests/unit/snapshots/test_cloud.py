"""What every cloud method shares, as data: names, rotation choices, common PARAMETERS."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.errors import ConfigError
from ncbackup.snapshots._cloud import FAILED, READY, CloudSnapshot, name_prefix, to_rotate
from ncbackup.snapshots.aliyun_ecs import AliyunEcsSnapshot

PREFIX = "ncbackup-web1-nightly-"
START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def snapshot(number: int, *, source: str = "vol-1", name: str | None = None, state: str = READY) -> CloudSnapshot:
    return CloudSnapshot(id=f"snap-{number}", name=name or f"{PREFIX}{number}", source=source,
                         created=START + timedelta(days=number), state=state)


def ids(snapshots: list[CloudSnapshot]) -> set[str]:
    return {item.id for item in snapshots}


def test_name_prefix_carries_host_and_config_in_safe_words():
    prefix = name_prefix("Web_1.example.com", Path("/etc/ncbackup/Nightly Run.json"), "EBS")
    assert re.fullmatch(r"ncbackup-web-1-example-com-[0-9a-f]{8}-", prefix)
    # The tag stands for the config and the section: another section of the same config names differently.
    assert name_prefix("Web_1.example.com", Path("/etc/ncbackup/Nightly Run.json"), "EBS2") != prefix


def test_rotation_keeps_the_newest_per_source():
    found = [snapshot(n) for n in range(5)] + [snapshot(10 + n, source="vol-2") for n in range(2)]
    assert ids(to_rotate(found, prefix=PREFIX, keep=2, protected=frozenset())) == {"snap-0", "snap-1", "snap-2"}


def test_rotation_never_touches_another_name_or_a_protected_id():
    found = [snapshot(n) for n in range(3)] + [snapshot(9, name="manual-backup"), snapshot(8, name="ncbackup-web1-weekly-1")]
    assert ids(to_rotate(found, prefix=PREFIX, keep=1, protected=frozenset({"snap-0"}))) == {"snap-1"}


def test_failed_snapshots_count_like_the_others_in_rotation():
    found = [snapshot(0), snapshot(1, state=FAILED)]
    assert ids(to_rotate(found, prefix=PREFIX, keep=1, protected=frozenset())) == {"snap-0"}


def build(tmp_path: Path, **parameters: str) -> AliyunEcsSnapshot:
    values = {"METHOD": "aliyun-ecs", "REGION": "cn-hangzhou", "DISK_IDS": "d-1", **parameters}
    section = SectionSettings(name="SNAP", action="execute", module="snapshot", parameters=values)
    return AliyunEcsSnapshot.from_section(section, GeneralSettings(hostname="web1", work_folder=tmp_path),
                                          config_path=tmp_path / "nightly.json")


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("90s", 90.0), ("30m", 1800.0), ("45", 45.0)])
def test_wait_seconds_takes_zero_and_durations(tmp_path, value, seconds):
    assert build(tmp_path, WAIT_SECONDS=value).options.wait_seconds == seconds


@pytest.mark.parametrize(("parameters", "expected"), [
    ({"WAIT_SECONDS": "soon"}, "SNAP.WAIT_SECONDS"),
    ({"KEEP": "0"}, "SNAP.KEEP"),
    ({"ACCESS_KEY_SECRET": "s3cr3t-value"}, "ACCESS_KEY_SECRET holds a secret"),
])
def test_bad_parameters_are_one_config_error(tmp_path, parameters, expected):
    with pytest.raises(ConfigError) as caught:
        build(tmp_path, **parameters)
    assert expected in str(caught.value) and "s3cr3t-value" not in str(caught.value) and "\n" not in str(caught.value)


def test_freeze_wraps_the_snapshot_requests_and_always_thaws(tmp_path, monkeypatch):
    """FREEZE: fsfreeze (a stand-in that records its calls) is frozen before the first request and thawed after the
    last, also when a request fails."""
    import sys

    from ncbackup.errors import BackupError
    from tests.unit.snapshots import standins

    folder = standins.install(tmp_path / "bin", sys.executable)
    log = tmp_path / "calls.jsonl"
    for key, value in standins.environment(folder, log).items():
        monkeypatch.setenv(key, value)
    method = build(tmp_path, DISK_IDS="d-1 d-2", FREEZE=str(tmp_path / "live"), WAIT_SECONDS="0")
    events: list[str] = []

    def create(source: str, *, snapshot_name: str) -> str:
        events.append(f"create {source} after {len(standins.calls(log))} call(s)")
        if source == "d-2" and fail:
            raise BackupError("quota exceeded")
        return f"s-{source}"

    monkeypatch.setattr(method, "create", create)
    monkeypatch.setattr(method, "delete", lambda snapshot_id: None)
    for fail in (False, True):
        events.clear()
        log.write_text("")
        if fail:
            with pytest.raises(BackupError, match="quota exceeded"):
                method.take()
        else:
            assert method.take().ids == ("s-d-1", "s-d-2")
        calls = standins.calls(log)
        assert calls == [["fsfreeze", "--freeze", str(tmp_path / "live")], ["fsfreeze", "--unfreeze", str(tmp_path / "live")]]
        assert events == ["create d-1 after 1 call(s)", "create d-2 after 1 call(s)"]   # both while frozen
