"""`--set` and sweep settings: short aliases, dotted paths into `RunSpec`, and applying
them (values coerced to each field's type, so command-line strings work)."""

from __future__ import annotations

import typing
from dataclasses import fields, is_dataclass, replace
from typing import Any

from mop_bench.spec import RunSpec, _coerce

#: Short names accepted by `--set` and sweeps, mapped to dotted RunSpec paths.
ALIASES: dict[str, str] = {
    "n": "budget.n_samples",
    "samples": "budget.n_samples",
    "max_new_tokens": "budget.max_new_tokens",
    "temperature": "budget.temperature",
    "pool": "data.pool_size",
    "golden": "data.golden_size",
    "personas": "simulator.n_personas",
    "exemplars_per_prompt": "simulator.exemplars_per_prompt",
    "L": "simulator.exemplars_per_prompt",
    "prompt_style": "prompt.style",
    "style": "prompt.style",
    "top_m": "fit.top_m",
    "epochs": "fit.epochs",
    "lr": "fit.lr",
    "gate_lr": "fit.gate_lr",
    "n_train": "fit.n_train",
    "proj_dim": "fit.proj_dim",
    "model": "lm.model",
    "encoder": "encoder.model",
    "seed": "seed",
}


def field_paths(cls: type = RunSpec, prefix: str = "") -> list[str]:
    """All dotted paths of scalar fields settable with `--set` (for help and errors)."""
    out: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        tp = hints[f.name]
        if isinstance(tp, type) and is_dataclass(tp):
            out.extend(field_paths(tp, f"{prefix}{f.name}."))
        else:
            out.append(f"{prefix}{f.name}")
    return out


def resolve_path(key: str) -> str:
    """Map an alias or dotted path to a dotted path, with a did-you-mean error."""
    key = key.strip()
    path = ALIASES.get(key, key)
    known = field_paths()
    if path not in known:
        near = closest_settings(key, [*known, *ALIASES])
        hint = f" (did you mean {', '.join(map(repr, near))}?)" if near else ""
        raise KeyError(
            f"unknown setting {key!r}{hint}; `mop-bench ls settings` lists all {len(known)}"
        )
    return path


def closest_settings(key: str, names: list[str], n: int = 5) -> list[str]:
    """Up to `n` settings nearest to `key`, by the whole dotted path and by its last
    part (`epoch` finds `fit.epochs`); listing all ~80 on one line helped nobody."""
    import difflib

    tail = {name: name.rsplit(".", 1)[-1] for name in names}
    scored = []
    for name in names:
        score = max(
            difflib.SequenceMatcher(None, key, name).ratio(),
            difflib.SequenceMatcher(None, key.rsplit(".", 1)[-1], tail[name]).ratio(),
        )
        if score >= 0.6:
            scored.append((-score, name))
    scored.sort()
    # Near-misses only: a shared `budget.` prefix alone makes every budget field "close".
    return [name for score, name in scored[:n] if score <= scored[0][0] + 0.15]


def with_overrides(spec: RunSpec, overrides: dict[str, Any]) -> RunSpec:
    """Return `spec` with dotted-path (or alias) overrides applied; values are coerced
    to the field's type, so strings from the command line work."""
    for key, value in overrides.items():
        path = resolve_path(key)
        spec = _set_path(spec, path.split("."), value)
    return spec


def _set_path(obj: Any, parts: list[str], value: Any) -> Any:
    name = parts[0]
    if len(parts) == 1:
        tp = typing.get_type_hints(type(obj))[name]
        return replace(obj, **{name: _coerce(value, tp, name)})
    return replace(obj, **{name: _set_path(getattr(obj, name), parts[1:], value)})
