"""The allowed range of every numeric setting, and the named options (LM backend, server
address, model names, dtype), checked once when a run spec is built.

A setting outside its range used to surface late and far away (`budget.chunk_size=0`
divided by zero deep in the runner, `fit.lr=nan` trained a model of NaNs), or not at
all. The table below is declarative, one line per dotted path, so a new setting gets
its range by adding one line; `tests/test_guards.py` fails if a numeric setting has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    """`lo <= value <= hi` (either bound optional, each optionally strict); a tuple
    setting must be non-empty and every item must obey the rule."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def describe(self) -> str:
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {self.lo:g}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='} {self.hi:g}")
        return " and ".join(parts) or "a finite number"

    def ok(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return not (self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi))


def at_least(lo: float) -> Rule:
    return Rule(lo=lo)


def above(lo: float) -> Rule:
    return Rule(lo=lo, lo_open=True)


def between(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> Rule:
    return Rule(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)


#: Dotted RunSpec path -> allowed range. Add one line per new numeric setting.
RANGES: dict[str, Rule] = {
    "seed": at_least(0),
    "budget.n_samples": at_least(1),
    "budget.max_new_tokens": at_least(1),
    "budget.temperature": at_least(0),  # 0 = greedy decoding
    "budget.top_p": between(0, 1, lo_open=True),
    "budget.chunk_size": at_least(1),
    "data.pool_size": at_least(1),
    "data.golden_size": at_least(1),
    "simulator.n_personas": at_least(1),
    "simulator.exemplars_per_prompt": at_least(1),
    "metrics.kl_bins": at_least(2),
    "metrics.kl_max_pairs": at_least(1),
    "metrics.kl_epsilon": above(0),
    "metrics.mauve_seeds": at_least(0),
    "metrics.mauve_scaling": above(0),
    "metrics.copy_cosine": between(0, 1, lo_open=True),
    "metrics.copy_ngram": at_least(1),
    "fit.top_m": at_least(1),
    "fit.n_train": at_least(1),
    "fit.epochs": at_least(0),
    "fit.lr": above(0),
    "fit.gate_lr": above(0),
    "fit.proj_dim": at_least(1),
    "fit.temperature_grid": above(0),
    "fit.score_max_tokens": at_least(1),
    "fit.persona_cluster_samples": at_least(1),
    "fit.persona_max_new_tokens": at_least(1),
    "fit.train_batch_size": at_least(1),
    "prompt.exemplar_words": at_least(1),
    "fit.inner_steps": at_least(1),
    "fit.max_temperature": above(0),
    "fit.tau_init": above(0),
    "fit.candidates": at_least(1),
    "fit.explore": between(0, 1),
    "fit.gate_scale_max": above(1),
    "fit.gate_entropy": at_least(0),
    "metrics.heldout_n": at_least(1),
    "metrics.heldout_samples": at_least(1),
    "metrics.heldout_block": at_least(1),
    "simulator.picle.steps": at_least(1),
    "simulator.picle.batch_size": at_least(1),
    "simulator.picle.rank": at_least(1),
    "simulator.picle.alpha": above(0),
    "simulator.picle.lr": above(0),
    "simulator.picle.weight_decay": at_least(0),
    "simulator.picle.max_tokens": at_least(2),
}


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def range_errors(spec: Any) -> list[str]:
    """One message per setting of `spec` (a RunSpec) that is outside its range."""
    errors = []
    for path, rule in RANGES.items():
        try:
            value = _get(spec, path)
        except AttributeError:
            continue  # a setting this spec does not have (the table may run ahead)
        if isinstance(value, tuple | list):
            bad = [v for v in value if not rule.ok(v)]
            if not value:
                errors.append(f"{path} must not be empty")
            elif bad:
                errors.append(f"{path} items must be {rule.describe()}, got {bad[0]!r}")
        elif not rule.ok(value):
            errors.append(f"{path} must be {rule.describe()}, got {value!r}")
    return errors


def option_errors(spec: Any) -> list[str]:
    """One message per named option of `spec` that cannot work: an unknown LM backend,
    the openai backend without a server address, a malformed address, an empty model
    name, an unknown dtype. These used to surface only after the data was loaded and
    the pool encoded (a minute or more); checked here, they fail at once."""
    from urllib.parse import urlsplit

    from mop_bench.lm.loading import DTYPES
    from mop_bench.lm.registry import LM_BACKENDS
    from mop_bench.registry import suggest

    errors = []
    lm, encoder = spec.lm, spec.encoder
    backends = LM_BACKENDS.names()
    if lm.backend not in backends:
        errors.append(
            f"lm.backend (--backend) {lm.backend!r} is not a backend"
            f"{suggest(str(lm.backend), backends)}; choose one of {', '.join(backends)}"
        )
    # `real` sends nothing to a server (it only length-matches with the tokenizer).
    if lm.backend == "openai" and not lm.base_url and spec.simulator.kind != "real":
        errors.append(
            "the openai backend needs the server's address: --base-url (lm.base_url), "
            "e.g. http://127.0.0.1:8000/v1"
        )
    if lm.base_url:
        try:
            url = urlsplit(lm.base_url)
            ok = url.scheme in ("http", "https") and bool(url.hostname) and url.port != 0
        except ValueError:  # a port that is not a number, a malformed IPv6 host
            ok = False
        if not ok:
            errors.append(
                f"lm.base_url (--base-url) {lm.base_url!r} is not an http(s) URL with a "
                "host, e.g. http://127.0.0.1:8000/v1"
            )
    for path, value in (("lm.model (--model)", lm.model), ("encoder.model", encoder.model)):
        if not str(value or "").strip():
            errors.append(f"{path} must name a model, got {value!r}")
    if lm.dtype not in DTYPES:
        errors.append(f"lm.dtype must be one of {', '.join(DTYPES)}, got {lm.dtype!r}")
    return errors


#: The fields each prompt template may use (`mop_bench.prompt_spec`).
PROMPT_TEMPLATE_FIELDS = {
    "persona_line": {"who", "persona"},
    "persona_preamble": {"who", "persona"},
    "persona_tag": {"persona"},
    "exemplar_tag": {"context", "text"},
}


def prompt_errors(spec: Any) -> list[str]:
    """One message per prompt template that could not be filled (a stray or unknown
    placeholder would otherwise fail mid-run, after the fit)."""
    from mop_bench.data._card import template_fields

    errors = []
    prompt = getattr(spec, "prompt", None)
    if prompt is None:
        return errors
    for name, allowed in PROMPT_TEMPLATE_FIELDS.items():
        template = getattr(prompt, name)
        try:
            used = set(template_fields(template))
        except ValueError as exc:
            errors.append(f"prompt.{name}: {exc}")
            continue
        if used - allowed:
            errors.append(
                f"prompt.{name} {template!r} uses {sorted(used - allowed)}; it may use "
                f"{', '.join('{' + f + '}' for f in sorted(allowed))}"
            )
    return errors


def template_errors(spec: Any) -> list[str]:
    """A template simulator's settings, checked when the spec is built."""
    sim = getattr(spec, "simulator", None)
    if sim is None or sim.kind != "template":
        return []
    from mop_bench.literature.settings import TemplateSettings

    try:
        TemplateSettings.from_mapping(dict(sim.template), f"simulator {sim.name!r}")
    except ValueError as exc:
        return [str(exc)]
    return []


def simulator_errors(spec: Any) -> list[str]:
    """One message per simulator switch that cannot work with the others: PICLe's
    selection (`exemplar_selection: picle`) chooses the `fixed` exemplar sets of a MoP
    simulator and fine-tunes a LoRA on the model in process."""
    sim = getattr(spec, "simulator", None)
    if getattr(sim, "exemplar_selection", "seeded") != "picle":
        return []
    errors = []
    if sim.kind != "mop":
        errors.append(
            f"simulator.exemplar_selection: picle applies to MoP simulators (kind: mop), "
            f"not kind: {sim.kind}"
        )
    elif sim.exemplars != "fixed":
        errors.append(
            "simulator.exemplar_selection: picle chooses the fixed exemplar sets; it needs "
            f"exemplars: fixed, got exemplars: {sim.exemplars} (use exemplar_selection: "
            "seeded, or exemplars: fixed as in baselines/picle.yaml)"
        )
    if spec.lm.backend != "transformers":
        errors.append(
            "simulator.exemplar_selection: picle fine-tunes a LoRA on the LM in process; it "
            f"needs lm.backend (--backend) transformers, got {spec.lm.backend!r}"
        )
    return errors


def validate_spec(spec: Any) -> None:
    """Raise one ValueError naming every out-of-range setting or unusable option of
    `spec`, before any data is read."""
    errors = (
        range_errors(spec)
        + option_errors(spec)
        + prompt_errors(spec)
        + simulator_errors(spec)
        + template_errors(spec)
    )
    if errors:
        raise ValueError("invalid settings: " + "; ".join(errors))
