"""Fit artifacts on disk: personas.json, gates.pt, fit.json (+ the score cache).

Each file records the settings it was made with; `prepare()` reuses a file only when
its settings equal the current ones, so re-running is free and a changed setting refits.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mop_bench.mop.personas import Persona

PERSONAS = "personas.json"
GATES = "gates.pt"
FIT = "fit.json"
SCORE_CACHE_DIR = "score_cache"


def normalise(obj: Any) -> Any:
    """The JSON round trip of `obj` (tuples become lists), for comparing settings."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(normalise(obj), sort_keys=True).encode()).hexdigest()[:16]


def write_json(path: Path, obj: Any) -> None:
    from mop_bench.store import write_json as atomic_write

    atomic_write(path, obj)


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read fit artifact: {exc}") from exc


def save_personas(path: Path, personas: list[Persona], settings: dict[str, Any]) -> None:
    write_json(path, {"settings": normalise(settings), "personas": [p.to_json() for p in personas]})


def load_personas(path: Path, settings: dict[str, Any] | None = None) -> list[Persona] | None:
    """The saved personas, or None when absent or made with other settings (if given)."""
    if not path.exists():
        return None
    data = read_json(path)
    if settings is not None and data.get("settings") != normalise(settings):
        return None
    try:
        return [Persona.from_json(row) for row in data["personas"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: malformed personas file: {exc}") from exc


def save_gates(path: Path, ckpt: dict[str, Any]) -> None:
    import os

    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def load_gates(path: Path) -> dict[str, Any]:
    """The checkpoint at `path`, read weights-only: a gates file is never unpickled as
    arbitrary objects, whatever torch's own error message suggests."""
    import pickle

    import torch

    try:
        ckpt = torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        # Not torch's message: it proposes weights_only=False, which would run any code
        # the file holds.
        raise ValueError(
            f"{path}: not a gates weights file ({type(exc).__name__}); it is damaged or "
            "was not written by mop-bench. Refit (run without --gates-from, or with "
            "--overwrite) or point --gates-from at a finished MoP run"
        ) from exc
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: not a gates checkpoint (it holds {type(ckpt).__name__!r} data)")
    return ckpt


def gates_digest(ckpt: dict[str, Any]) -> str:
    """Content hash of a gates checkpoint: its config and every tensor's bytes."""
    h = hashlib.sha256(json.dumps(normalise(ckpt["config"]), sort_keys=True).encode())
    for name in sorted(ckpt["state"]):
        tensor = ckpt["state"][name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tensor.dtype).encode())
        h.update(tensor.numpy().tobytes())
    return h.hexdigest()[:16]


def resolve_fit_dir(gates_from: Path) -> Path:
    """`<run>/fit/` of a run directory, or the fit directory itself."""
    path = Path(gates_from)
    for cand in (path / "fit", path):
        if (cand / FIT).is_file() and (cand / GATES).is_file():
            return cand
    raise FileNotFoundError(
        f"gates_from {path}: no {FIT} and {GATES} in {path / 'fit'} or {path}; "
        "point it at a finished MoP run directory"
    )
