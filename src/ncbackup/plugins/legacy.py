"""``load`` sections that are not built in: import HOME_FOLDER/FROM/FILENAME.py and drive CLASS.

The original's plugin contract: ``CLASS(parameters_dict_or_None, logger)``, then ``config_plugin()``,
``works_execution()`` and ``output()`` in that order. Every way a plugin can break (missing file,
missing class, wrong constructor, a method raising) becomes one sentence and a failed step.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.errors import BackupError, ConfigError

PLUGIN_METHODS = ("config_plugin", "works_execution", "output")


@dataclass(frozen=True)
class PluginRef:
    section_name: str
    file: Path
    class_name: str

    def describe(self) -> str:
        return f"loads {self.class_name} from {self.file} and calls {', '.join(m + '()' for m in PLUGIN_METHODS)}"


def resolve(section: SectionSettings, general: GeneralSettings, *, config_file: Path | None = None) -> PluginRef:
    """Find the plugin file of a load section; ConfigError naming the section when it is missing."""
    line = section.position.line if section.position else None
    if general.home_folder is None:
        raise ConfigError(
            f"section {section.name} loads the plugin {section.module!r} but GENERAL has no HOME_FOLDER; "
            "set HOME_FOLDER to the folder holding it", file=config_file, line=line, key="HOME_FOLDER",
        )
    filename = (section.filename or section.module or "").strip()
    if not filename.endswith(".py"):
        filename += ".py"
    file = Path(general.home_folder) / (section.module or "") / filename
    if not file.is_file():
        raise ConfigError(
            f"section {section.name}: the plugin module {file} does not exist; fix FROM/FILENAME or install it there",
            file=config_file, line=line, key="FROM",
        )
    if not section.class_name:
        raise ConfigError(f"section {section.name} has no CLASS; name the plugin class to load",
                          file=config_file, line=line, key="CLASS")
    return PluginRef(section.name, file, section.class_name)


def plugin_parameters(section: SectionSettings) -> dict[str, Any] | None:
    """The dict a legacy plugin receives: PARAMETERS as written (TARGETS also offered as OBJECTIVES), or None."""
    if not section.raw_parameters:
        return None
    parameters = {k: v for k, v in section.raw_parameters.items() if not k.startswith("__")}
    if "TARGETS" in parameters and "OBJECTIVES" not in parameters:
        parameters["OBJECTIVES"] = parameters["TARGETS"]
    if "REMOVE_TARGETS" in parameters and "REMOVE_OBJECTIVES" not in parameters:
        parameters["REMOVE_OBJECTIVES"] = parameters["REMOVE_TARGETS"]
    return parameters


def load_class(ref: PluginRef) -> type:
    """Import the plugin file by path and return its class; BackupError (one sentence) if that fails."""
    module_name = f"ncbackup_plugin_{ref.section_name.lower()}_{ref.file.stem}"
    spec = importlib.util.spec_from_file_location(module_name, ref.file)
    if spec is None or spec.loader is None:
        raise BackupError(f"plugin file {ref.file} cannot be imported; it must be a Python source file")
    module = importlib.util.module_from_spec(spec)
    # Old plugins import their neighbours ("from tools import x"): make HOME_FOLDER and FROM importable.
    extra_paths = [str(ref.file.parent), str(ref.file.parent.parent)]
    sys.path[:0] = extra_paths
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - any import-time failure of user code is one sentence
        raise BackupError(
            f"plugin file {ref.file} failed to import ({type(error).__name__}: {error}); fix the plugin"
        ) from None
    finally:
        for path in extra_paths:
            if path in sys.path:
                sys.path.remove(path)
    plugin_class = getattr(module, ref.class_name, None)
    if not inspect.isclass(plugin_class):
        raise BackupError(f"plugin file {ref.file} has no class {ref.class_name}; fix CLASS in section {ref.section_name}")
    return plugin_class


def construct(plugin_class: type, parameters: dict[str, Any] | None, *, logger: logging.Logger,
              where: str, **extra: Any) -> Any:
    """Build the plugin as CLASS(parameters, logger); a wrong signature is one clear sentence."""
    try:
        inspect.signature(plugin_class).bind(parameters, logger, **extra)
    except TypeError:
        raise BackupError(
            f"plugin class {where} cannot be constructed as {plugin_class.__name__}(parameters, logger); "
            "its __init__ must take exactly those two arguments"
        ) from None
    except ValueError:
        pass  # no introspectable signature (a C type): just try it
    try:
        return plugin_class(parameters, logger, **extra)
    except Exception as error:  # noqa: BLE001
        raise BackupError(f"plugin class {where} raised {type(error).__name__} when constructed: {error}") from None


def drive(plugin: Any, *, where: str) -> list[Any]:
    """Call config_plugin(), works_execution(), output() in order; return what each returned."""
    answers = []
    for method_name in PLUGIN_METHODS:
        method = getattr(plugin, method_name, None)
        if not callable(method):
            raise BackupError(f"plugin class {where} has no {method_name}() method; a plugin needs "
                              f"{', '.join(m + '()' for m in PLUGIN_METHODS)}")
        try:
            answers.append(method())
        except Exception as error:  # noqa: BLE001 - a raising plugin fails its step, not the run
            raise BackupError(f"plugin class {where} raised {type(error).__name__} in {method_name}(): {error}") from None
    return answers


def run_plugin(section: SectionSettings, ref: PluginRef, *, logger: logging.Logger) -> list[Any]:
    """Import, construct and drive a user's legacy plugin; returns what its methods returned."""
    where = f"{ref.class_name} ({ref.file})"
    plugin_class = load_class(ref)
    plugin = construct(plugin_class, plugin_parameters(section), logger=logger.getChild(section.name), where=where)
    return drive(plugin, where=where)
