"""GENERAL MAX_RUNTIME stops a run: the running step is interrupted (its programs killed, or the pipeline stopped
at its next write), the remaining steps are skipped, no set is marked complete, undo commands still run, the run
fails naming MAX_RUNTIME and the notifiers still get the result. Real runs into real local storage."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs

from ncbackup.commands.run import run_config
from ncbackup.config import load_config
from ncbackup.engine.result import Status
from ncbackup.exitcodes import EXIT_FAILED
from ncbackup.setformat import list_sets
from ncbackup.storage.local import LocalStorage
from tests.support import ensure_signing_key, trust_of


def _config(tmp_path: Path, sections: dict, *, max_runtime: str, report_url: str | None = None) -> Path:
    ensure_signing_key(tmp_path)
    general = {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOCAL_BACKUP": str(tmp_path / "backups"),
               "MAX_RUNTIME": max_runtime}
    if report_url is not None:
        general["MESSAGE_CONFIG_COMMAND"] = report_url
    path = tmp_path / "conf.json"
    path.write_text(json.dumps({"GENERAL": general, **sections}))
    return path


def _snapshot(tmp_path: Path) -> tuple[dict, Path]:
    mounted = tmp_path / "mounted"
    return {"ACTION": "execute", "NAME": "rsync", "PARAMETERS": {
        "ORIGIN_AND_TARGETS_PARAMS": {"create": f"mkdir {mounted}"},
        "UNDO_COMMANDS": {"remove": f"rmdir {mounted}"}}}, mounted


def _fileset(data: Path) -> dict:
    return {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}}


STORAGE = {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}}


class _Receiver(BaseHTTPRequestHandler):
    reports: ClassVar[list[dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        _Receiver.reports.append({key: values[0] for key, values in parse_qs(body).items()})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_hanging_command_is_killed_later_steps_skipped_undo_runs_and_the_report_is_sent(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n")
    snapshot, mounted = _snapshot(tmp_path)
    hang = {"ACTION": "execute", "NAME": "rsync", "PARAMETERS": {"ORIGIN_AND_TARGETS_PARAMS": {"wait": "sleep 600"}}}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.reports.clear()
    try:
        path = _config(tmp_path, {"SNAPSHOT": snapshot, "HANG": hang, "FILESET": _fileset(data), "STORAGE": STORAGE},
                       max_runtime="2", report_url=f"http://127.0.0.1:{server.server_address[1]}/report")
        started = time.monotonic()
        result = run_config(load_config(path), level="CRITICAL")
        elapsed = time.monotonic() - started
    finally:
        server.shutdown()
    assert elapsed < 30, elapsed                      # not the 600 s the command would sleep
    assert [step.status for step in result.steps] == [Status.OK, Status.FAILED, Status.SKIPPED]
    assert result.steps[1].error.startswith("interrupted by MAX_RUNTIME")
    assert "skipped: the run exceeded GENERAL MAX_RUNTIME" in result.steps[2].notes
    assert "MAX_RUNTIME (2 s)" in result.error and result.exit_status == EXIT_FAILED
    assert not mounted.exists()                        # the undo command ran after the watchdog stopped
    assert list_sets(LocalStorage(tmp_path / "backups" / "web1"), trust_of(path)) == []
    (report,) = _Receiver.reports
    assert report["result"] != "success" and "MAX_RUNTIME" in report["error"], report


def test_a_backup_set_being_written_is_stopped_and_never_marked_complete(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with open(data / "huge.img", "wb") as sparse:     # 200 GB of zeros that take no disk: minutes to archive
        sparse.truncate(200 << 30)
    snapshot, mounted = _snapshot(tmp_path)
    path = _config(tmp_path, {"SNAPSHOT": snapshot, "FILESET": _fileset(data), "STORAGE": STORAGE}, max_runtime="3")
    started = time.monotonic()
    result = run_config(load_config(path), level="CRITICAL")
    assert time.monotonic() - started < 60
    backup = result.steps[1]
    assert backup.status == Status.FAILED and "MAX_RUNTIME" in backup.error, backup.error
    assert "MAX_RUNTIME (3 s)" in result.error and result.exit_status == EXIT_FAILED
    assert not mounted.exists()
    storage = LocalStorage(tmp_path / "backups" / "web1")
    assert all(not info.is_complete for info in list_sets(storage, trust_of(path)))
    assert not any(info.key.endswith(("manifest.json", "manifest.json.minisig")) for info in storage.list())


def test_a_run_within_max_runtime_is_untouched(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n")
    path = _config(tmp_path, {"FILESET": _fileset(data), "STORAGE": STORAGE}, max_runtime="1h")
    result = run_config(load_config(path), level="CRITICAL")
    assert result.error is None
    (info,) = list_sets(LocalStorage(tmp_path / "backups" / "web1"), trust_of(path))
    assert info.is_complete
