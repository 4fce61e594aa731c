"""Real texts cut to the token budget every simulator's output has (`budget.max_new_tokens`
tokens of the run's LM tokenizer): the `real` calibration's texts and, under
`metrics.golden_cut: budget`, the golden set the sample metrics compare against."""

from __future__ import annotations

from typing import Any


def budget_tokenizer(model: str, *, who: str, instead: str) -> Any:
    """The run's LM tokenizer, or a ValueError naming `who` needs it and the setting that
    does without it (`instead`)."""
    from mop_bench.lm.loading import load_tokenizer

    try:
        return load_tokenizer(model)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{who}: cannot load the tokenizer of {model!r} to cut texts to the token "
            f"budget ({exc}); set {instead}"
        ) from exc


def cut_to_tokens(tokenizer: Any, text: str, limit: int) -> tuple[str, dict[str, Any]]:
    """`text` cut to `limit` tokens (decoded back, stripped), with a record of the cut."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= limit:
        return text, {"tokens": len(ids), "truncated": False}
    cut = tokenizer.decode(ids[:limit], skip_special_tokens=True).strip()
    return cut, {"tokens": limit, "source_tokens": len(ids), "truncated": True}


def golden_texts(spec: Any, golden: list[Any], tokenizer: Any = None) -> list[str]:
    """The golden texts as the sample metrics see them (`metrics.golden_cut`); `tokenizer`
    the run's LM tokenizer, loaded when needed and not given."""
    texts = [e.text for e in golden]
    if spec.metrics.golden_cut == "full":
        return texts
    tokenizer = tokenizer or budget_tokenizer(
        spec.lm.model, who="metrics.golden_cut=budget", instead="metrics.golden_cut=full"
    )
    limit = spec.budget.max_new_tokens
    return [cut_to_tokens(tokenizer, t, limit)[0] for t in texts]


def golden_texts_on_disk(spec: Any, golden: list[Any]) -> list[str] | None:
    """`golden_texts` where that writes nothing (the tokenizer is on disk already), for
    the cost estimate, which must not write; None where it would have to (no run on this
    machine has cut texts with this LM yet) or cannot (the run itself then says why)."""
    from mop_bench.lm.loading import load_tokenizer

    if spec.metrics.golden_cut == "full":
        return [e.text for e in golden]
    try:
        tokenizer = load_tokenizer(spec.lm.model, create=False)
    except (OSError, ValueError):
        return None
    return golden_texts(spec, golden, tokenizer)
