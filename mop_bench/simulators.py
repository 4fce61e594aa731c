"""Simulators: the `real` calibration and every MoP configuration in `baselines/`.

A simulator is built from its declarative spec plus the run's inputs, may fit itself
once (`prepare`), then turns contexts into generations chunk by chunk. The runner never
knows which one it holds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mop_bench.registry import Registry, cards_dir
from mop_bench.seeds import sample_seed
from mop_bench.spec import RunSpec, SimulatorSpec, _from_json
from mop_bench.types import Context, Generation
from mop_bench.yaml_load import load_yaml

SIMULATORS: Registry[SimulatorSpec] = Registry("simulator")


def load_simulator_file(path: Path) -> SimulatorSpec:
    """Read one declarative simulator file (YAML), validating its keys and values."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read simulator config: {exc}") from exc
    raw = load_yaml(text, str(path)) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a simulator config must be a mapping")
    raw.setdefault("name", path.stem)
    known = set(SimulatorSpec.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        from mop_bench.registry import suggest

        bad = sorted(unknown)[0]
        raise ValueError(
            f"{path}: unknown key {bad!r}{suggest(bad, sorted(known))}; allowed: {', '.join(sorted(known))}"
        )
    try:
        values = _coerce_fields(SimulatorSpec, raw, str(path))
    except ValueError as exc:
        raise ValueError(str(exc)) from exc
    return _from_json(SimulatorSpec, values)


def _coerce_fields(cls: type, raw: dict[str, Any], where: str) -> dict[str, Any]:
    """`raw`'s values coerced to `cls`'s field types, nested spec sections included
    (e.g. `picle: {steps: 8}`), with unknown keys named."""
    import dataclasses
    import typing

    from mop_bench.registry import suggest
    from mop_bench.spec import _coerce

    hints = typing.get_type_hints(cls)
    known = sorted(f.name for f in dataclasses.fields(cls))
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in hints:
            raise ValueError(f"{where}: unknown key {key!r}{suggest(key, known)}")
        tp = hints[key]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ValueError(f"{where}: {key} must be a mapping, got {value!r}")
            out[key] = _coerce_fields(tp, value, f"{where}: {key}")
        elif typing.get_origin(tp) is dict:
            if not isinstance(value, dict):
                raise ValueError(f"{where}: {key} must be a mapping, got {value!r}")
            out[key] = value
        else:
            out[key] = _coerce(value, tp, f"{where}: {key}")
    return out


def _load_bundled(reg: Registry[SimulatorSpec]) -> None:
    for path in sorted(cards_dir("baselines").glob("*.yaml")):
        spec = load_simulator_file(path)
        reg.register(spec.name, spec, replace=True)


SIMULATORS.add_loader(_load_bundled)


def resolve_simulator(name_or_path: str) -> SimulatorSpec:
    """A registered simulator name, or the path of a user's YAML file."""
    if name_or_path.endswith((".yaml", ".yml")):
        path = Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"simulator config {path} does not exist")
        return load_simulator_file(path)
    return SIMULATORS.get(name_or_path)


@dataclass
class SimulationInputs:
    """Everything a simulator may use. Heavy pieces are built lazily."""

    spec: RunSpec
    task: Any
    """The loaded `mop_bench.data.TaskData` (pool, golden, heldout, card)."""
    encoder: Any
    """A `mop_bench.embed.Encoder`."""
    lm_factory: Callable[[], Any]
    """Returns the run's `LanguageModel`; only called by simulators that need one."""
    artifacts_dir: Path
    """Where fit artifacts are written (personas, gates, fit record)."""
    gates_from: Any = None
    """A previous run directory whose fitted personas/gates/temperatures to reuse: a
    path, or the runner's checked `mop_bench.mop.transfer.GatesSource`."""


class Simulator(Protocol):
    spec: SimulatorSpec

    def prepare(self) -> dict[str, Any]:
        """Fit whatever needs fitting (idempotent: reuses saved artifacts); returns the
        fit record (cost, curve, ...) for the run directory."""
        ...

    def simulate(self, chunks: Sequence[Sequence[Context]]) -> Iterator[list[Generation]]:
        """Yield one list of generations per chunk, in order. The output for a chunk
        depends only on the chunk's contexts, the run spec and the sample indices."""
        ...


def _no_heldout_message(task: Any) -> str:
    """Why `real` has nothing to draw from, and the setting that fixes it."""
    card = task.card
    split = card.pool_split
    shared = card.splits[card.pool_split] == card.splits[card.golden_split]
    golden = f"; the golden set took {len(task.golden)} rows of the same file" if shared else ""
    return (
        "the real simulator needs held-out real examples, and none remain: the pool took "
        f"all {len(task.pool)} rows of the {split!r} split{golden}; "
        f"use --set pool=N with N < {len(task.pool)}"
    )


class RealSimulator:
    """Calibration: held-out real texts (never in the golden set) for the contexts.

    For each context it draws, with the sample's own seed, a held-out real example with
    the same label (any example if the task has no labels). It needs no LM and gives the
    best score a simulator could reach at this sample size. With `length_matched` (the
    default) each text is cut to the budget's `max_new_tokens` tokens of the run's LM
    tokenizer, the cap every simulator's output has.
    """

    def __init__(self, inputs: SimulationInputs) -> None:
        self.spec = inputs.spec.simulator
        self.inputs = inputs
        heldout = inputs.task.heldout
        if not heldout:
            raise ValueError(_no_heldout_message(inputs.task))
        self._by_label: dict[Any, list[int]] = {}
        for i, ex in enumerate(heldout):
            self._by_label.setdefault(ex.label, []).append(i)
        self._tokenizer: Any = None

    def prepare(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "real", "heldout_size": len(self.inputs.task.heldout)}
        if self.spec.length_matched:
            out["length_matched_tokens"] = self.inputs.spec.budget.max_new_tokens
        return out

    def _cut(self, text: str) -> tuple[str, dict[str, Any]]:
        """`text` cut to the token budget (as the LM's tokenizer counts), with a record."""
        if not self.spec.length_matched:
            return text, {}
        from mop_bench.token_cut import budget_tokenizer, cut_to_tokens

        if self._tokenizer is None:
            self._tokenizer = budget_tokenizer(
                self.inputs.spec.lm.model,
                who="real (length-matching the calibration texts)",
                instead="simulator.length_matched=false for full-length texts",
            )
        return cut_to_tokens(self._tokenizer, text, self.inputs.spec.budget.max_new_tokens)

    def simulate(self, chunks: Sequence[Sequence[Context]]) -> Iterator[list[Generation]]:
        heldout = self.inputs.task.heldout
        for chunk in chunks:
            out = []
            for ctx in chunk:
                rng = random.Random(sample_seed(self.inputs.spec.seed, ctx.index))
                candidates = self._by_label.get(ctx.label) or list(range(len(heldout)))
                ex = heldout[rng.choice(candidates)]
                text, cut = self._cut(ex.text)
                out.append(
                    Generation(
                        index=ctx.index,
                        context=ctx.text,
                        label=ctx.label,
                        text=text,
                        details={"source": ex.uid, **cut},
                    )
                )
            yield out


def build_simulator(inputs: SimulationInputs) -> Simulator:
    spec = inputs.spec.simulator
    if spec.kind == "real":
        return RealSimulator(inputs)
    if spec.kind == "template":
        from mop_bench.literature.simulator import TemplateSimulator

        return TemplateSimulator(inputs)
    from mop_bench.mop import MoPSimulator

    return MoPSimulator(inputs)
