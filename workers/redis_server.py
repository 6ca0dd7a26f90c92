"""Placeholder replaced by the bundled redis-server manager (issue 4, in progress)."""
from __future__ import annotations

from pathlib import Path


def running_url(instance_dir: Path) -> str | None:
    return None
