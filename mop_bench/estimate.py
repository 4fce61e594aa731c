"""What a run will cost before it starts: LM calls and tokens, wall time, disk.

A small model of the run, not a measurement. LM calls are counted from the spec:
generation (n_samples x max_new_tokens), persona synthesis (n_personas x
persona_max_new_tokens), the fit's candidate scorings (per training example at most
epochs x candidates pairs, never more than the pairs it may choose from, each up to
score_max_tokens) and the held-out likelihood's (heldout_n x heldout_samples). Tokens
are counted at their caps where a stop string or EOS usually ends a text earlier, so
the estimate errs high (about 15-25% on the reference run). Seconds are tokens over
rates: new tokens/s while generating and scored tokens/s while scoring, each with the
prompt's processing included, so prompt tokens (reported) add no time of their own.

The rates are this machine's when the results folder holds finished runs of the same
LM and backend on the same kind of machine (their timing.json), else those of the
reference run of this kind of machine recorded in benchmarks/README.md (2-core AVX2
and AVX512-BF16 CPUs; elsewhere the AVX2 run's rates scaled by a timed matrix product,
`mop_bench.rates`: with another LM or on a GPU, only an order of magnitude until runs
there record their own rates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mop_bench.rates import REFERENCE_RATES, Rates
from mop_bench.token_cut import golden_texts_on_disk

#: SmolLM2's BPE tokens per whitespace-separated English word (reviews, news: 1.3-1.4).
TOKENS_PER_WORD = 1.35
#: Fixed costs in seconds: loading the LM (a cached dequantized copy), loading the
#: encoder, the metrics (MAUVE's k-means dominates) and the report.
LM_LOAD_S, ENCODER_LOAD_S, METRICS_S, REPORT_S = 5.0, 5.0, 15.0, 3.0
#: Bytes on disk: one generated row beyond its text (details, context), one score-cache
#: entry, and the run's small JSON files and report page.
ROW_BYTES, SCORING_BYTES, FIXED_BYTES = 1500, 300, 600_000


@dataclass
class Work:
    """One stage's LM (or encoder) work and its estimated seconds."""

    stage: str
    calls: int
    tokens: int
    """New tokens (generation) or scored tokens (scoring); texts for encoding."""
    seconds: float
    unit: str = "tokens"
    prompt_tokens: int = 0
    note: str = ""


@dataclass
class CostEstimate:
    items: list[Work] = field(default_factory=list)
    rates: Rates = REFERENCE_RATES
    disk_bytes: int = 0
    """The run directory's size when done."""
    cache_bytes: int = 0
    """Embedding-cache growth (outside the run directory)."""
    reused: bool = False
    """The run directory holds a finished run: nothing to compute."""
    rescored: bool = False
    """...but its metrics would be computed again (their settings changed)."""

    @property
    def seconds(self) -> float:
        return sum(w.seconds for w in self.items)

    def tokens(self, unit: str) -> int:
        return sum(w.tokens for w in self.items if w.unit == unit)

    @property
    def prompt_tokens(self) -> int:
        return sum(w.prompt_tokens for w in self.items)

    def summary(self) -> str:
        """One line: time, LM tokens and disk."""
        if self.reused:
            again = "; its metrics are computed again" if self.rescored else ""
            return f"nothing to compute: a finished run is reused (no LM work){again}"
        new, scored = self.tokens("new tokens"), self.tokens("tokens")
        parts = [f"{_count(new)} new (+{_count(self.prompt_tokens)} prompt)"] if new else []
        parts += [f"{_count(scored)} scored"] if scored else []
        lm = f"{' and '.join(parts)} LM tokens" if parts else "no LM tokens"
        return (
            f"about {duration(self.seconds)}, {lm}, {size(self.disk_bytes)} on disk "
            f"(+{size(self.cache_bytes)} embedding cache)"
        )

    def lines(self) -> list[str]:
        """A small table: one line per stage, then the total and the rates assumed."""
        out = []
        for w in self.items:
            count = f"{_count(w.tokens)} {w.unit}" if w.tokens else ""
            if w.prompt_tokens:
                count += f" (+{_count(w.prompt_tokens)} prompt)"
            note = f"  {w.note}" if w.note else ""
            out.append(f"  {w.stage:18s} {count:34s} {duration(w.seconds):>8s}{note}")
        out.append(f"  {'total':18s} {self.summary()}")
        out.append(f"  rates assumed: {self.rates.describe()}")
        return out


def _count(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e4:
        return f"{n / 1e3:.0f}k"
    return f"{n:,.0f}"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


# ------------------------------------------------------------------ the model


def _tokens(text: str) -> int:
    return max(1, round(len(text.split()) * TOKENS_PER_WORD))


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


@dataclass
class _Shape:
    """What the task data says about sizes (first 500 texts of each set)."""

    n_labels: int
    pool_size: int
    golden_size: int
    pool_tokens: list[int]
    golden_tokens: list[int]
    context_bytes: float
    header_tokens: int


def _shape(task_data: Any) -> _Shape:
    card = task_data.card
    header = card.completion_header or card.context_template
    return _Shape(
        n_labels=max(1, len(card.label_names)),
        pool_size=len(task_data.pool),
        golden_size=len(task_data.golden),
        pool_tokens=[_tokens(e.text) for e in task_data.pool[:500]],
        golden_tokens=[_tokens(e.text) for e in task_data.golden[:500]],
        context_bytes=_mean([len(e.context) for e in task_data.golden[:500]], 80.0),
        header_tokens=_tokens(header) + 4,  # its fields fill in a few words
    )


def _capped(tokens: list[int], cap: int) -> float:
    return _mean([min(cap, t) for t in tokens], cap)


def estimate_cost(
    spec: Any,
    task_data: Any,
    *,
    rates: Rates = REFERENCE_RATES,
    encoder: Any = None,
    state: Any = None,
    transfer: bool = False,
) -> CostEstimate:
    """The cost of `spec`'s run on `task_data`. `encoder` (an unloaded
    `mop_bench.embed.Encoder`) lets cached embeddings count as free; `state` (a
    `run_status.RunState`) removes work an existing run directory already holds;
    `transfer`: gates come from another run (`--gates-from`), so nothing is fitted."""
    sim, budget, fit = spec.simulator, spec.budget, spec.fit
    shape = _shape(task_data)
    est = CostEstimate(rates=rates)
    if state is not None and state.exists and state.scored and state.failed is None:
        est.items.append(Work("report", 0, 0, REPORT_S, note="a finished run: reused"))
        est.reused = True
        est.rescored = bool(state.rescore)
        return est
    uses_lm = sim.kind in ("mop", "template")
    prepared = transfer or (state is not None and state.fitted)
    # a resumed run regenerates whole chunks (mop_bench/store.py)
    done = state.chunks_done * budget.chunk_size if state is not None and state.exists else 0
    todo = max(0, budget.n_samples - done)
    if uses_lm and (todo > 0 or not prepared):
        est.items.append(Work("load the LM", 1, 0, LM_LOAD_S))
    if sim.kind == "mop":
        _mop_work(est, spec, shape, prepared, state)
    elif sim.kind == "template":
        _template_work(est, spec, shape, task_data.card.name, prepared)
    new = budget.max_new_tokens
    if todo > 0 and uses_lm:
        prompt = _prompt_tokens(spec, shape) if sim.kind == "mop" else 0
        if sim.kind == "template":
            prompt, new = _template_prompt(spec, shape, task_data.card.name)
        est.items.append(
            Work(
                "generation",
                todo,
                todo * new,
                todo * new / rates.generate,
                unit="new tokens",
                prompt_tokens=todo * prompt,
                note=f"{todo:,} texts x <= {new} new tokens",
            )
        )
    # Encoding: the golden set and the pool (gating features and the metrics), the
    # synthetic texts; what the embedding cache holds already is free.
    # the golden texts as the metrics will ask the cache for them (cut to the budget);
    # without the tokenizer on disk no run here has cut them yet: all to encode
    golden = golden_texts_on_disk(spec, task_data.golden)
    texts = (golden or []) + [e.text for e in task_data.pool]
    distinct = len(set(texts)) + (len(task_data.golden) if golden is None else 0)
    counter = getattr(encoder, "cached_count", None)  # a stand-in encoder may have none
    cached = counter(texts) if counter is not None else 0
    to_encode = distinct - cached + budget.n_samples
    est.items.append(
        Work(
            "encoding",
            to_encode,
            to_encode,
            ENCODER_LOAD_S + to_encode / rates.encode,
            unit="texts",
            note=f"{cached:,} of the {distinct:,} real texts cached",
        )
    )
    est.items.append(Work("metrics and report", 0, 0, METRICS_S + REPORT_S))
    dim = 384 if "MiniLM-L6" in spec.encoder.model else 768
    scorings = sum(w.calls for w in est.items if w.stage in ("fit scoring", "held-out NLL"))
    est.disk_bytes = int(
        budget.n_samples * (shape.context_bytes + 6 * budget.max_new_tokens + ROW_BYTES)
        + (budget.n_samples + shape.golden_size) * dim * 4
        + scorings * SCORING_BYTES
        + (3 * fit.proj_dim * dim * 4 if sim.kind == "mop" else 0)
        + FIXED_BYTES
    )
    est.cache_bytes = int(to_encode * (dim * 4 + 250))
    return est


def run_cost(
    spec: Any,
    task_data: Any,
    run_dir: Any,
    *,
    results_dir: Any,
    overwrite: bool = False,
    encoder: Any = None,
    transfer: bool = False,
    rates: Rates | None = None,
    runtime: dict[str, Any] | None = None,
) -> CostEstimate:
    """`estimate_cost` for the run in `run_dir` (what it holds already is not counted
    again, unless `overwrite`), at the rates recorded under `results_dir` by runs on
    this kind of machine (`runtime`, `mop_bench.rates.recorded_rates`)."""
    from mop_bench.rates import recorded_rates
    from mop_bench.run_status import RunState, run_state

    state = RunState(run_dir=run_dir, exists=False) if overwrite else run_state(run_dir, spec)
    return estimate_cost(
        spec,
        task_data,
        rates=rates or recorded_rates(results_dir, spec.lm, runtime=runtime),
        encoder=encoder,
        state=state,
        transfer=transfer,
    )


def _pairs_per_row(spec: Any, shape: _Shape) -> int:
    """(persona, exemplar set) pairs one example may be scored under."""
    sim = spec.simulator
    personas = sim.n_personas if sim.personas != "none" else 1
    exemplars = 1
    if sim.exemplars == "gated":
        by_label = "label" in sim.exemplar_match and shape.n_labels > 1
        exemplars = max(1, shape.pool_size // (shape.n_labels if by_label else 1))
    return personas * exemplars


def _mop_work(est: CostEstimate, spec: Any, shape: _Shape, prepared: bool, state: Any) -> None:
    sim, fit, metrics, rates = spec.simulator, spec.fit, spec.metrics, est.rates
    pairs = _pairs_per_row(spec, shape)
    if not prepared and sim.personas == "synthesized":
        n, cap = sim.n_personas, fit.persona_max_new_tokens
        est.items.append(
            Work("persona synthesis", n, n * cap, n * cap / rates.generate, unit="new tokens")
        )
    if not prepared and sim.exemplar_selection == "picle":
        p = sim.picle
        # LoRA steps cost about three scoring passes (forward, backward) per token; then
        # every pool text is scored under the base model and under the LoRA.
        train = shape.n_labels * p.steps * p.batch_size * p.max_tokens * 3
        scored = 2 * shape.pool_size * _capped(shape.pool_tokens, p.max_tokens)
        calls = shape.n_labels * p.steps + 2 * shape.pool_size
        tokens = int(train + scored)
        est.items.append(Work("PICLe selection", calls, tokens, tokens / rates.score))
    learned = sim.gating == "learned" and (pairs > 1)
    if not prepared and (learned or sim.temperature != "fixed"):
        n_train = min(fit.n_train, shape.pool_size)
        per_epoch = fit.candidates if fit.selection == "sampled" else fit.top_m
        per_row = min(fit.epochs * min(per_epoch, pairs), pairs)  # cached across epochs
        calls = n_train * per_row
        tokens = int(calls * _capped(shape.pool_tokens, fit.score_max_tokens))
        est.items.append(
            Work(
                "fit scoring",
                calls,
                tokens,
                tokens / rates.score,
                note=f"{n_train} examples x <= {per_row} pairs",
            )
        )
    if state is None or not state.heldout:
        n = min(metrics.heldout_n, shape.golden_size)
        per_row = min(metrics.heldout_samples, pairs)
        calls = n * per_row
        tokens = int(calls * _capped(shape.golden_tokens, fit.score_max_tokens))
        est.items.append(
            Work(
                "held-out NLL",
                calls,
                tokens,
                tokens / rates.score,
                note=f"{n} examples x {per_row} pair(s)",
            )
        )


def _prompt_tokens(spec: Any, shape: _Shape) -> int:
    """A MoP-family generation prompt: L exemplars under their headers, the request's
    header, a persona line when shown, a chat template's instruction."""
    sim, prompt = spec.simulator, spec.prompt
    exemplar_words = _mean([t / TOKENS_PER_WORD for t in shape.pool_tokens], 100.0)
    exemplar = min(prompt.exemplar_words, exemplar_words) * TOKENS_PER_WORD
    shown = sim.exemplars_per_prompt if sim.exemplars != "none" else 0
    persona = 20 if sim.personas != "none" and prompt.persona_placement != "none" else 0
    chat = 40 if prompt.chat else 0
    return int(shown * (shape.header_tokens + exemplar) + shape.header_tokens + persona + chat)


def _template_settings(spec: Any) -> Any:
    from mop_bench.literature.settings import TemplateSettings

    return TemplateSettings.from_mapping(spec.simulator.template, spec.simulator.name)


def _template_prompt(spec: Any, shape: _Shape, task: str) -> tuple[int, int]:
    """(prompt tokens, new tokens) of one request of a literature generator."""
    s = _template_settings(spec)
    cap = spec.budget.max_new_tokens
    new = min(s.exact_tokens, cap) if s.exact_tokens else cap
    words = s.for_task(task).prompt if task in s.prompts else ""
    prompt = _tokens(words) + (40 if s.chat else 0)
    if s.demos == "own":
        prompt += int(s.demos_per_prompt * s.demo_prob * (new + 10))
    return prompt, new


def _template_work(est: CostEstimate, spec: Any, shape: _Shape, task: str, prepared: bool) -> None:
    s = _template_settings(spec)
    if s.contexts == "generated" and not prepared:
        # ZeroGen's stage x1: enough contexts for `samples_per_context` requests per
        # context and label (labels drawn balanced, hence n / labels of the largest).
        need = math.ceil(spec.budget.n_samples / shape.n_labels)
        n = max(1, math.ceil(need / s.samples_per_context))
        tokens = n * s.context_tokens
        est.items.append(
            Work("contexts", n, tokens, tokens / est.rates.generate, unit="new tokens")
        )
    if s.max_attempts > 1:
        est.items.append(
            Work(
                "redraws",
                0,
                0,
                0.0,
                note=f"texts the filters reject are drawn again, up to {s.max_attempts}x "
                "(not counted: it depends on the LM)",
            )
        )
