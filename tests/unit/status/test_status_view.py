"""``ncbackup status`` on real local storage: per-host freshness, size trend, problems and signature states, the
ALERT_AFTER_HOURS flag, --all-hosts over host folders (a hostile folder name included), and the three outputs
(text, JSON, HTML parsed with html.parser; rendered by headless chromium when it is installed)."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bench.fleet import write_fake_set
from ncbackup.cli import main as cli_main
from ncbackup.signing import read_secret_key, write_signing_key
from ncbackup.storage.local import LocalStorage
from tests.support import ensure_signing_key, need_binary

HOSTILE = '<img src=x onerror="alert(1)">&amp;'
NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _fresh_now():
    """NOW as each test starts, not as the module was collected (minutes earlier in a full suite run)."""
    global NOW
    NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _config(tmp_path: Path, *, alert_after_hours: float | None = None) -> Path:
    general = {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOCAL_BACKUP": str(tmp_path / "backups")}
    if alert_after_hours is not None:
        general["ALERT_AFTER_HOURS"] = alert_after_hours
    ensure_signing_key(tmp_path)
    path = tmp_path / "conf.json"
    path.write_text(json.dumps({"GENERAL": general, "STORAGE": {"ACTION": "execute", "NAME": "storage",
                                                               "PARAMETERS": {"DESTINATION": "local"}}}))
    return path


def _host(tmp_path: Path, name: str) -> LocalStorage:
    return LocalStorage(tmp_path / "backups" / name)


@pytest.fixture
def fleet(tmp_path: Path) -> dict:
    """web1: 9 daily sets growing, the newest partial; db1: fresh but its last set unfinished; old1: 3 days old;
    other: signed by a key the config does not trust; a hostile folder holding web1's manifest."""
    config = _config(tmp_path)
    own = read_secret_key(tmp_path / "signing.key")
    web1 = _host(tmp_path, "web1")
    for day in range(9, 0, -1):
        write_fake_set(web1, own, host="web1", moment=NOW - timedelta(days=day, hours=1), size_bytes=1000 + (9 - day) * 100)
    write_fake_set(web1, own, host="web1", moment=NOW - timedelta(hours=2), size_bytes=2000, is_failed=True)
    db1 = _host(tmp_path, "db1")
    write_fake_set(db1, own, host="db1", moment=NOW - timedelta(hours=3), size_bytes=500)
    unfinished = NOW - timedelta(hours=1)
    (db1.base / unfinished.strftime("%Y%m%dT%H%M%SZ")).mkdir()
    (db1.base / unfinished.strftime("%Y%m%dT%H%M%SZ") / "files.tar.zst.age.000").write_bytes(b"x" * 10)
    write_fake_set(_host(tmp_path, "old1"), own, host="old1", moment=NOW - timedelta(days=3), size_bytes=700)
    stranger = write_signing_key(tmp_path / "stranger.key")
    write_fake_set(_host(tmp_path, "other"), stranger, host="other", moment=NOW - timedelta(hours=5), size_bytes=800)
    write_fake_set(_host(tmp_path, HOSTILE), own, host="web1", moment=NOW - timedelta(hours=4), size_bytes=900)
    return {"config": config, "stranger": tmp_path / "stranger.key.pub"}


def _status(capsys, *args: str) -> tuple[int, str, str]:
    code = cli_main(["status", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_status_of_this_host_shows_newest_complete_set_age_size_trend_and_last_problem(fleet, capsys):
    code, out, _ = _status(capsys, "-c", str(fleet["config"]), "--json")
    assert code == 0
    (web1,) = json.loads(out)["hosts"]
    assert web1["host"] == "web1" and web1["sets"] == 10
    assert web1["newest_complete"]["size_bytes"] == 2000          # partial sets are restorable: they count
    assert 1.9 < web1["age_hours"] < 2.1
    assert web1["recent_sizes_bytes"] == [1300, 1400, 1500, 1600, 1700, 1800, 2000]
    assert web1["trend_percent"] == pytest.approx((2000 - 1300) * 100 / 1300, abs=0.1)
    # The newest 7 sets are opened and verified; the 3 older ones are only counted from the listing...
    assert (web1["states"]["complete"], web1["states"]["partial"], web1["states"]["unverified"]) == (6, 1, 3)
    assert web1["last_problem"]["state"] == "partial" and "files" in web1["last_problem"]["reason"]
    assert web1["is_stale"] is False
    # ...unless asked to verify them all.
    _, out, _ = _status(capsys, "-c", str(fleet["config"]), "--json", "--verify-all")
    (web1,) = json.loads(out)["hosts"]
    assert (web1["states"]["complete"], web1["states"]["partial"], web1["states"]["unverified"]) == (9, 1, 0)


def test_an_older_complete_set_is_found_when_the_newest_sets_are_not_usable(tmp_path, capsys):
    config = _config(tmp_path)
    own = read_secret_key(tmp_path / "signing.key")
    stranger = write_signing_key(tmp_path / "stranger.key")
    web1 = _host(tmp_path, "web1")
    write_fake_set(web1, own, host="web1", moment=NOW - timedelta(days=20), size_bytes=100)
    for day in range(10, 0, -1):    # ten newer sets signed by a key nobody trusts
        write_fake_set(web1, stranger, host="web1", moment=NOW - timedelta(days=day), size_bytes=100)
    _, out, _ = _status(capsys, "-c", str(config), "--json")
    (web1,) = json.loads(out)["hosts"]
    assert web1["newest_complete"]["set_id"] == (NOW - timedelta(days=20)).strftime("%Y%m%dT%H%M%SZ")
    assert web1["states"]["untrusted"] == 10 and web1["is_stale"] is True


def test_all_hosts_flags_old_untrusted_and_foreign_hosts_in_text(fleet, capsys):
    code, out, _ = _status(capsys, "-c", str(fleet["config"]), "--all-hosts")
    assert code == 1, out                                 # a flagged host: exit status 1 (warnings)
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line and not line.startswith(" ")}
    assert rows["web1"].endswith("ok") and rows["db1"].endswith("ok")
    assert "OLDER THAN 26 h" in rows["old1"]
    assert "NO COMPLETE SET" in rows["other"] and "untrusted:1" in rows["other"]
    assert "db1: last incomplete set" in out
    hostile_rows = [line for line in out.splitlines() if line.startswith("<img")]
    assert hostile_rows and "wrong-host:1" in hostile_rows[0] and "NO COMPLETE SET" in hostile_rows[0]


def test_trust_signer_makes_another_hosts_sets_count(fleet, capsys):
    code, out, _ = _status(capsys, "-c", str(fleet["config"]), "--all-hosts", "--json",
                           "--trust-signer", str(fleet["stranger"]))
    hosts = {host["host"]: host for host in json.loads(out)["hosts"]}
    assert hosts["other"]["states"]["complete"] == 1 and hosts["other"]["is_stale"] is False
    assert hosts[HOSTILE]["states"]["wrong-host"] == 1 and hosts[HOSTILE]["newest_complete"] is None
    assert code == 1  # old1 and the hostile folder are still flagged


def test_alert_after_hours_from_general_moves_the_flag(tmp_path, fleet, capsys):
    _config(tmp_path, alert_after_hours=100)
    _, out, _ = _status(capsys, "-c", str(fleet["config"]), "--all-hosts", "--json")
    hosts = {host["host"]: host for host in json.loads(out)["hosts"]}
    assert hosts["old1"]["is_stale"] is False and json.loads(out)["alert_after_hours"] == 100


class _Page(HTMLParser):
    """The table rows (cells as text), the classes of the rows, tags and attributes seen."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.row_classes: list[str] = []
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.extend(attrs)
        if tag == "tr":
            self.rows.append([])
            self.row_classes.append(dict(attrs).get("class") or "")
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("\n".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_html_page_is_self_contained_with_rows_flags_charts_and_escaped_names(fleet, capsys, tmp_path):
    page_path = tmp_path / "status.html"
    _status(capsys, "-c", str(fleet["config"]), "--all-hosts", "--html", str(page_path))
    text = page_path.read_text()
    page = _Page()
    page.feed(text)
    body = {row[0].splitlines()[0]: (row, cls) for row, cls in zip(page.rows[1:], page.row_classes[1:], strict=True)}
    assert set(body) == {"web1", "db1", "old1", "other", HOSTILE}   # the hostile name comes back as text...
    assert "img" not in page.tags and "script" not in page.tags      # ...never as markup
    assert all(name not in ("onerror", "src", "href") for name, _ in page.attributes)
    assert body["old1"][1] == "stale" and body["old1"][0][-1] == "OLDER THAN 26 h"
    assert body["web1"][1] == "ok" and body["web1"][0][-1] == "ok"
    assert page.tags.count("svg") == 5 and page.tags.count("polyline") == 1   # only web1 has two sets or more
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text


def test_html_page_renders_in_headless_chromium(fleet, capsys, tmp_path):
    browser = need_binary("chromium", "chromium-browser")
    page_path = tmp_path / "status.html"
    _status(capsys, "-c", str(fleet["config"]), "--all-hosts", "--html", str(page_path))
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page_path.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    page = _Page()
    page.feed(result.stdout)
    hosts = [row[0].splitlines()[0] for row in page.rows[1:]]
    assert sorted(hosts) == sorted(["web1", "db1", "old1", "other", HOSTILE])
    assert "img" not in page.tags and page.tags.count("polyline") == 1


def test_all_hosts_on_a_storage_without_host_folders_is_one_sentence(tmp_path, capsys):
    config = tmp_path / "conf.json"
    ensure_signing_key(tmp_path)
    config.write_text(json.dumps({"GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work")},
                                  "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {
                                      "DESTINATION": "custom_command",
                                          "UPLOAD_COMMAND_TEMPLATE": "cp %(OBJECTIVES)s/%(file)s /nonexistent/",
                                          "LIST_COMMAND_TEMPLATE": "ls /nonexistent"}}}))
    code, out, err = _status(capsys, "-c", str(config), "--all-hosts")
    assert code in (2, 3) and "cannot list other hosts" in err and "Traceback" not in err, err


def test_a_host_folder_name_with_a_newline_cannot_forge_a_line_of_the_table(tmp_path, capsys):
    config = _config(tmp_path)
    own = read_secret_key(tmp_path / "signing.key")
    write_fake_set(_host(tmp_path, "web1"), own, host="web1", moment=NOW - timedelta(hours=1), size_bytes=100)
    write_fake_set(_host(tmp_path, "evil\nweb9  ok"), own, host="web1", moment=NOW - timedelta(hours=1), size_bytes=100)
    _, out, _ = _status(capsys, "-c", str(config), "--all-hosts")
    assert "'evil\\nweb9  ok'" in out and not any(line.startswith("web9") for line in out.splitlines())
