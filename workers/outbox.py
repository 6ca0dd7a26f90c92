"""Placeholder replaced by the outbox worker (issue 4, in progress)."""
from __future__ import annotations

from typing import Any


def periodic_tasks(config: Any) -> dict[str, dict[str, Any]]:
    return {}
