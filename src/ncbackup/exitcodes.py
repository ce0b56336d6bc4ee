"""The exit statuses every ncbackup command shares, defined once."""

from __future__ import annotations

EXIT_OK, EXIT_WARNINGS, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2, 3
# The last line of every command's --help.
EXIT_STATUS_HELP = (
    f"exit status: {EXIT_OK} ok, {EXIT_WARNINGS} warnings, {EXIT_FAILED} failed, "
    f"{EXIT_UNUSABLE} unusable config or arguments"
)
