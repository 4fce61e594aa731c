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
        **_cpu_model(),
    }


#: CPU flags that pick the matrix kernels (oneDNN, torch): two CPUs of one kernel family
#: (`cpu_capability`) with other flags rounded one run differently (docs/report.md).
_KERNEL_FLAGS = ("avx2", "fma", "avx_vnni", "avx512", "amx")
_CPUINFO = Path("/proc/cpuinfo")


def _cpu_model() -> dict[str, Any]:
    """`cpu_model` and the kernel-relevant `cpu_flags` from /proc/cpuinfo (Linux), else
    nothing: which machine made a run, where two of one kernel family differ."""
    try:
        text = _CPUINFO.read_text(errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
        if not line.strip() and fields:
            break  # the first processor describes them all
    flags = sorted(f for f in fields.get("flags", "").split() if f.startswith(_KERNEL_FLAGS))
    return {"cpu_model": fields.get("model name"), "cpu_flags": flags}
