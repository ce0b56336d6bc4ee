"""One descriptor per source module: the registry is the only other place a source is named."""

from __future__ import annotations

import importlib
import pkgutil

import ncbackup.sources
from ncbackup.config.settings import SectionSettings
from ncbackup.engine.builtins import Role, builtin_key, role_of
from ncbackup.sources.kinds import MODULE_BY_KIND, descriptor_for_kind, restorer_for
from ncbackup.sources.registry import DESCRIPTORS, RESTORERS, SOURCE_KEY_BY_KIND, SOURCES

NOT_SOURCES = {"base", "registry", "folder", "kinds"}   # folder: the barrier input, built by the planner itself


def test_every_source_module_brings_a_descriptor_and_is_registered() -> None:
    for info in pkgutil.iter_modules(ncbackup.sources.__path__):
        if info.name in NOT_SOURCES or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"ncbackup.sources.{info.name}")
        assert getattr(module, "DESCRIPTOR", None) in DESCRIPTORS, f"sources/{info.name}.py is not in DESCRIPTORS"


def test_keys_kinds_and_config_names_are_unique() -> None:
    assert len(SOURCES) == len(DESCRIPTORS)
    kinds = [kind for d in DESCRIPTORS for kind in d.restorers]
    assert len(kinds) == len(set(kinds)) == len(RESTORERS) == len(SOURCE_KEY_BY_KIND)
    names = [name for d in DESCRIPTORS for name in d.execute_names] + [str(pair) for d in DESCRIPTORS for pair in d.load_classes]
    assert len(names) == len(set(names))


def test_each_descriptor_name_is_recognised_as_that_source() -> None:
    for descriptor in DESCRIPTORS:
        for name in descriptor.execute_names:
            section = SectionSettings(name="S", action="execute", module=name, parameters={})
            assert builtin_key(section) == descriptor.key and role_of(section) == Role.SOURCE
        for module, class_name in descriptor.load_classes:
            section = SectionSettings(name="S", action="load", module=module, class_name=class_name, parameters={})
            assert builtin_key(section) == descriptor.key and role_of(section) == Role.SOURCE


def test_the_lazy_kind_table_agrees_with_the_descriptors() -> None:
    # restore finds a kind's restorer through sources/kinds.py, which imports only that kind's module.
    assert set(MODULE_BY_KIND) == set(RESTORERS)
    for kind, restorer in RESTORERS.items():
        assert restorer_for(kind) is restorer
        descriptor = descriptor_for_kind(kind)
        assert descriptor is not None and descriptor.key == SOURCE_KEY_BY_KIND[kind]
    assert restorer_for("no-such-kind") is None
