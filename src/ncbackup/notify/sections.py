"""How a NOTIFY section is read: METHOD, ON, ARGS_DICT, CREDENTIALS_FILE, RETRY_SECONDS.

A NOTIFY section (``"ACTION": "execute", "NAME": "notify"``) is no step of the plan: it configures a
delivery at the end of the run. Its secrets live only in CREDENTIALS_FILE (0600, ``KEY=value`` lines);
a secret-named key in ARGS_DICT is refused, the way S3 keys are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ncbackup.config.secret_values import is_secret_name
from ncbackup.config.settings import Config, SectionSettings
from ncbackup.config.types import DurationSeconds, LegacyPath, WordList, parse_options
from ncbackup.engine.result import Status
from ncbackup.errors import ConfigError

NOTIFY_EXECUTE_NAME = "notify"
DEFAULT_RETRY_SECONDS = 60.0

# ON words -> the run statuses they select ("failure" reads better in a config than "failed").
OUTCOME_WORDS: dict[str, Status] = {
    "failure": Status.FAILED,
    "warning": Status.WARNING,
    "success": Status.OK,
    "skipped": Status.SKIPPED,
}
DEFAULT_ON = "failure warning"
EVERY_OUTCOME = frozenset(Status)


def parse_outcomes(words: list[str]) -> frozenset[Status]:
    """ON words -> statuses; ValueError naming the unknown word and the allowed ones."""
    unknown = [word for word in words if word.lower() not in OUTCOME_WORDS]
    if unknown:
        raise ValueError(f"unknown outcome {unknown[0]!r}; use some of: {' '.join(OUTCOME_WORDS)}")
    if not words:
        raise ValueError(f"ON names no outcome; use some of: {' '.join(OUTCOME_WORDS)}")
    return frozenset(OUTCOME_WORDS[word.lower()] for word in words)


class NotifyOptions(BaseModel):
    """The PARAMETERS of a NOTIFY section (the method reads its own ARGS_DICT keys)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    method: str = Field(alias="METHOD", min_length=1,
                        description="how the message is delivered: one of the methods in docs/notify.md")
    on: WordList = Field(default_factory=lambda: DEFAULT_ON.split(), alias="ON",
                         json_schema_extra={"shown_default": f"`{DEFAULT_ON}`"},
                         description="the run outcomes sent, space-separated among failure warning success skipped")
    args: dict[str, Any] = Field(default_factory=dict, alias="ARGS_DICT",
                                 json_schema_extra={"allowed": "an object (or the original's dict-in-a-string)"},
                                 description="the method's settings (no secrets: those go in CREDENTIALS_FILE)")
    credentials_file: LegacyPath | None = Field(None, alias="CREDENTIALS_FILE",
                                                description="a 0600 file of KEY=value lines holding the method's secrets")
    retry_seconds: DurationSeconds = Field(DEFAULT_RETRY_SECONDS, alias="RETRY_SECONDS",
                                           json_schema_extra={"shown_default": "`60`",
                                                              "allowed": "seconds, or `90s`, `5m`"},
                                           description="how long failed deliveries are retried, in total")

    @field_validator("method")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("on")
    @classmethod
    def _known_outcomes(cls, value: list[str]) -> list[str]:
        parse_outcomes(value)
        return [word.lower() for word in value]


@dataclass(frozen=True)
class NotifySection:
    """A NOTIFY section, validated (the credentials file is read later, by the registry)."""

    section: SectionSettings
    options: NotifyOptions

    @property
    def name(self) -> str:
        return self.section.name

    @property
    def outcomes(self) -> frozenset[Status]:
        return parse_outcomes(self.options.on)


def is_notify_section(section: SectionSettings) -> bool:
    return section.action == "execute" and (section.module or "").strip().lower() == NOTIFY_EXECUTE_NAME


def _line(section: SectionSettings, key: str) -> int | None:
    position = section.parameter_positions.get(key) or section.key_positions.get("PARAMETERS") or section.position
    return position.line if position else None


def read_notify_section(section: SectionSettings, *, methods: list[str], config_file: Path | None) -> NotifySection:
    """Validate a NOTIFY section: a known METHOD, valid ON, no secret in ARGS_DICT; ConfigError naming the key."""
    options = parse_options(NotifyOptions, section)
    if options.method not in methods:
        raise ConfigError(f"section {section.name}: unknown notify METHOD {options.method!r}; use one of: "
                          f"{', '.join(sorted(methods))}", file=config_file, line=_line(section, "METHOD"),
                          key=f"{section.name}.METHOD")
    secrets = sorted(str(key) for key in options.args if is_secret_name(str(key)))
    if secrets:
        raise ConfigError(f"section {section.name}: {secrets[0]} in ARGS_DICT holds a secret, and secrets never go in "
                          "the config file: put it in CREDENTIALS_FILE (a 0600 file of KEY=value lines)",
                          file=config_file, line=_line(section, "ARGS_DICT"), key=f"{section.name}.ARGS_DICT.{secrets[0]}")
    return NotifySection(section=section, options=options)


def notify_sections(config: Config, *, methods: list[str]) -> list[NotifySection]:
    """Every NOTIFY section of the config, validated, in file order."""
    return [read_notify_section(section, methods=methods, config_file=config.path)
            for section in config.sections if is_notify_section(section)]
