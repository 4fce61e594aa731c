"""`TemplateSimulator`: ZeroGen, ProGen and AttrPrompt as configurations of one generator.

prepare(): the generated context pool (ZeroGen's titles) or the attribute files
(AttrPrompt). simulate(): per chunk, fill each request's prompt (label word, context or
attributes, ProGen's demonstrations), draw with the recipe's sampling, and apply its
filters (a rejected draw is drawn again, `draws.py`). Every string comes from the
simulator file's `template:` settings (`settings.py`).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mop_bench.literature import filters
from mop_bench.literature.draws import Drawn, draw_with_filters
from mop_bench.literature.progen import DemoPool
from mop_bench.literature.settings import TaskPrompts, TemplateSettings
from mop_bench.lm.base import Prompt, RawPrompt
from mop_bench.mop import artifacts as art
from mop_bench.seeds import sample_seed
from mop_bench.simulators import SimulationInputs
from mop_bench.types import Context, Generation

log = logging.getLogger(__name__)

CONTEXTS = "contexts.json"
ROUNDS = "progen_rounds.json"


class TemplateSimulator:
    def __init__(self, inputs: SimulationInputs) -> None:
        self.inputs = inputs
        self.spec = inputs.spec.simulator
        where = f"simulator {self.spec.name!r}"
        self.settings = TemplateSettings.from_mapping(dict(self.spec.template), where)
        card = inputs.task.card
        self.prompts: TaskPrompts = self.settings.for_task(card.name)
        names = list(card.label_names or [])
        if len(self.prompts.label_words) != len(names):
            raise ValueError(
                f"{where}: prompts.{card.name}.label_words has {len(self.prompts.label_words)} "
                f"words for the task's {len(names)} labels ({', '.join(map(str, names))})"
            )
        self.artifacts_dir = Path(inputs.artifacts_dir)
        self._lm: Any = None
        self._contexts: list[str] = []
        self._attributes: Any = None
        self._known: dict[int, Generation] = {}
        self._record: dict[str, Any] | None = None

    @property
    def lm(self) -> Any:
        if self._lm is None:
            self._lm = self.inputs.lm_factory()
        return self._lm

    @property
    def budget(self) -> Any:
        return self.inputs.spec.budget

    def _new_tokens(self) -> tuple[int, int]:
        """(max, min) new tokens: the recipe's exact length, capped by the budget."""
        cap = self.budget.max_new_tokens
        exact = self.settings.exact_tokens
        return (min(exact, cap), min(exact, cap)) if exact else (cap, 0)

    # ------------------------------------------------------------------ prepare
    def prepare(self) -> dict[str, Any]:
        if self._record is not None:
            return self._record
        t0 = time.perf_counter()
        s = self.settings
        record: dict[str, Any] = {
            "kind": "template",
            "simulator": self.spec.name,
            "source": s.source,
            "prompt_source": self.prompts.source,
            "label_prior": self.spec.label_prior,
            "new_tokens": dict(zip(("max", "min"), self._new_tokens(), strict=True)),
            "top_p": s.top_p,
            "clean_str": s.clean_str,
        }
        if s.contexts == "generated":
            record["contexts"] = self._generated_contexts()
        elif s.contexts == "attributes":
            from mop_bench.literature.attributes import load_attributes
            from mop_bench.paths import data_dir

            root = data_dir(self.inputs.spec.data.data_dir)
            if root is None:
                raise ValueError(
                    f"{self.spec.name}: AttrPrompt's attribute files are read from "
                    "<data dir>/attrprompt; set MOP_BENCH_DATA_DIR or pass --data-dir"
                )
            self._attributes = load_attributes(
                Path(root), self.prompts.attributes, list(self.inputs.task.card.label_names)
            )
            record["attributes"] = self._attributes.attribute_counts()
        record["seconds"] = round(time.perf_counter() - t0, 3)
        self._record = record
        return record

    @functools.cached_property
    def _label_ranks(self) -> dict[int, int]:
        """Each request's rank among the run's requests of its label (sample index ->
        rank): ZeroGen gives `samples_per_context` requests per context and label."""
        from mop_bench.data import draw_contexts

        run = self.inputs.spec
        ctxs = draw_contexts(
            self.inputs.task, run.budget.n_samples, run.seed, self.spec.label_prior
        )
        seen: Counter = Counter()
        ranks = {}
        for c in ctxs:
            ranks[c.index] = seen[c.label]
            seen[c.label] += 1
        return ranks

    def _generated_contexts(self) -> dict[str, Any]:
        """ZeroGen's stage x1: a pool of LM-generated contexts (titles), enough for
        `samples_per_context` requests per context and label; cached as an artifact."""
        s = self.settings
        run = self.inputs.spec
        need = max(self._label_ranks.values()) + 1  # the most requests of one label
        size = max(1, math.ceil(need / s.samples_per_context))
        key = art.digest(
            {
                "prompt": self.prompts.context_prompt,
                "size": size,
                "tokens": s.context_tokens,
                "min_words": s.context_min_words,
                "top_p": s.top_p,
                "temperature": run.budget.temperature,
                "attempts": s.max_attempts,
                "lm": run.lm.model,
                "seed": run.seed,
                "version": 1,
            }
        )
        path = self.artifacts_dir / CONTEXTS
        if path.is_file():
            saved = art.read_json(path)
            if isinstance(saved, dict) and saved.get("key") == key:
                texts = saved.get("contexts")
                if (
                    isinstance(texts, list)
                    and len(texts) == size
                    and all(isinstance(t, str) and t for t in texts)
                ):
                    self._contexts = texts
                    return {"n": size, "reused": True, "rejected": saved.get("rejected", 0)}
                log.warning("%s: malformed, regenerating", path)
        t0 = time.perf_counter()

        def check(raw: str, row: int) -> tuple[str, str | None]:
            cut = filters.zerogen_cut(raw)
            if cut is None:
                return raw.strip(), "no end of context"
            if filters.word_count(cut) < s.context_min_words:
                return cut, "too short"
            return cut, None

        seeds = [sample_seed(run.seed, 10_000_000 + t) for t in range(size)]
        drawn = draw_with_filters(
            self.lm, [RawPrompt(self.prompts.context_prompt)] * size, seeds,
            temperature=run.budget.temperature, top_p=s.top_p,
            max_new_tokens=s.context_tokens, min_new_tokens=s.context_tokens,
            max_attempts=s.max_attempts, check=check,
        )  # fmt: skip
        self._contexts = [d.text or "untitled" for d in drawn]
        rejected = sum(d.rejected is not None for d in drawn)
        art.write_json(path, {"key": key, "contexts": self._contexts, "rejected": rejected})
        return {
            "n": size,
            "reused": False,
            "rejected": rejected,
            "seconds": round(time.perf_counter() - t0, 3),
            "examples": self._contexts[:5],
        }

    def heldout(self, examples: Sequence[Any], cache_dir: Path) -> Any:
        why = "rejection filters"
        if self.settings.demos == "own":
            why += " and prompts built from its own earlier outputs"
        raise NotImplementedError(
            f"{self.spec.name} is a literature generator with {why}: it has no "
            "likelihood of a given real text to score"
        )

    # ------------------------------------------------------------------ simulate
    def resume(self, previous: Sequence[Generation]) -> None:
        """Take the generations already on disk: ProGen's state before a chunk is a
        function of the earlier chunks' generations, and is checked against the
        recorded rounds before it is trusted."""
        if self.settings.demos != "own":
            return
        self._known = {g.index: g for g in previous}
        if not previous:
            return
        pool = self._pool_before(max(self._known) + 1)
        path = self.artifacts_dir / ROUNDS
        if path.is_file():
            recorded = art.read_json(path)
            last = max(self._known)
            upto = [r for r in recorded if r.get("last_index", 0) <= last]
            if upto != pool.round_log:
                raise ValueError(
                    f"{path}: the recorded ProGen rounds {upto} do not match those rebuilt "
                    f"from generations.jsonl {pool.round_log}; delete the run folder"
                )

    def _pool_before(self, start: int) -> DemoPool:
        """ProGen's demonstration pool when the chunk starting at `start` is drawn:
        every earlier chunk added in order (refreshes happen between chunks)."""
        size = self.budget.chunk_size
        pool = DemoPool(self.settings.rounds)
        by_chunk: dict[int, list[Generation]] = {}
        for i in sorted(i for i in self._known if i < start):
            by_chunk.setdefault(i // size, []).append(self._known[i])
        for c in sorted(by_chunk):
            pool.add(by_chunk[c])
        return pool

    def simulate(self, chunks: Sequence[Sequence[Context]]) -> Iterator[list[Generation]]:
        self.prepare()
        own = self.settings.demos == "own"
        for chunk in chunks:
            pool = self._pool_before(chunk[0].index) if own and chunk else None
            gens = self._chunk(chunk, pool)
            if pool is not None:
                self._known.update({g.index: g for g in gens})
                pool.add(gens)  # now the pool before the next chunk: its rounds are recorded
                art.write_json(self.artifacts_dir / ROUNDS, pool.round_log)
            yield gens

    def _fields(self, ctx: Context, rank: int, rng: np.random.Generator) -> dict[str, Any]:
        s = self.settings
        label = ctx.label if ctx.label is not None else 0
        out: dict[str, Any] = {"label_word": self.prompts.label_words[label], "demos": ""}
        if s.contexts == "generated":
            out["context"] = self._contexts[(rank // s.samples_per_context) % len(self._contexts)]
        elif s.contexts == "attributes":
            out |= self._attributes.draw(label, rng)
        return out

    def _chunk(self, chunk: Sequence[Context], pool: DemoPool | None) -> list[Generation]:
        if not chunk:
            return []
        s = self.settings
        run = self.inputs.spec
        prompts: list[Prompt] = []
        seeds, details, shown = [], [], []
        coin = np.random.default_rng([run.seed, 7, chunk[0].index])
        with_demos = {lab: bool(coin.random() < s.demo_prob) for lab in sorted(
            {c.label for c in chunk}, key=lambda x: -1 if x is None else x)}  # fmt: skip
        ranks = [self._label_ranks.get(c.index, c.index) for c in chunk]
        for ctx, rank in zip(chunk, ranks, strict=True):
            seed = sample_seed(run.seed, ctx.index)
            rng = np.random.default_rng(seed)
            fields = self._fields(ctx, rank, rng)
            demos = []
            if pool is not None and with_demos[ctx.label]:
                demos = pool.demos_for(ctx.label, s.demos_per_prompt, rng)
                fields["demos"] = "".join(
                    self.prompts.demo.format(context=d.context, text=d.text) + s.demo_separator
                    for d in demos
                )
            text = _fill(self.prompts.prompt, fields, self.spec.name)
            prompts.append([{"role": "user", "content": text}] if s.chat else RawPrompt(text))
            seeds.append(seed)
            shown.append(demos)
            details.append(
                {
                    "seed": seed,
                    "temperature": run.budget.temperature,
                    "prompt": text,
                    "context_value": fields.get("context"),
                    "attributes": {k: v for k, v in fields.items() if k not in ("label_word", "demos", "context")} or None,
                    "demo_indices": [d.index for d in demos],
                }
            )  # fmt: skip
        seen: set[tuple[Any, str, Any]] = set()
        chunk_ctx = [d["context_value"] for d in details]

        def check(raw: str, row: int) -> tuple[str, str | None]:
            text, why = self._filter(raw, chunk_ctx[row], shown[row])
            if why is None and s.dedupe:
                key = (chunk_ctx[row], text, chunk[row].label)
                if key in seen:
                    return text, "duplicate"
                seen.add(key)
            return text, why

        max_new, min_new = self._new_tokens()
        drawn = draw_with_filters(
            self.lm, prompts, seeds, temperature=run.budget.temperature, top_p=s.top_p,
            max_new_tokens=max_new, min_new_tokens=min_new, max_attempts=s.max_attempts,
            check=check,
        )  # fmt: skip
        return [
            _generation(ctx, d, det, max_new)
            for ctx, d, det in zip(chunk, drawn, details, strict=True)
        ]

    def _filter(self, raw: str, context: str | None, demos: list) -> tuple[str, str | None]:
        """The recipe's post-processing of one draw: (text, reason rejected or None)."""
        s = self.settings
        text: str | None = raw
        if s.cut == "quote":
            text = filters.zerogen_cut(raw)
            if text is None:
                return raw.strip(), "no end of text (quote, line break or period)"
        text = text.strip()
        if s.refusals and filters.contains_refusal(text, s.refusals):
            return text, "refusal"
        if s.clean_str:
            text = filters.clean_str(text).strip()
        if filters.word_count(text) < s.min_words:
            return text, f"fewer than {s.min_words} words"
        if s.drop_context_copies and context is not None and text == context:
            return text, "copies its context"
        for demo in demos:
            if filters.demo_overlap(text, demo.text) >= s.demo_overlap:
                return text, "copies a demonstration"
        return text, None


def _fill(template: str, fields: dict[str, Any], name: str) -> str:
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"{name}: prompt template {template!r} cannot be filled from the fields "
            f"{sorted(fields)}: {type(exc).__name__}: {exc}"
        ) from exc


def _generation(ctx: Context, d: Drawn, det: dict[str, Any], max_new: int) -> Generation:
    ended = "cap" if d.n_tokens >= max_new else "eos"
    det = det | {
        "raw_chars": len(d.raw),
        "n_tokens": d.n_tokens,
        "ended": ended,
        "attempts": d.attempts,
        "rejected": d.rejected,
        "rejections": d.reasons,
    }
    return Generation(index=ctx.index, context=ctx.text, label=ctx.label, text=d.text, details=det)
