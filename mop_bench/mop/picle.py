"""PICLe's demonstration selection as a way to choose MoP's `fixed` exemplar sets.

PICLe (Choi and Li, ICML 2024; deeplearning-wisc/picle, `src/main.py`,
`src/icl_strategies/select_picle.py`) fine-tunes a LoRA on a persona's statements, then
scores every candidate demonstration x by log p_lora(x) - log p_base(x) and shows the
top K (best last). Our adaptation (docs/baselines.md, ../shared/BASELINES.md section 4):
the "persona" of an `exemplar_match` group (one per label with `exemplar_match:
[label]`) is that group's population, so for each group

1. a LoRA (rank, alpha, lr, weight decay from `PicleSpec`; peft's default targets for
   Llama, `q_proj` and `v_proj`; no dropout, as the original's default) is trained with
   the causal-LM loss on the group's pool texts as plain completion text, exactly the
   text a prompt shows (`truncate_words` at the prompt's `exemplar_words`), each cut to
   `max_tokens` tokens, for `steps` AdamW steps of `batch_size` texts (seeded epochs of
   a permutation, as the Trainer's sampler; the learning rate follows the first `steps`
   of the original's linear decay over 880 steps; gradients clipped at norm 1);
2. every text of the group is scored under the LoRA model and the base model: summed
   log-likelihood of its tokens, the first token not scored (as the original);
3. the L texts with the highest difference form the group's fixed set, best last.

Training and scoring run on a float32 copy of the run's in-process model (the run's own
model is never touched): a LoRA update at lr 2e-5 over a few dozen steps is below
bfloat16's resolution. Every random draw (LoRA init, batches) comes from a generator
seeded with the run seed and the group index, so the same seed gives the same sets.
The selection (uids, losses, score margins, seconds) is cached as JSON under
`<artifacts>/picle/`, keyed on everything it depends on, with each group's adapter.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mop_bench.mop import artifacts as art
from mop_bench.mop.mixture import match_groups, match_key
from mop_bench.mop.prompts import truncate_words
from mop_bench.spec import PicleSpec
from mop_bench.types import Example

log = logging.getLogger(__name__)

#: Bumped whenever the selection's arithmetic changes (cached selections are then redone).
PICLE_VERSION = 1
#: Sub-folder of the artifacts directory holding cached selections and adapters.
CACHE_DIR = "picle"
#: The original's schedule: Trainer max_steps = 88 steps x 10 epochs, linear decay;
#: PICLe uses the checkpoint at step 352 (epoch 4). A capped run follows its first steps.
ORIGINAL_SCHEDULE_STEPS = 880
#: peft's default LoRA targets for Llama (what the original's LoraConfig gets).
TARGET_MODULES = ("q_proj", "v_proj")
#: The HF Trainer's default gradient clipping.
MAX_GRAD_NORM = 1.0
#: Texts per forward pass when scoring.
SCORE_BATCH = 16

ModelLoader = Callable[[], tuple[Any, Any]]
"""Returns (a transformers causal LM, its tokenizer); called only on a cache miss."""


def shown_text(ex: Example, exemplar_words: int, cut_marker: str = "") -> str:
    """The text PICLe trains on and scores: the exemplar as a prompt shows it."""
    return truncate_words(ex.text, exemplar_words, cut_marker)


def selection_key(
    pool: Sequence[Example],
    *,
    per_prompt: int,
    seed: int,
    match: Sequence[str],
    spec: PicleSpec,
    exemplar_words: int,
    cut_marker: str,
    lm: dict[str, Any],
) -> dict[str, Any]:
    """Everything a selection depends on (its cache key): the pool's uids, shown texts and
    match keys, the LM (`lm`: model and resolved dtype), the PICLe settings, the seed, L
    and the match fields."""
    import dataclasses

    rows = [
        [ex.uid, shown_text(ex, exemplar_words, cut_marker), repr(match_key(ex, match))]
        for ex in pool
    ]
    return art.normalise(
        {
            "version": PICLE_VERSION,
            "pool": art.digest(rows),
            "lm": lm,
            "picle": dataclasses.asdict(spec),
            "target_modules": list(TARGET_MODULES),
            "seed": seed,
            "per_prompt": per_prompt,
            "match": list(match),
            "exemplar_words": exemplar_words,
            "cut_marker": cut_marker,
        }
    )


def select_picle(
    pool: Sequence[Example],
    *,
    per_prompt: int,
    seed: int,
    match: Sequence[str],
    spec: PicleSpec,
    exemplar_words: int,
    cut_marker: str = "",
    lm: dict[str, Any],
    load_model: ModelLoader,
    cache_dir: Path | None,
) -> tuple[list[tuple[Example, ...]], dict[str, Any]]:
    """One fixed exemplar set per match group (in `match_groups` order, as `make_slots`),
    chosen by PICLe, and the record of the selection (`record["groups"][g]`: the chosen
    uids best last, losses, score margins, seconds; `record["reused"]`). A selection
    cached in `cache_dir` under the same key is reused without loading the model."""
    if not 1 <= per_prompt <= len(pool):
        raise ValueError(f"exemplars_per_prompt={per_prompt} must be in 1..{len(pool)} (pool size)")
    key = selection_key(
        pool, per_prompt=per_prompt, seed=seed, match=match, spec=spec,
        exemplar_words=exemplar_words, cut_marker=cut_marker, lm=lm,
    )  # fmt: skip
    digest = art.digest(key)
    path = cache_dir / CACHE_DIR / f"{digest}.json" if cache_dir is not None else None
    by_uid = {ex.uid: ex for ex in pool}
    if path is not None and path.exists():
        saved = art.read_json(path)
        if saved.get("key") == key and all(
            uid in by_uid for group in saved.get("groups", []) for uid in group["uids"]
        ):
            slots = [tuple(by_uid[u] for u in group["uids"]) for group in saved["groups"]]
            saved.pop("scores", None)
            log.info("PICLe: reusing the selection in %s", path)
            return slots, saved | {"reused": True, "path": _shown(path, cache_dir)}
    t0 = time.perf_counter()
    model, tokenizer = load_model()
    groups: list[dict[str, Any]] = []
    scores: list[dict[str, float]] = []
    all_groups = match_groups(pool, match)
    for g, members in enumerate(all_groups):
        log.info(
            "PICLe: group %d of %d (%d texts): %d LoRA steps, then 2 scoring passes per text",
            g + 1, len(all_groups), len(members), spec.steps,
        )  # fmt: skip
        texts = [shown_text(pool[i], exemplar_words, cut_marker) for i in members]
        adapter = path.with_name(f"{digest}-group{g}.safetensors") if path is not None else None
        chosen, score, record = _select_group(
            model, tokenizer, texts, per_prompt, spec, [seed, 11, g], adapter
        )
        groups.append(
            {
                "match": repr(match_key(pool[members[0]], match)) if match else "",
                "uids": [pool[members[i]].uid for i in chosen],
                **record,
            }
        )
        scores.append(
            {pool[i].uid: round(float(v), 6) for i, v in zip(members, score, strict=True)}
        )
    record = {
        "key": key,
        "groups": groups,
        "target_modules": list(TARGET_MODULES),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if path is not None:
        art.write_json(path, record | {"scores": scores})
    slots = [tuple(by_uid[u] for u in group["uids"]) for group in groups]
    shown = _shown(path, cache_dir) if path is not None else None
    return slots, record | {"reused": False, "path": shown}


def _shown(path: Path, cache_dir: Path | None) -> str:
    """The cached selection's path relative to the artifacts directory: records (and
    the pages made from them) never hold the machine's absolute paths."""
    return str(path.relative_to(cache_dir)) if cache_dir is not None else str(path)


def load_scores(record: dict[str, Any], cache_dir: Path) -> list[dict[str, float]]:
    """Every text's score (log p_lora - log p_base) per group, by uid, from the cached
    selection a record points to (`record["path"]`, relative to `cache_dir`)."""
    return art.read_json(Path(cache_dir) / record["path"])["scores"]


def _float32_copy(model: Any) -> Any:
    """A float32 copy of `model` on the CPU, in eval mode with every weight frozen (the
    adapters are trained and scored on the CPU whatever `--device` says: a small, short
    job whose inputs are built there)."""
    import torch

    work = copy.deepcopy(model).to("cpu", torch.float32)
    work.eval()
    for p in work.parameters():
        p.requires_grad_(False)
    return work


def _token_ids(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
    """Each text tokenised as the tokenizer does by default, cut to `max_tokens`."""
    return [list(tokenizer(t)["input_ids"])[:max_tokens] for t in texts]


def _pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """Right-padded ids and attention mask."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[r, : len(row)] = 1
    return ids, mask


def sequence_logliks(model: Any, ids: Sequence[Sequence[int]], pad_id: int) -> np.ndarray:
    """Summed log-likelihood of each token sequence under `model`, its first token not
    scored (PICLe's score); rows batched by length."""
    import torch
    import torch.nn.functional as F

    out = np.zeros(len(ids), dtype=np.float64)
    order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
    with torch.inference_mode():
        for start in range(0, len(order), SCORE_BATCH):
            batch = [i for i in order[start : start + SCORE_BATCH] if len(ids[i]) > 1]
            if not batch:
                continue
            x, mask = _pad([ids[i] for i in batch], pad_id)
            logits = model(input_ids=x, attention_mask=mask).logits[:, :-1].float()
            nll = F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")
            ll = -(nll * mask[:, 1:]).sum(1)
            out[batch] = ll.double().numpy()
    return out


def _batches(n: int, size: int, steps: int, gen: Any) -> list[list[int]]:
    """`steps` batches of `size` indices: consecutive slices of seeded permutations of
    range(n), one permutation per epoch (the Trainer's random sampler)."""
    import torch

    need = steps * size
    order: list[int] = []
    while len(order) < need:
        order += torch.randperm(n, generator=gen).tolist()
    return [order[s * size : (s + 1) * size] for s in range(steps)]


def _select_group(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    per_prompt: int,
    spec: PicleSpec,
    seed: list[int],
    adapter_path: Path | None,
) -> tuple[list[int], np.ndarray, dict[str, Any]]:
    """Train a LoRA on `texts` (on a float32 copy of `model`), score them, and return the
    positions of the chosen min(L, len(texts)) (best last), every text's score and the
    group's record."""
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict

    int_seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id
    ids = _token_ids(tokenizer, texts, spec.max_tokens)
    trainable = [i for i, r in enumerate(ids) if len(r) > 1]
    if not trainable:
        raise ValueError("PICLe: no text of the group has two tokens to train and score on")
    work = _float32_copy(model)
    n_scored = np.array([max(0, len(r) - 1) for r in ids], dtype=np.float64)
    t0 = time.perf_counter()
    base = sequence_logliks(work, ids, pad_id)
    t_base = time.perf_counter() - t0

    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=0.0,
        target_modules=list(TARGET_MODULES),
    )
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(int_seed)  # peft draws lora_A from the global RNG
        # peft asks transformers' deprecated `is_gradient_checkpointing`
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        peft_model = get_peft_model(work, config)
    gen = torch.Generator().manual_seed(int_seed)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    span = max(ORIGINAL_SCHEDULE_STEPS, spec.steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: max(0.0, 1.0 - t / span))
    losses: list[float] = []
    t0 = time.perf_counter()
    peft_model.train()
    for batch in _batches(len(trainable), spec.batch_size, spec.steps, gen):
        x, mask = _pad([ids[trainable[b]] for b in batch], pad_id)
        labels = x.masked_fill(mask == 0, -100)
        loss = peft_model(input_ids=x, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(round(float(loss.detach()), 5))
    t_train = time.perf_counter() - t0
    peft_model.eval()
    t0 = time.perf_counter()
    tuned = sequence_logliks(peft_model, ids, pad_id)
    t_tuned = time.perf_counter() - t0
    if adapter_path is not None:
        from safetensors.torch import save_file

        adapter_path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            k: v.detach().contiguous() for k, v in get_peft_model_state_dict(peft_model).items()
        }
        save_file(state, str(adapter_path))
    score = tuned - base
    ranked = np.argsort(-score, kind="stable")
    chosen = [int(i) for i in ranked[: min(per_prompt, len(texts))]][::-1]  # best last
    tokens = float(n_scored.sum()) or 1.0
    record = {
        "n_texts": len(texts),
        "steps": spec.steps,
        "train_loss_first": losses[0] if losses else None,
        "train_loss_last": losses[-1] if losses else None,
        "train_losses": losses,
        "nll_per_token_base": round(float(-base.sum() / tokens), 5),
        "nll_per_token_lora": round(float(-tuned.sum() / tokens), 5),
        "score_chosen": [round(float(score[i]), 5) for i in chosen],
        "score_median": round(float(np.median(score)), 5),
        "score_max": round(float(score.max()), 5),
        "score_min": round(float(score.min()), 5),
        "tokens_chosen": [int(n_scored[i]) + 1 for i in chosen],
        "tokens_median": float(np.median(n_scored + 1)),
        "seconds_train": round(t_train, 3),
        "seconds_score": round(t_base + t_tuned, 3),
        "adapter": adapter_path.name if adapter_path is not None else None,
    }
    return chosen, score, record


def run_selection(
    run: Any,
    pool: list[Example],
    prompt: Any,
    load_lm: Callable[[], Any],
    cache_dir: Path,
) -> tuple[list[tuple[Example, ...]], dict[str, Any]]:
    """PICLe's fixed sets for one run (`RunSpec` `run`, its `PromptSpec` `prompt`), one
    per match group, cached under the run's artifacts directory, with the record the fit
    record keeps (`record["picle"]`)."""
    from mop_bench.lm.loading import choose_dtype

    sim = run.simulator
    return select_picle(
        pool,
        per_prompt=sim.exemplars_per_prompt,
        seed=run.seed,
        match=tuple(sim.exemplar_match),
        spec=sim.picle,
        exemplar_words=prompt.exemplar_words,
        cut_marker=prompt.cut_marker,
        lm={"model": run.lm.model, "dtype": choose_dtype(run.lm.dtype)},
        load_model=lambda: in_process_model(load_lm(), run.lm.backend),
        cache_dir=cache_dir,
    )


def in_process_model(lm: Any, backend: str) -> tuple[Any, Any]:
    """(the run's in-process transformers model, its tokenizer): PICLe trains its LoRA
    on a float32 copy of that model, so another backend cannot serve it."""
    model, tokenizer = getattr(lm, "model", None), getattr(lm, "tokenizer", None)
    if tokenizer is None or not hasattr(model, "named_parameters"):
        raise ValueError(
            "exemplar_selection: picle fine-tunes a LoRA on the LM in process: it needs "
            f"lm.backend=transformers (got {backend!r}, a {type(lm).__name__})"
        )
    return model, tokenizer
