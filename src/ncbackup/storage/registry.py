"""Storage backends by STORAGE section DESTINATION. One line per backend.

Each backend class has ``from_section(section, general) -> Storage`` reading its own ARGS_DICT keys.
"""

from __future__ import annotations

from typing import Any

STORAGES: dict[str, Any] = {
}
