"""The built-in QA plugin (original: qa/qa.py, class QA): checks who runs the backup and the
permissions of the config, key, credential and log files. It only warns; it never fails a run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ncbackup import platform
from ncbackup.engine.builtins import builtin_key

DEFAULT_KEY_FILE = Path("/etc/nc-backup-py/key_file")


class QA:
    """The original's plugin contract: QA(parameters, logger), then the three calls; findings are warnings."""

    def __init__(self, parameters: dict[str, Any] | None, logger: logging.Logger, context: Any = None) -> None:
        self.parameters = parameters or {}
        self.logger = logger
        self.context = context
        self.findings: list[str] = []
        self.checked: list[str] = []

    def config_plugin(self) -> None:
        self.secret_files: list[Path] = []
        self.config_file: Path | None = None
        self.log_file: Path | None = None
        if self.context is None:
            return
        config = self.context.config
        self.config_file = Path(config.path)
        self.log_file = config.general.log_file
        from ncbackup.sources.registry import SOURCES

        for section in config.sections:
            key = builtin_key(section)
            if key == "encryption":
                self.secret_files.append(Path(section.parameters.get("KEY_FILE") or DEFAULT_KEY_FILE))
            elif key in SOURCES:
                self.secret_files.extend(Path(str(section.parameters[name])) for name in SOURCES[key].secret_file_keys
                                         if section.parameters.get(name))

    def works_execution(self) -> None:
        user = platform.current_user_name()
        self.checked.append(f"running as {user}")
        if platform.is_root():
            self.findings.append("the backup runs as root; a dedicated backup user with read access is safer")
        if self.config_file is not None and self.config_file.exists():
            self.checked.append(f"config {self.config_file}")
            if platform.is_writable_by_others(self.config_file):
                self.findings.append(f"the config {self.config_file} is writable by other users; chmod go-w it")
        for secret in self.secret_files:
            if not secret.exists():
                self.findings.append(f"the key/credential file {secret} does not exist")
                continue
            self.checked.append(f"secret {secret}")
            if platform.is_readable_by_others(secret) or platform.is_writable_by_others(secret):
                self.findings.append(f"the key/credential file {secret} is accessible by other users; chmod 600 it")
        if self.log_file is not None and self.log_file.exists():
            self.checked.append(f"log {self.log_file}")
            if platform.is_writable_by_others(self.log_file):
                self.findings.append(f"the log file {self.log_file} is writable by other users; chmod go-w it")

    def output(self) -> list[str]:
        for finding in self.findings:
            self.logger.warning("qa: %s", finding)
        self.logger.info("qa: checked %s", ", ".join(self.checked) or "nothing")
        return list(self.findings)
