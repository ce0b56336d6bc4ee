"""Signed sets against hostile storage, as a user meets them: stock minisign verifies every set; list, verify
and restore refuse tampered manifests, untrusted signers, traversal names, cipher downgrades and unsigned sets,
writing nothing outside --target and exiting 2 with one sentence."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ncbackup.signing import read_secret_key
from tests.e2e.test_restore_cli import Site, _config, _restored_data, _run, _tree, site  # noqa: F401 - site is a fixture
from tests.support import need_binary


def _only_set(site: Site) -> Path:
    (set_id,) = site.set_ids()
    return site.host_folder / set_id


def _manifest(set_folder: Path) -> dict:
    return json.loads((set_folder / "manifest.json").read_text())


def _resign(site: Site, set_folder: Path, manifest: dict) -> None:
    """What a compromised signing server can do: write any manifest and sign it with the trusted key."""
    data = (json.dumps(manifest, indent=2) + "\n").encode()
    (set_folder / "manifest.json").write_bytes(data)
    key = read_secret_key(site.key.parent / "signing.key")
    (set_folder / "manifest.json.minisig").write_bytes(key.sign(data, trusted_comment="forged"))


def _one_sentence_refusal(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ncbackup: error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def _nothing_written(box: Path) -> None:
    """The restore target's parent holds nothing the restore could have put there."""
    assert not box.exists() or not any(box.rglob("*")), sorted(box.rglob("*"))


def test_every_set_verifies_with_stock_minisign(site: Site) -> None:
    minisign = need_binary("minisign")
    set_folder = _only_set(site)
    public = site.key.parent / "signing.key.pub"
    checked = subprocess.run([minisign, "-V", "-p", str(public), "-m", str(set_folder / "manifest.json")],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    assert f"web1/{set_folder.name}" in checked.stdout   # the trusted comment names the set
    # And the stock tool notices a change, as ncbackup does.
    manifest = set_folder / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"host": "web1"', b'"host": "web2"'))
    assert subprocess.run([minisign, "-V", "-p", str(public), "-m", str(manifest)],
                          capture_output=True, check=False).returncode != 0


def test_signing_key_is_private_and_its_public_half_is_in_the_run_report(tmp_path, ncbackup_cmd) -> None:
    root = tmp_path / "fresh"
    data = root / "data"
    data.mkdir(parents=True)
    (data / "a.txt").write_text("a\n")
    key = root / "key.txt"
    assert _run(ncbackup_cmd, "keygen", "--output", str(key)).returncode == 0
    config = root / "conf.json"
    config.write_text(_config(root, data, key, root / "backups"))
    first = _run(ncbackup_cmd, "run", "-c", str(config), "--json")
    assert first.returncode == 1, first.stderr          # a created key is a loud warning, as a created KEY_FILE is
    signing_key = root / "signing.key"
    assert signing_key.stat().st_mode & 0o777 == 0o600
    public_line = (root / "signing.key.pub").read_text().splitlines()[1]
    report = json.loads(first.stdout)
    assert any(public_line in warning for step in report["steps"] for warning in step["warnings"])
    assert "SIGNING_KEY" in first.stderr and "COPY" in first.stderr
    second = _run(ncbackup_cmd, "run", "-c", str(config), "--json")
    assert second.returncode == 0, second.stderr
    assert any(public_line in note for step in json.loads(second.stdout)["steps"] for note in step["notes"])
    # A signing key others can read is refused, not warned about: whoever reads it can forge sets.
    signing_key.chmod(0o640)
    refused = _run(ncbackup_cmd, "run", "-c", str(config))
    assert refused.returncode == 2 and "chmod 600" in refused.stdout + refused.stderr


def test_tampered_manifest_is_refused_by_list_verify_and_restore(site: Site, tmp_path) -> None:
    set_folder = _only_set(site)
    manifest = set_folder / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"bytes_in": ', b'"bytes_in": 1', 1))
    listed = _run(site_cmd(), "list", "-c", str(site.config))
    assert "damaged" in listed.stdout
    for command in ("verify", "restore"):
        box = tmp_path / f"box-{command}"
        extra = ["--target", str(box / "t")] if command == "restore" else []
        result = _run(site_cmd(), command, "-c", str(site.config), "--set", set_folder.name, *extra)
        _one_sentence_refusal(result, set_folder.name, "changed after it was signed")
        _nothing_written(box)


def site_cmd() -> list[str]:
    import sys

    return [sys.executable, "-m", "ncbackup.cli"]


def test_set_signed_on_another_machine_is_refused_until_its_key_is_trusted(site: Site, tmp_path) -> None:
    """Same age recipient, same storage, another machine's signing key: copied in, it is not trusted."""
    other = tmp_path / "other"
    other.mkdir()
    recipients = other / "recipients.txt"
    recipients.write_text(site.key.read_text().split("public key: ")[1].splitlines()[0] + "\n")
    other_key = other / "signing.key"
    assert _run(site_cmd(), "keygen", "--signing-key", str(other_key)).returncode == 0
    (other / "data").mkdir()
    (other / "data" / "planted.txt").write_text("from another machine\n")
    config = other / "conf.json"
    config.write_text(_config(other, other / "data", recipients, site.backups))   # the same folder: HOSTNAME web1
    # Exit 1: it warns that no set already there is complete for it (signed by a key it trusts: ALERT_AFTER_HOURS).
    assert _run(site_cmd(), "run", "-c", str(config)).returncode == 1
    planted = [set_id for set_id in site.set_ids() if set_id != site.set_ids()[0]][0]
    key_id = read_secret_key(other_key).public.id_text

    listed = _run(site_cmd(), "list", "-c", str(site.config), "--json")
    states = {item["set_id"]: (item["status"], item["signer"]) for item in json.loads(listed.stdout)}
    assert states[planted] == ("untrusted", key_id)
    box = tmp_path / "box"
    refused = _run(site_cmd(), "restore", "-c", str(site.config), "--set", planted, "--target", str(box / "t"))
    _one_sentence_refusal(refused, planted, key_id, "--trust-signer")
    _nothing_written(box)
    # --latest never picks it: it restores the newest set this side trusts, and says what it skipped.
    latest = _run(site_cmd(), "restore", "-c", str(site.config), "--latest", "--target", str(box / "latest"))
    assert latest.returncode == 0, latest.stderr
    assert f"{planted} (untrusted)" in latest.stdout
    assert not (box / "latest" / str(other / "data").lstrip("/")).exists()
    # After a disaster, the operator trusts the other machine's public key explicitly.
    trusted = _run(site_cmd(), "restore", "-c", str(site.config), "--set", planted, "--target", str(box / "ok"),
                   "--trust-signer", str(other / "signing.key.pub"))
    assert trusted.returncode == 0, trusted.stderr
    assert (box / "ok" / str(other / "data").lstrip("/") / "planted.txt").read_text() == "from another machine\n"


@pytest.mark.parametrize(("field", "value"), [
    ("name", "../../x"),
    ("name", "/etc/cron.d/x"),
    ("file_name", "../../escape.sql"),
    ("name", "-rf"),
    ("name", "a\nb"),
])
def test_traversal_names_are_refused_even_when_signed(site: Site, tmp_path, field: str, value: str) -> None:
    set_folder = _only_set(site)
    manifest = _manifest(set_folder)
    manifest["streams"][0][field] = value
    _resign(site, set_folder, manifest)
    box = tmp_path / "box"
    for command in ("verify", "restore"):
        extra = ["--target", str(box / "t")] if command == "restore" else []
        result = _run(site_cmd(), command, "-c", str(site.config), "--set", set_folder.name, *extra)
        _one_sentence_refusal(result, f"streams[0].{field}")
    _nothing_written(box)
    assert not Path("/etc/cron.d/x").exists() and not (tmp_path / "x").exists()


def test_part_names_and_database_names_are_checked_too(site: Site, tmp_path) -> None:
    set_folder = _only_set(site)
    manifest = _manifest(set_folder)
    manifest["streams"][0]["parts"][0]["name"] = "../../files.tar.zst.age.000"
    _resign(site, set_folder, manifest)
    _one_sentence_refusal(_run(site_cmd(), "verify", "-c", str(site.config)), "streams[0].parts[0].name")
    manifest = _manifest(set_folder)
    manifest["streams"][0]["parts"][0]["name"] = manifest["streams"][0]["file_name"] + ".000"
    manifest["streams"][0]["metadata"]["database"] = "-evil"
    _resign(site, set_folder, manifest)
    _one_sentence_refusal(_run(site_cmd(), "verify", "-c", str(site.config)), "metadata.database")


@pytest.mark.parametrize("cipher", ["none", "openssl-legacy"])
def test_cipher_downgrade_is_refused_unless_allowed(site: Site, tmp_path, cipher: str) -> None:
    """A signed manifest that says "none" over plaintext parts: age's integrity check would be bypassed."""
    set_folder = _only_set(site)
    manifest = _manifest(set_folder)
    for stream in manifest["streams"]:
        stream["cipher"] = cipher
    _resign(site, set_folder, manifest)
    box = tmp_path / "box"
    for command in ("verify", "restore"):
        extra = ["--target", str(box / "t")] if command == "restore" else []
        result = _run(site_cmd(), command, "-c", str(site.config), *extra)
        _one_sentence_refusal(result, f"cipher '{cipher}'", "expects 'age'", f"--allow-cipher {cipher}")
    _nothing_written(box)
    # Allowed explicitly, the set is read as it claims: its age bytes are not valid plaintext/legacy, so it fails later.
    allowed = _run(site_cmd(), "verify", "-c", str(site.config), "--allow-cipher", cipher)
    assert "expects 'age'" not in allowed.stderr


def test_unsigned_old_format_set_needs_allow_unsigned(site: Site, tmp_path) -> None:
    set_folder = _only_set(site)
    manifest = _manifest(set_folder)
    manifest["format_version"] = 1
    (set_folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (set_folder / "manifest.json.minisig").unlink()
    listed = _run(site_cmd(), "list", "-c", str(site.config))
    assert "unsigned" in listed.stdout and "--allow-unsigned" in listed.stdout
    box = tmp_path / "box"
    refused = _run(site_cmd(), "restore", "-c", str(site.config), "--set", set_folder.name, "--target", str(box / "t"))
    _one_sentence_refusal(refused, "unsigned", "--allow-unsigned")
    _nothing_written(box)
    allowed = _run(site_cmd(), "restore", "-c", str(site.config), "--set", set_folder.name, "--target", str(box / "t"),
                   "--allow-unsigned")
    assert allowed.returncode == 0, allowed.stderr
    assert "unsigned" in allowed.stdout
    assert _tree(_restored_data(box / "t", site)) == _tree(site.data)


def test_new_format_set_without_its_signature_is_incomplete(site: Site, tmp_path) -> None:
    set_folder = _only_set(site)
    (set_folder / "manifest.json.minisig").unlink()
    assert "incomplete" in _run(site_cmd(), "list", "-c", str(site.config)).stdout
    # --allow-unsigned does not help: a format-2 set without signature did not finish (or was stripped).
    result = _run(site_cmd(), "verify", "-c", str(site.config), "--allow-unsigned")
    _one_sentence_refusal(result, "no signature")


def test_a_set_replayed_under_another_id_is_refused(site: Site, tmp_path) -> None:
    set_folder = _only_set(site)
    replay = site.host_folder / "29991231T000000Z"
    shutil.copytree(set_folder, replay)
    result = _run(site_cmd(), "verify", "-c", str(site.config), "--set", replay.name)
    _one_sentence_refusal(result, "moved or replayed")
    # --latest skips it and takes the genuine one.
    assert _run(site_cmd(), "verify", "-c", str(site.config), "--latest").returncode == 0


def test_trusted_signers_in_the_config_are_accepted(site: Site, tmp_path) -> None:
    set_folder = _only_set(site)
    config = json.loads(site.config.read_text())
    # The restoring side has another SIGNING_KEY of its own, and lists the server's public key as trusted.
    own = tmp_path / "restorer" / "signing.key"
    own.parent.mkdir()
    assert _run(site_cmd(), "keygen", "--signing-key", str(own)).returncode == 0
    config["ENCRYPTION"]["PARAMETERS"]["SIGNING_KEY"] = str(own)
    site.config.write_text(json.dumps(config))
    refused = _run(site_cmd(), "verify", "-c", str(site.config))
    _one_sentence_refusal(refused, "not trusted")
    config["ENCRYPTION"]["PARAMETERS"]["TRUSTED_SIGNERS"] = f"{own}.pub {site.key.parent / 'signing.key.pub'}"
    site.config.write_text(json.dumps(config))
    assert _run(site_cmd(), "verify", "-c", str(site.config), "--set", set_folder.name).returncode == 0
    os.unlink(site.key.parent / "signing.key.pub")
    missing = _run(site_cmd(), "verify", "-c", str(site.config))
    assert missing.returncode == 3 and "signing.key.pub does not exist" in missing.stderr
