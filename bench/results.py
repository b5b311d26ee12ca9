"""`bench/results.json`: each bench writes its own section, the others stay as they were."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results.json")


def record(section: str, figures: dict[str, Any]) -> None:
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    stored[section] = figures
    RESULTS.write_text(json.dumps(stored, indent=2, default=str) + "\n")
