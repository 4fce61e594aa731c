"""What a result was produced with: package versions, code version, machine."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = (
    "mop-bench",
    "torch",
    "transformers",
    "sentence-transformers",
    "numpy",
    "scipy",
    "scikit-learn",
    "mauve-text",
    "faiss-cpu",
    "pandas",
    "datasets",
    "gguf",
    "jinja2",
)


def code_version() -> dict[str, Any]:
    """Package version plus the git commit (and whether the tree was dirty), if any."""
    out: dict[str, Any] = {"version": _version("mop-bench")}
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--", "mop_bench"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            out["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def capture() -> dict[str, Any]:
    import os

    return {
        "code": code_version(),
        "packages": {p: _version(p) for p in _PACKAGES},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
    }
