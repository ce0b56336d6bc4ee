"""The built-in SIZE plugin under its original name: measures OBJECTIVES or the run's backup set."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from ncbackup.plugins.size_calculation import SizeCalculation, folder_size_bytes


def drive(plugin) -> str:
    plugin.config_plugin()
    plugin.works_execution()
    return plugin.output()


def test_legacy_construction_measures_existing_objectives(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"1" * 2048)
    (tmp_path / "b").write_bytes(b"2" * 1024)
    plugin = SizeCalculation({"OBJECTIVES": f"{tmp_path / 'a'} {tmp_path / 'b'}"}, logging.getLogger("t"))
    assert drive(plugin) == "3.0 KiB"


def test_symlinks_are_not_followed(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 5000)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "link").symlink_to(tmp_path / "big")
    assert folder_size_bytes(tmp_path / "folder") == 0


def test_without_materialised_objectives_the_last_backup_set_is_reported(tmp_path):
    context = SimpleNamespace(produced_this_run=lambda path: False, last_set_bytes_out=5 * 1024 * 1024)
    plugin = SizeCalculation({"OBJECTIVES": str(tmp_path / "never-written")}, logging.getLogger("t"), context=context)
    assert drive(plugin) == "5.0 MiB"


def test_nothing_to_measure_is_na(tmp_path):
    plugin = SizeCalculation(None, logging.getLogger("t"))
    assert drive(plugin) == "N/A"
