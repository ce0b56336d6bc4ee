"""ncbackup: streaming, encrypted server backups driven by one JSON config."""

__version__ = "0.1.0"
