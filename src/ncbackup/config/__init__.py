"""The config layer: ``load_config(path) -> Config``; typed settings; legacy spellings normalised in one place."""

from ncbackup.config.load import load_config, loads_config
from ncbackup.config.settings import Config, GeneralSettings, Position, SectionSettings

__all__ = ["Config", "GeneralSettings", "Position", "SectionSettings", "load_config", "loads_config"]
