"""Where mop-bench keeps caches and looks for data (all overridable by env vars)."""

from __future__ import annotations

import os
import re
from pathlib import Path


def cache_dir() -> Path:
    """Root of on-disk caches (embeddings, dequantized models): $MOP_BENCH_CACHE,
    else $XDG_CACHE_HOME/mop-bench, else ~/.cache/mop-bench."""
    env = os.environ.get("MOP_BENCH_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mop-bench"


def data_dir(configured: str | None = None) -> Path | None:
    """The mirror directory: an explicit setting, else $MOP_BENCH_DATA_DIR, else None."""
    value = configured or os.environ.get("MOP_BENCH_DATA_DIR")
    return Path(value).expanduser() if value else None


def safe_name(name: str, fallback: str = "unnamed") -> str:
    """`name` as one harmless path component: anything but letters, digits, `_`, `.`
    and `-` becomes `_`, and leading/trailing dots go, so a task, simulator or
    comparison name (`../../x`, `/etc`, `a/b`) can never leave the results folder."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._")
    return cleaned or fallback
