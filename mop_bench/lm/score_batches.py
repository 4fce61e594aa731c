"""How `TransformersLM.score` cuts its rows into forward passes.

The plan is part of the numbers: rows in one batch share matrix shapes (and a shared
prefix's keys and values), so the same rows batched otherwise differ in the last bits.
It is therefore a function of the rows alone (their token ids and lengths), never of
call order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from mop_bench.lm.sampling import MIN_SHARED_PREFIX, common_prefix

#: Scoring batches close early when padding would exceed this fraction of the batch...
MAX_PADDING = 0.1
#: ...once they hold this many real tokens (enough rows for efficient matmuls).
MIN_BATCH_TOKENS = 1024
#: Scoring rows whose prompts share at least this fraction of their tokens are batched
#: together (and their common prefix run once).
GROUP_PREFIX_SHARE = 0.5


def length_batches(
    order: Sequence[int], lengths: Sequence[int], *, batch_size: int, max_batch_tokens: int
) -> Iterator[list[int]]:
    """Consecutive slices of `order` (ascending length) within the row and token caps;
    a batch also closes early once it holds `MIN_BATCH_TOKENS` real tokens if the next
    sequence would push padding above `MAX_PADDING`."""
    batch: list[int] = []
    real = 0
    for i in order:
        padded = lengths[i] * (len(batch) + 1)  # i is the longest so far
        waste = 1 - (real + lengths[i]) / padded
        if batch and (
            len(batch) >= batch_size
            or padded > max_batch_tokens
            or (waste > MAX_PADDING and real >= MIN_BATCH_TOKENS)
        ):
            yield batch
            batch, real = [], 0
        batch.append(i)
        real += lengths[i]
    if batch:
        yield batch


def plan(
    heads: list[list[int]],
    lengths: list[int],
    *,
    batch_size: int,
    max_batch_tokens: int,
    share_prefixes: bool,
) -> Iterator[list[int]]:
    """Rows that share most of their prompt (a (persona, exemplar) prompt scored for
    many continuations) are batched together when `share_prefixes` (the caller runs
    their common prefix once per batch); the other rows in length order."""
    caps = {"batch_size": batch_size, "max_batch_tokens": max_batch_tokens}
    order = sorted(range(len(heads)), key=lambda i: heads[i])
    groups: list[list[int]] = []
    for i in order:
        if groups:
            first = heads[groups[-1][0]]
            shared = common_prefix([first, heads[i]])
            if shared >= max(
                MIN_SHARED_PREFIX, GROUP_PREFIX_SHARE * min(len(first), len(heads[i]))
            ):
                groups[-1].append(i)
                continue
        groups.append([i])
    singles = sorted((g[0] for g in groups if len(g) == 1), key=lambda i: lengths[i])
    for group in groups:
        if len(group) > 1 and share_prefixes:
            yield from length_batches(sorted(group, key=lambda i: lengths[i]), lengths, **caps)
        elif len(group) > 1:
            singles = sorted([*singles, *group], key=lambda i: lengths[i])
    yield from length_batches(singles, lengths, **caps)
