"""Incremental file backups: local state of the last complete set, the change tracker the tar walk asks,
and the decision full or incremental (docs/incremental.md)."""
