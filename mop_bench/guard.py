"""A run's size, estimated before any work starts, and refused when it cannot fit.

`--n 10000000` used to start silently, reach 4 GB of memory within a minute and queue
312,500 chunks. Now every run logs its estimate first; a run whose estimated memory or
disk exceeds what this machine has, or whose sample count dwarfs the golden set its
contexts are drawn from, stops with that estimate unless the user passes `--yes`.

The estimate is deliberately rough and errs high: bytes per generated row from the
token cap and the golden set's context lengths, memory as a few copies of the rows
plus the embeddings the metrics hold in float64.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Contexts are drawn from the golden set with cycles; beyond this many samples per
#: golden context the synthetic set mostly repeats prompts, which is rarely intended.
MAX_SAMPLES_PER_GOLDEN = 10
#: Bytes per generated token (a few characters of UTF-8 JSON), and per row of details.
BYTES_PER_TOKEN = 6
ROW_OVERHEAD = 400
#: Embedding width assumed for the estimate (MiniLM is 384; larger encoders exist).
EMBED_DIM = 768
#: Python objects hold each row several times over (text, JSON line, record).
MEMORY_COPIES = 4
#: Only this share of the machine's available memory is planned for.
MEMORY_SHARE = 0.8


@dataclass
class Estimate:
    n_samples: int
    chunks: int
    disk_bytes: int
    memory_bytes: int
    available_memory: int | None
    free_disk: int | None
    golden_size: int
    problems: list[str] = field(default_factory=list)
    cost: Any = None
    """The run's `mop_bench.estimate.CostEstimate` (time, LM tokens, disk), if given."""

    def describe(self) -> str:
        machine = []
        if self.available_memory is not None:
            machine.append(f"{_size(self.available_memory)} memory available")
        if self.free_disk is not None:
            machine.append(f"{_size(self.free_disk)} free disk")
        where = f" (this machine: {', '.join(machine)})" if machine else ""
        memory = f"{_size(self.memory_bytes)} of memory to score them{where}"
        if self.cost is not None:
            return (
                f"estimate: {self.n_samples:,} samples in {self.chunks:,} chunks: "
                f"{self.cost.summary()}; {memory} (rates: {self.cost.rates.describe()})"
            )
        return (
            f"estimate: {self.n_samples:,} samples in {self.chunks:,} chunks, about "
            f"{_size(self.disk_bytes)} on disk and {memory}"
        )


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else total physical memory, else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def free_disk(path: Path) -> int | None:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def estimate(spec: Any, task_data: Any, results_dir: Path, cost: Any = None) -> Estimate:
    """How big `spec`'s run on `task_data` will be, and what stands in its way; with
    `cost` (a `mop_bench.estimate.CostEstimate`) its disk figure is the cost model's."""
    n = spec.budget.n_samples
    golden = task_data.golden
    ctx_bytes = sum(len(e.context) for e in golden[:1000]) / max(min(len(golden), 1000), 1)
    row = ctx_bytes + spec.budget.max_new_tokens * BYTES_PER_TOKEN + ROW_OVERHEAD
    est = Estimate(
        n_samples=n,
        chunks=-(-n // spec.budget.chunk_size),
        disk_bytes=int(n * (row + EMBED_DIM * 4)),
        memory_bytes=int(n * (MEMORY_COPIES * row + EMBED_DIM * 8 * 2)),
        available_memory=available_memory(),
        free_disk=free_disk(results_dir),
        golden_size=len(golden),
        cost=cost,
    )
    if cost is not None:
        est.disk_bytes = cost.disk_bytes + cost.cache_bytes
    if est.available_memory is not None and est.memory_bytes > MEMORY_SHARE * est.available_memory:
        est.problems.append(
            f"the memory estimate exceeds {MEMORY_SHARE:.0%} of the "
            f"{_size(est.available_memory)} available"
        )
    if est.free_disk is not None and est.disk_bytes > est.free_disk:
        est.problems.append(f"the disk estimate exceeds the {_size(est.free_disk)} free")
    if golden and n > MAX_SAMPLES_PER_GOLDEN * len(golden):
        est.problems.append(
            f"{n:,} samples is over {MAX_SAMPLES_PER_GOLDEN}x the {len(golden):,} golden "
            "contexts they are drawn from"
        )
    return est


def check_size(
    spec: Any, task_data: Any, results_dir: Path, *, assume_yes: bool, cost: Any = None
) -> Estimate:
    """Log the estimate (with `cost`: time and LM tokens too); refuse (ValueError) a run
    that cannot fit unless `assume_yes`."""
    est = estimate(spec, task_data, results_dir, cost)
    if est.problems and not assume_yes:
        raise ValueError(
            f"refusing to start: {est.describe()}; {'; '.join(est.problems)}. Lower --n "
            "(budget.n_samples), or pass --yes to run anyway"
        )
    level = logging.WARNING if est.problems else logging.INFO
    log.log(level, "%s%s", est.describe(), f"; {'; '.join(est.problems)}" * bool(est.problems))
    return est
