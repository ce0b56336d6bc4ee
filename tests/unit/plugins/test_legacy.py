"""Legacy load plugins: imported by path, constructed CLASS(params, logger), driven in order; every breakage one sentence."""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import pytest

from ncbackup.config import loads_config
from ncbackup.errors import BackupError
from ncbackup.plugins.legacy import resolve, run_plugin


def setup_plugin(tmp_path: Path, body: str, *, parameters: dict | None = None, class_name: str = "Plugin"):
    folder = tmp_path / "home" / "myplug"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "myplug.py").write_text(textwrap.dedent(body))
    section = {"ACTION": "load", "FROM": "myplug", "CLASS": class_name}
    if parameters is not None:
        section["PARAMETERS"] = parameters
    text = json.dumps({"GENERAL": {"HOSTNAME": "h", "WORK_FOLDER": str(tmp_path / "w"),
                                   "HOME_FOLDER": str(tmp_path / "home")}, "PLUG": section})
    config = loads_config(text, path=tmp_path / "conf.json")
    section = config.sections[0]
    return section, resolve(section, config.general)


RECORDING = """
    CALLS = []
    class Plugin:
        def __init__(self, params, logger):
            CALLS.append(("init", params))
            self.logger = logger
        def config_plugin(self):
            CALLS.append("config_plugin")
        def works_execution(self):
            CALLS.append("works_execution")
            self.logger.info("working")
        def output(self):
            CALLS.append("output")
            return CALLS
"""


def test_plugin_is_constructed_with_params_and_driven_in_order(tmp_path):
    section, ref = setup_plugin(tmp_path, RECORDING, parameters={"TARGETS": "/x", "N": "5"})
    calls = run_plugin(section, ref, logger=logging.getLogger("t"))[-1]
    assert calls[0] == ("init", {"TARGETS": "/x", "N": "5", "OBJECTIVES": "/x"})
    assert calls[1:] == ["config_plugin", "works_execution", "output"]


def test_plugin_without_parameters_gets_none(tmp_path):
    section, ref = setup_plugin(tmp_path, RECORDING)
    assert run_plugin(section, ref, logger=logging.getLogger("t"))[-1][0] == ("init", None)


def test_plugin_can_import_its_neighbours(tmp_path):
    (tmp_path / "home" / "myplug").mkdir(parents=True)
    (tmp_path / "home" / "myplug" / "helper.py").write_text("VALUE = 42\n")
    section, ref = setup_plugin(tmp_path, """
        import helper
        class Plugin:
            def __init__(self, params, logger): pass
            def config_plugin(self): pass
            def works_execution(self): pass
            def output(self): return helper.VALUE
    """)
    assert run_plugin(section, ref, logger=logging.getLogger("t"))[-1] == 42


def test_missing_class_is_one_sentence(tmp_path):
    section, ref = setup_plugin(tmp_path, RECORDING, class_name="Nope")
    with pytest.raises(BackupError, match="has no class Nope; fix CLASS in section PLUG"):
        run_plugin(section, ref, logger=logging.getLogger("t"))


def test_wrong_constructor_signature_is_one_sentence(tmp_path):
    section, ref = setup_plugin(tmp_path, """
        class Plugin:
            def __init__(self):
                pass
    """)
    with pytest.raises(BackupError, match=r"cannot be constructed as Plugin\(parameters, logger\)"):
        run_plugin(section, ref, logger=logging.getLogger("t"))


def test_raising_plugin_names_the_method(tmp_path):
    section, ref = setup_plugin(tmp_path, """
        class Plugin:
            def __init__(self, params, logger): pass
            def config_plugin(self): pass
            def works_execution(self): raise RuntimeError("disk on fire")
            def output(self): pass
    """)
    with pytest.raises(BackupError, match=r"raised RuntimeError in works_execution\(\): disk on fire"):
        run_plugin(section, ref, logger=logging.getLogger("t"))


def test_plugin_failing_at_import_is_one_sentence(tmp_path):
    section, ref = setup_plugin(tmp_path, "import no_such_module_anywhere\n")
    with pytest.raises(BackupError, match="failed to import .*ModuleNotFoundError"):
        run_plugin(section, ref, logger=logging.getLogger("t"))


def test_missing_method_is_named(tmp_path):
    section, ref = setup_plugin(tmp_path, """
        class Plugin:
            def __init__(self, params, logger): pass
            def config_plugin(self): pass
    """)
    with pytest.raises(BackupError, match=r"has no works_execution\(\) method"):
        run_plugin(section, ref, logger=logging.getLogger("t"))
