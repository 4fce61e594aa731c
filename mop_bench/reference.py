"""The Mixture-of-Personas paper's published numbers, for reports to show beside ours.

Source: Bui et al., "Mixture-of-Personas Language Models for Population Simulation",
Findings of ACL 2025 (arXiv 2504.05019): Table 1 (Llama-3-8B-Instruct, 5,000 samples,
all-mpnet-base-v2 features), Table 4 (ablations on AGNews, secondary source) and
Table 2 (downstream F1). Restated in /work/shared/REFERENCE.md section 6.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

CITATION = (
    'Bui et al., "Mixture-of-Personas Language Models for Population Simulation", '
    "Findings of ACL 2025 (arXiv 2504.05019)"
)

NOTE = (
    "Absolute numbers depend on the sentence encoder (paper: all-mpnet-base-v2), on "
    "whether embeddings are L2-normalised (the paper's FID values above 4 mean its "
    "features were not), on the generator LM (paper: Llama-3-8B-Instruct) and on the "
    "sample size (paper: 5,000 per method). Judge a reproduction by the ordering of "
    "methods and the relative gaps, not by the raw values."
)

#: Metrics the paper reports in Tables 1 and 4, with their direction.
PAPER_METRICS: dict[str, bool] = {"fid": False, "mauve": True, "kl_cosine": False}

#: Our task card names -> the paper's column names.
_TASK_ALIASES = {"agnews": "AGNews", "yelp": "Yelp", "sst2": "SST-2", "imdb": "IMDB"}

# (FID, MAUVE, KL-cosine) per method and task.
TABLE1: dict[str, dict[str, tuple[float, float, float]]] = {
    "ZeroGen": {
        "AGNews": (3.535, 0.587, 0.241),
        "Yelp": (1.888, 0.682, 0.173),
        "SST-2": (3.965, 0.550, 0.800),
        "IMDB": (3.529, 0.537, 0.195),
    },
    "ProGen": {
        "AGNews": (1.980, 0.767, 0.103),
        "Yelp": (2.975, 0.586, 1.332),
        "SST-2": (4.736, 0.615, 2.023),
        "IMDB": (3.305, 0.612, 1.045),
    },
    "AttrPrompt": {
        "AGNews": (2.193, 0.648, 0.150),
        "Yelp": (1.816, 0.651, 0.143),
        "SST-2": (3.878, 0.555, 1.393),
        "IMDB": (2.505, 0.549, 0.492),
    },
    "PICLe": {
        "AGNews": (2.200, 0.740, 0.490),
        "Yelp": (1.769, 0.702, 0.265),
        "SST-2": (3.531, 0.562, 3.180),
        "IMDB": (2.870, 0.609, 1.459),
    },
    "MoP": {
        "AGNews": (0.951, 0.871, 0.069),
        "Yelp": (0.948, 0.826, 0.067),
        "SST-2": (1.131, 0.855, 0.319),
        "IMDB": (0.771, 0.865, 0.039),
    },
}

# Table 4 (AGNews only).
TABLE4_AGNEWS: dict[str, tuple[float, float, float]] = {
    "MoP": (0.951, 0.871, 0.069),
    "w/o exemplars": (3.694, 0.552, 0.560),
    "w/o persona synthesizer": (1.674, 0.807, 0.174),
    "random personas": (1.814, 0.622, 0.061),
}

# Table 2: downstream F1 of a classifier trained on 5,000 synthetic samples.
TABLE2_F1: dict[str, dict[str, float]] = {
    "MoP": {"AGNews": 0.871, "Yelp": 0.867, "SST-2": 0.845, "IMDB": 0.865},
    "real data": {"AGNews": 0.903, "Yelp": 0.896, "SST-2": 0.919, "IMDB": 0.877},
}


@dataclass(frozen=True)
class ReferenceRow:
    """One published row: a method's scores on one task."""

    method: str
    task: str
    source: str
    fid: float
    mauve: float
    kl_cosine: float

    def value(self, metric: str) -> float:
        if metric not in PAPER_METRICS:
            raise KeyError(
                f"the paper reports no {metric!r}; it reports {', '.join(PAPER_METRICS)}"
            )
        return float(getattr(self, metric))


def paper_task(task: str) -> str | None:
    """The paper's column for one of our task names (ag_news -> AGNews), or None."""
    key = re.sub(r"[^a-z0-9]", "", task.lower())
    return _TASK_ALIASES.get(key)


def table1_rows(task: str) -> list[ReferenceRow]:
    """Table 1 rows for a task (empty when the paper did not evaluate it)."""
    col = paper_task(task)
    if col is None:
        return []
    return [ReferenceRow(method, col, "Table 1", *scores[col]) for method, scores in TABLE1.items()]


def ablation_rows() -> list[ReferenceRow]:
    """Table 4 rows (the paper ran its ablations on AGNews only)."""
    return [ReferenceRow(m, "AGNews", "Table 4", *s) for m, s in TABLE4_AGNEWS.items()]


def downstream_f1(task: str) -> dict[str, float]:
    """Table 2 F1 for MoP and for real training data on this task ({} if not in the paper)."""
    col = paper_task(task)
    if col is None:
        return {}
    return {method: row[col] for method, row in TABLE2_F1.items()}


def ordering(rows: list[ReferenceRow], metric: str) -> list[str]:
    """Methods best first under `metric`."""
    hib = PAPER_METRICS[metric]
    return [r.method for r in sorted(rows, key=lambda r: r.value(metric), reverse=hib)]


def relative_gap(ours: float, best_other: float) -> float:
    """(ours - best_other) / |best_other|: -0.5 means half the other's value."""
    if best_other == 0:
        raise ValueError("relative gap against a zero value is undefined")
    return (ours - best_other) / abs(best_other)


def paper_gap(task: str, metric: str) -> float | None:
    """Table 1's relative gap of MoP against the best of the four baselines."""
    rows = table1_rows(task)
    if not rows:
        return None
    hib = PAPER_METRICS[metric]
    others = [r.value(metric) for r in rows if r.method != "MoP"]
    best = max(others) if hib else min(others)
    mop = next(r.value(metric) for r in rows if r.method == "MoP")
    return relative_gap(mop, best)


def paper_method_for(simulator: dict[str, Any]) -> str | None:
    """Which paper row (Table 1/4) a simulator spec (RunSpec.simulator as JSON) reproduces.

    Decided by the switches, not the name, so a renamed config still pairs correctly.
    """
    if simulator.get("kind", "mop") != "mop":
        return None
    personas = simulator.get("personas")
    exemplars = simulator.get("exemplars")
    if simulator.get("gating") != "learned":
        return None  # uniform gating is our own ablation, not in the paper
    if personas == "synthesized" and exemplars == "gated":
        return "MoP"
    if personas == "synthesized" and exemplars == "none":
        return "w/o exemplars"
    if personas == "keywords" and exemplars == "gated":
        return "w/o persona synthesizer"
    if personas == "random" and exemplars == "gated":
        return "random personas"
    return None
