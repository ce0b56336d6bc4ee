"""Retention as a user meets it: nightly `ncbackup run`s over simulated weeks (the real CLI under the `faketime`
Debian package), then `ncbackup prune` with the original's CLEANUP/KEEP keys, on local storage, moto S3 and
OpenSSH sftp; `list` then shows exactly the sets docs/retention.md says, and every kept set restores."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.test_report_schema import VALIDATOR
from tests.integration.servers.s3 import moto_server, s3_env  # noqa: F401 - fixtures
from tests.integration.servers.sshd import ssh_client_key, sshd  # noqa: F401 - fixtures
from tests.support import ensure_signing_key, need_binary

ZONE = "Europe/Paris"
# Mon 2 Nov .. Tue 24 Nov 2026, one run a night at 03:00 Paris time; Monday 16 Nov's run did not happen.
NIGHTS = [date(2026, 11, 2) + timedelta(days=n) for n in range(23) if date(2026, 11, 2) + timedelta(days=n) != date(2026, 11, 16)]
KEEP = {"DAILY": {"NUMBER": "3"}, "WEEKLY": {"NUMBER": "3", "DAY": "1"}}
# docs/retention.md: DAILY 3 = the last 3 days with a set (24, 23, 22); WEEKLY 3 DAY 1 = the first set on or after
# Monday of each of the last 3 weeks with one: Mon 23, Tue 17 (Monday 16 failed), Mon 9.
KEPT_NIGHTS = {date(2026, 11, 24), date(2026, 11, 23), date(2026, 11, 22), date(2026, 11, 17), date(2026, 11, 9)}


@dataclass
class Site:
    root: Path
    data: Path
    key: Path
    command: list[str]

    def config(self, storages: dict, *, cleanup: dict | None = None, name: str = "conf.json") -> Path:
        sections: dict = {
            "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(self.root / "work"), "LOG_FOLDER": str(self.root / "log"),
                        "HOME_FOLDER": str(self.root)},
            "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(self.data)}},
            "COMPRESSION": {"ACTION": "execute", "NAME": "compression", "PARAMETERS": {}},
            "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(self.key)}},
            **storages,
        }
        if cleanup is not None:
            sections["CLEANUP"] = cleanup
        path = self.root / name
        path.write_text(json.dumps(sections, indent=2))
        return path

    def cli(self, *args: str, at: datetime | None = None) -> subprocess.CompletedProcess:
        """The CLI as cron starts it, in the Paris zone; at: the wall-clock time it believes it is (faketime)."""
        clock = [need_binary("faketime"), at.strftime("%Y-%m-%d %H:%M:%S")] if at is not None else []
        return subprocess.run([*clock, *self.command, *args], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "TZ": ZONE})

    def night(self, config: Path, night: date, *extra: str) -> subprocess.CompletedProcess:
        """That night's data (a file naming the night), then that night's run at 03:00."""
        (self.data / "night.txt").write_text(f"backup of the night of {night.isoformat()}\n")
        return self.cli("run", "-c", str(config), "--json", *extra,
                        at=datetime.combine(night, datetime.min.time()).replace(hour=3))


@pytest.fixture
def site(tmp_path, ncbackup_cmd) -> Site:
    root = tmp_path / "site"
    data = root / "data"
    (data / "etc").mkdir(parents=True)
    (data / "etc" / "app.conf").write_text("setting = 1\n" * 20)
    key = root / "key.txt"
    made = subprocess.run([*ncbackup_cmd, "keygen", "--output", str(key)], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    ensure_signing_key(root)       # the default SIGNING_KEY beside KEY_FILE: runs exit 0, not 1
    return Site(root=root, data=data, key=key, command=ncbackup_cmd)


def _storage(destination: str, args: dict, **parameters) -> dict:
    return {"ACTION": "execute", "NAME": "storage",
            "PARAMETERS": {"DESTINATION": destination, "ARGS_DICT": repr(args), **parameters}}


def _night_of(set_id: str) -> date:
    utc = datetime.strptime(set_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=ZoneInfo("UTC"))
    return utc.astimezone(ZoneInfo(ZONE)).date()


def _listed(site: Site, config: Path) -> list[dict]:
    listed = site.cli("list", "-c", str(config), "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


@pytest.fixture(params=["local", "s3", "sftp"])
def storage_section(request, tmp_path) -> dict:
    if request.param == "local":
        return _storage("local", {"LOCAL_BACKUP": str(tmp_path / "backups")})
    if request.param == "s3":
        server = request.getfixturevalue("s3_env")
        server.client().create_bucket(Bucket="backups")
        return _storage("s3", {"BUCKET": "backups", "ENDPOINT_URL": server.endpoint_url, "REGION": "us-east-1"})
    from tests.integration.storage.test_sftp import ssh_args

    server = request.getfixturevalue("sshd")
    remote = tmp_path / "remote"
    remote.mkdir()
    return _storage("sftp", ssh_args(server, remote))


@pytest.mark.timeout(900)
def test_weeks_of_nightly_runs_then_prune_keeps_exactly_the_documented_sets_and_each_restores(
    site: Site, storage_section: dict, tmp_path,
) -> None:
    plain = site.config({"STORAGE": storage_section})
    for night in NIGHTS:
        ran = site.night(plain, night)
        after_a_skipped_night = night - timedelta(days=1) not in NIGHTS and night != NIGHTS[0]
        # The run after a skipped night finds the newest complete set 48 h old: ALERT_AFTER_HOURS warns (exit 1).
        assert ran.returncode == (1 if after_a_skipped_night else 0), ran.stdout + ran.stderr
        assert ("ALERT_AFTER_HOURS" in ran.stdout) == after_a_skipped_night, ran.stdout
    made = {_night_of(item["set_id"]): item["set_id"] for item in _listed(site, plain)}
    assert sorted(made) == NIGHTS
    expected = sorted(made[night] for night in KEPT_NIGHTS)
    with_cleanup = site.config({"STORAGE": storage_section}, cleanup={"KEEP": KEEP}, name="cleanup.json")
    after_last_night = datetime(2026, 11, 24, 9, 0)

    dry = site.cli("prune", "-c", str(with_cleanup), "--dry-run", at=after_last_night)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "days counted in CET (UTC+01:00)" in dry.stdout      # the local zone (TZ) and its offset
    tuesday = next(line for line in dry.stdout.splitlines() if made[date(2026, 11, 17)] in line)
    assert "keep" in tuesday and "weekly 2/3" in tuesday           # Monday 16 failed: Tuesday stands for the week
    assert "would remove 17 sets" in dry.stdout and "nothing was removed" in dry.stdout
    assert len(_listed(site, plain)) == len(NIGHTS)

    pruned = site.cli("prune", "-c", str(with_cleanup), "--json", at=after_last_night)
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    (report,) = json.loads(pruned.stdout)["storages"]
    assert sorted(report["removed"]) == sorted(set(made.values()) - set(expected))
    assert report["freed_bytes"] > 0 and report["warnings"] == [] and report["time_zone"] == "CET (UTC+01:00)"
    reasons = {item["set_id"]: item["reasons"] for item in report["sets"]}
    assert "newest complete" in reasons[made[date(2026, 11, 24)]]

    listed = _listed(site, plain)
    assert [item["set_id"] for item in listed] == expected
    assert all(item["status"] == "complete" for item in listed)
    again = site.cli("prune", "-c", str(with_cleanup), "--json", at=after_last_night)
    assert json.loads(again.stdout)["storages"][0]["removed"] == []        # pruning twice removes nothing more

    for set_id in expected:
        target = tmp_path / "restored" / set_id
        restored = site.cli("restore", "-c", str(plain), "--set", set_id, "--target", str(target))
        assert restored.returncode == 0, restored.stdout + restored.stderr
        night_file = target / str(site.data).lstrip("/") / "night.txt"
        assert night_file.read_text() == f"backup of the night of {_night_of(set_id).isoformat()}\n"


def test_a_run_with_cleanup_prunes_after_its_set_and_a_failed_run_does_not(site: Site, tmp_path) -> None:
    storage = {"STORAGE": _storage("local", {"LOCAL_BACKUP": str(tmp_path / "backups")})}
    plain = site.config(storage)
    for night in (date(2026, 11, 2), date(2026, 11, 3)):
        assert site.night(plain, night).returncode == 0
    # A source that fails: the set is partial, the step fails, and nothing is pruned.
    failing = site.config({**storage}, cleanup={"KEEP": {"DAILY": {"NUMBER": "1"}}}, name="failing.json")
    spec = json.loads(failing.read_text())
    spec["FILESET"]["PARAMETERS"]["FILESET_INCLUDE"] = str(tmp_path / "gone")
    failing.write_text(json.dumps(spec))
    failed = site.night(failing, date(2026, 11, 4))
    assert failed.returncode == 2, failed.stdout + failed.stderr
    step = json.loads(failed.stdout)["steps"][0]
    assert step["pruned"] == [] and "no prune: the backup set failed" in step["notes"]
    assert len(_listed(site, plain)) == 3

    daily = site.config(storage, cleanup={"KEEP": {"DAILY": {"NUMBER": "1"}}}, name="daily.json")
    good = site.night(daily, date(2026, 11, 5), "-l", "INFO")
    assert good.returncode == 0, good.stdout + good.stderr
    report = json.loads(good.stdout)
    VALIDATOR.validate(report)                 # docs/report.schema.json knows steps[].pruned
    (pruned,) = report["steps"][0]["pruned"]
    newest = report["steps"][0]["set_id"]
    assert pruned["kept"] == [newest] and len(pruned["removed"]) == 3 and pruned["freed_bytes"] > 0
    assert [item["set_id"] for item in _listed(site, plain)] == [newest]
    # One summary line per storage in the log and in the run's summary.
    assert f"pruned local:{tmp_path / 'backups' / 'web1'}: removed 3 sets" in good.stderr
    assert "pruned local:" in good.stderr.split("ncbackup run of")[-1]


def test_legacy_storage_actions_list_and_remove_work_in_a_run(site: Site, tmp_path) -> None:
    """The original's cleanup config: only STORAGE sections with ACTION list / remove, and CLEANUP."""
    args = {"LOCAL_BACKUP": str(tmp_path / "backups")}
    plain = site.config({"STORAGE": _storage("local", args)})
    nights = [date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4), date(2026, 11, 5)]
    for night in nights:
        assert site.night(plain, night).returncode == 0
    spec = json.loads(site.config({
        "STORAGE_LIST": _storage("local", args, ACTION="list"),
        "STORAGE_REMOVE": _storage("local", args, ACTION="remove"),
    }, cleanup={"KEEP": {"DAILY": {"NUMBER": "2"}}}).read_text())
    for data_section in ("FILESET", "COMPRESSION", "ENCRYPTION"):
        del spec[data_section]
    legacy = site.root / "legacy.json"
    legacy.write_text(json.dumps(spec))
    ran = site.cli("run", "-c", str(legacy), "--json", at=datetime(2026, 11, 5, 9, 0))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    steps = {step["name"]: step for step in json.loads(ran.stdout)["steps"]}
    assert list(steps) == ["STORAGE_LIST", "STORAGE_REMOVE"]
    assert steps["STORAGE_LIST"]["kind"] == "list" and "4 set(s)" in steps["STORAGE_LIST"]["notes"][0]
    assert steps["STORAGE_REMOVE"]["kind"] == "prune" and len(steps["STORAGE_REMOVE"]["pruned"][0]["removed"]) == 2
    assert [_night_of(item["set_id"]) for item in _listed(site, plain)] == nights[2:]

    # Without CLEANUP, ACTION remove is a config error naming the section (exit 3, nothing runs).
    del spec["CLEANUP"]
    legacy.write_text(json.dumps(spec))
    refused = site.cli("run", "-c", str(legacy))
    assert refused.returncode == 3 and "STORAGE_REMOVE" in refused.stdout + refused.stderr
    assert len(_listed(site, plain)) == 2


def test_prune_without_cleanup_is_one_sentence_and_exit_3(site: Site, tmp_path) -> None:
    plain = site.config({"STORAGE": _storage("local", {"LOCAL_BACKUP": str(tmp_path / "backups")})})
    result = site.cli("prune", "-c", str(plain))
    assert result.returncode == 3
    assert result.stderr.count("ncbackup: error:") == 1 and "no CLEANUP section" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_standalone_prune_keeps_incomplete_sets_while_a_run_holds_the_lock(site: Site, tmp_path) -> None:
    from ncbackup.engine.lock import lock_file_path, single_instance

    backups = tmp_path / "backups"
    config = site.config({"STORAGE": _storage("local", {"LOCAL_BACKUP": str(backups)})},
                         cleanup={"KEEP": {"DAILY": {"NUMBER": "7"}}})
    for night in (date(2026, 11, 2), date(2026, 11, 3)):
        assert site.night(config, night).returncode == 0
    unfinished = backups / "web1" / "20261101T020000Z"          # a run that died two days earlier: parts only
    unfinished.mkdir()
    (unfinished / "files.tar.zst.age.000").write_bytes(b"half a part")
    later = datetime(2026, 11, 3, 9, 0)

    (site.root / "work").mkdir(exist_ok=True)
    with single_instance(lock_file_path(site.root / "work")):
        held = site.cli("prune", "-c", str(config), "--json", at=later)
        text = site.cli("prune", "-c", str(config), "--dry-run", at=later)
    assert held.returncode == 0, held.stdout + held.stderr
    report = json.loads(held.stdout)
    assert report["lock_held"] is True and report["storages"][0]["removed"] == []
    (decision,) = [item for item in report["storages"][0]["sets"] if item["set_id"] == unfinished.name]
    assert decision["keep"] and decision["kind"] == "incomplete" and "lock" in "; ".join(decision["reasons"])
    assert "a run holds the lock" in text.stdout and unfinished.exists()

    free = site.cli("prune", "-c", str(config), "--json", at=later)
    assert free.returncode == 0, free.stdout + free.stderr
    assert json.loads(free.stdout)["storages"][0]["removed"] == [unfinished.name] and not unfinished.exists()


def test_a_storage_that_cannot_be_listed_is_exit_2_and_the_others_are_still_pruned(site: Site, tmp_path) -> None:
    local = _storage("local", {"LOCAL_BACKUP": str(tmp_path / "backups")})
    plain = site.config({"STORAGE": local})
    for night in (date(2026, 11, 2), date(2026, 11, 3)):
        assert site.night(plain, night).returncode == 0
    config = site.config({
        "STORAGE_DOWN": _storage("s3", {"BUCKET": "backups", "ENDPOINT_URL": "http://127.0.0.1:9", "REGION": "us-east-1",
                                        "MAX_ATTEMPTS": "1"}),
        "STORAGE": local,
    }, cleanup={"KEEP": {"LAST": "1"}}, name="down.json")
    result = site.cli("prune", "-c", str(config), at=datetime(2026, 11, 3, 9, 0))
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ncbackup: error:")]
    assert len(errors) == 1 and "STORAGE_DOWN" in errors[0] and "Traceback" not in result.stderr
    assert "removed 1 set," in result.stdout and len(_listed(site, plain)) == 1


def test_on_an_object_lock_bucket_prune_keeps_locked_sets_saying_so_and_removes_them_once_the_lock_expires(
    site: Site, s3_env, tmp_path,  # noqa: F811 - fixture
) -> None:
    """Backups into a bucket with Object Lock (OBJECT_LOCK_DAYS 2); prune right after keeps the older sets
    because of the lock and says until when; a prune three days later (faketime) removes them, and the kept
    set still restores."""
    s3_env.client().create_bucket(Bucket="prune-locked", ObjectLockEnabledForBucket=True)
    storage = {"STORAGE": _storage("s3", {"BUCKET": "prune-locked", "ENDPOINT_URL": s3_env.endpoint_url,
                                          "REGION": "us-east-1", "OBJECT_LOCK_DAYS": "2"})}
    plain = site.config(storage)
    for run in range(3):
        if run:
            time.sleep(1.1)   # one set a second: the guard does not count two sets of the same second as older/newer
        ran = site.cli("run", "-c", str(plain))
        assert ran.returncode == 0, ran.stdout + ran.stderr
    made = [item["set_id"] for item in _listed(site, plain)]
    assert len(made) == 3
    head = s3_env.client().head_object(Bucket="prune-locked", Key=f"web1/{made[0]}/manifest.json")
    assert head["ObjectLockMode"] == "GOVERNANCE"

    last_only = site.config(storage, cleanup={"KEEP": {"LAST": "1"}}, name="last.json")
    locked = site.cli("prune", "-c", str(last_only), "--json")
    assert locked.returncode == 0, locked.stdout + locked.stderr
    (report,) = json.loads(locked.stdout)["storages"]
    assert report["removed"] == []
    reasons = {item["set_id"]: item["reasons"] for item in report["sets"]}
    for set_id in made[:2]:
        assert any(reason.startswith("object lock until ") for reason in reasons[set_id]), reasons[set_id]
    text = site.cli("prune", "-c", str(last_only), "--dry-run")
    assert "object lock until" in text.stdout

    later = datetime.now() + timedelta(days=3)
    expired = site.cli("prune", "-c", str(last_only), "--json", at=later)
    assert expired.returncode == 0, expired.stdout + expired.stderr
    (report,) = json.loads(expired.stdout)["storages"]
    assert sorted(report["removed"]) == sorted(made[:2])
    assert [item["set_id"] for item in _listed(site, plain)] == [made[2]]
    target = tmp_path / "restored"
    restored = site.cli("restore", "-c", str(plain), "--latest", "--target", str(target))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert (target / str(site.data).lstrip("/") / "etc" / "app.conf").read_text() == "setting = 1\n" * 20
