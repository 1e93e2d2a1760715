"""What a recorded figure was measured on: the commit, whether its sources had uncommitted
changes, and the machine's load average while it ran (every time a command writes depends on it)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from models.base import REPO_ROOT


def git_state(sources: Sequence[str]) -> dict[str, object]:
    """The commit checked out, and whether ``sources`` (what the figure depends on) differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "uncommitted_changes": bool(git("status", "--porcelain", "--", *sources))}


def load_average_since(before: Sequence[float]) -> dict[str, list[float]]:
    """``{"before": [1, 5, 15 min], "after": [...]}``: the load averages ``os.getloadavg()`` gave at the start and gives now."""
    return {"before": [round(value, 2) for value in before], "after": [round(value, 2) for value in os.getloadavg()]}
