"""The built-in QA plugin: permission findings are warnings, never failures."""

from __future__ import annotations

import json
import logging
import os

from ncbackup.config import loads_config
from ncbackup.plugins.qa import QA


class Context:
    def __init__(self, config):
        self.config = config


def test_qa_warns_about_a_world_readable_key_and_a_world_writable_config(tmp_path):
    key = tmp_path / "key"
    key.write_text("AGE-SECRET-KEY-1XYZ\n")
    os.chmod(key, 0o644)
    path = tmp_path / "conf.json"
    text = json.dumps({"GENERAL": {"HOSTNAME": "h", "WORK_FOLDER": str(tmp_path)},
                       "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(key)}}})
    path.write_text(text)
    os.chmod(path, 0o666)  # noqa: S103 - the world-writable config QA must flag
    qa = QA(None, logging.getLogger("t"), context=Context(loads_config(text, path=path)))
    qa.config_plugin()
    qa.works_execution()
    findings = qa.output()
    assert any(str(key) in f and "chmod 600" in f for f in findings)
    assert any(str(path) in f and "writable by other users" in f for f in findings)


def test_qa_is_quiet_about_private_files(tmp_path):
    key = tmp_path / "key"
    key.write_text("AGE-SECRET-KEY-1XYZ\n")
    os.chmod(key, 0o600)
    path = tmp_path / "conf.json"
    text = json.dumps({"GENERAL": {"HOSTNAME": "h", "WORK_FOLDER": str(tmp_path)},
                       "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(key)}}})
    path.write_text(text)
    os.chmod(path, 0o640)
    qa = QA(None, logging.getLogger("t"), context=Context(loads_config(text, path=path)))
    qa.config_plugin()
    qa.works_execution()
    assert [f for f in qa.output() if "root" not in f] == []


def test_qa_constructs_like_the_original_without_a_context():
    qa = QA({"X": "1"}, logging.getLogger("t"))
    qa.config_plugin()
    qa.works_execution()
    assert isinstance(qa.output(), list)
