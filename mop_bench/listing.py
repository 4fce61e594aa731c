"""`mop-bench ls settings | metrics | runs`: what can be set, measured and found.

Each setting's one-line description is the first sentence of its field docstring in
`mop_bench/spec.py` or `mop_bench/prompt_spec.py` (read with `ast`, so the docs live in
one place: the dataclasses).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import re
import textwrap
import typing
from functools import cache
from pathlib import Path
from typing import Any

#: Built-in metrics: (higher is better, one line). `heldout_nll` is computed by the
#: scoring stage from the simulator's fitted likelihood, not by a registered function.
METRIC_INFO: dict[str, tuple[bool, str]] = {
    "fid": (False, "Frechet distance between real and synthetic embedding distributions"),
    "mauve": (True, "MAUVE: area under the divergence curve of quantised embeddings"),
    "kl_cosine": (False, "KL(real || synthetic) of pairwise-cosine histograms (diversity)"),
    "heldout_nll": (
        False,
        "nats/token of held-out real texts under the fitted simulator (MoP family; "
        "not for real or literature generators)",
    ),
    "copy_rate": (False, "share of synthetic texts copying a pool text (cosine or n-gram)"),
    "format": (False, "share of texts echoing prompt markup, replying as an assistant, empty"),
    "downstream_f1": (True, "golden-set macro-F1 of a classifier trained on the synthetic texts"),
    "label_fidelity": (True, "accuracy of a real-pool classifier on the requested labels"),
    "per_label": (False, "mean within-label FID"),
}


# ------------------------------------------------------------------ settings


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the string literal that follows the field in the class body."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    out: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            out[node.target.id] = after.value.value
    return out


def first_sentence(doc: str, limit: int = 110) -> str:
    """The first sentence of `doc` on one line, cut at `limit` characters."""
    text = " ".join(doc.split())
    # a period ends a sentence when an upper-case word follows, but not after "e.g."
    match = re.search(r"(?<!e\.g)(?<!i\.e)\.\s+(?=[A-Z`])", text)
    if match:
        text = text[: match.start() + 1]
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def settings_rows() -> list[tuple[str, str, str]]:
    """(dotted path, default, description) of every `--set` setting, in spec order."""
    from mop_bench.spec import RunSpec, SimulatorSpec

    default = RunSpec(task="TASK", simulator=SimulatorSpec(name="SIM"))
    rows = []
    for path, cls, name in _leaves(RunSpec):
        value: Any = default
        for part in path.split("."):
            value = getattr(value, part)
        full = field_docs(cls).get(name, "")
        doc = first_sentence(full)
        choices = _choices(cls, name)
        if choices and not all(c in full for c in choices):  # the docstring names them
            doc = f"{doc} (one of: {' | '.join(choices)})".strip()
        rows.append((path, _show(value), doc))
    return rows


def _leaves(cls: type, prefix: str = "") -> list[tuple[str, type, str]]:
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            out.extend(_leaves(tp, f"{prefix}{f.name}."))
        else:
            out.append((f"{prefix}{f.name}", cls, f.name))
    return out


def _choices(cls: type, name: str) -> list[str]:
    tp = typing.get_type_hints(cls)[name]
    return [str(a) for a in typing.get_args(tp)] if typing.get_origin(tp) is typing.Literal else []


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        text = ",".join(_show(v) for v in value) or "()"
    elif isinstance(value, str):
        text = repr(value) if value == "" or value != value.strip() or "\n" in value else value
    else:
        text = str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def print_settings() -> None:
    from mop_bench.overrides import ALIASES
    from mop_bench.presets import PRESETS

    aliases: dict[str, list[str]] = {}
    for alias, path in ALIASES.items():
        if alias != path:
            aliases.setdefault(path, []).append(alias)
    print(
        "settings (--set KEY=VALUE, or KEY: VALUE in a --config file); the default is the "
        "code's, a preset may change it (bracketed):"
    )
    for path, default, doc in settings_rows():
        extra = [f"{p} {_show(values[path])}" for p, values in PRESETS.items() if path in values]
        notes = []
        if extra:
            notes.append("presets: " + ", ".join(extra))
        if path in aliases:
            notes.append("alias: " + ", ".join(aliases[path]))
        tail = f" [{'; '.join(notes)}]" if notes else ""
        print(f"  {path:34s} {default:12s} {doc}{tail}")


# ------------------------------------------------------------------ metrics


def print_metrics() -> None:
    from mop_bench.metrics import METRICS

    # the built-in ones in report order, then metrics registered by the user
    names = [*METRIC_INFO, *(n for n in METRICS.names() if n not in METRIC_INFO)]
    print(f"{'metric':16s} better  what")
    for name in names:
        hib, what = METRIC_INFO.get(name, (None, "user metric (its result says which way)"))
        arrow = "?" if hib is None else "↑" if hib else "↓"
        print(f"{name:16s} {arrow:7s} {what}")


# ------------------------------------------------------------------ runs


def print_runs(results_dir: Path) -> int:
    """One line per run directory under `results_dir`: task, simulator, fingerprint,
    status and creation time; rc 0, also when there are none (said on stderr)."""
    import sys

    from mop_bench.run_status import find_runs, run_state

    if not results_dir.is_dir():
        raise FileNotFoundError(f"results folder {results_dir} does not exist")
    states = [run_state(d) for d in find_runs(results_dir)]
    if not states:
        print(
            f"no runs under {results_dir} (a run is a folder holding config.json)", file=sys.stderr
        )
        return 0
    print(f"{'task':12s} {'simulator':26s} {'fingerprint':12s} {'created':26s} status")
    for s in states:
        print(
            f"{s.task or s.run_dir.parent.name:12s} {s.simulator or '?':26s} "
            f"{s.fingerprint:12s} {s.created or '?':26s} {s.status}"
        )
    counts: dict[str, int] = {}
    for s in states:
        key = s.status.split(" ", 1)[0]
        counts[key] = counts.get(key, 0) + 1
    print(
        f"{len(states)} run{'s' * (len(states) != 1)}: "
        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    )
    return 0
