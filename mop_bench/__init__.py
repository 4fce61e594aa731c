"""mop-bench: benchmark population simulators against real populations.

The public API, curated (heavy modules load only when used):

    from mop_bench import build_spec, run, RunSpec, RunOptions
    run_dir = run(build_spec("yelp", "mop", preset="smoke"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "RunSpec": "mop_bench.spec",
    "BudgetSpec": "mop_bench.spec",
    "DataSpec": "mop_bench.spec",
    "LMSpec": "mop_bench.spec",
    "EncoderSpec": "mop_bench.spec",
    "MetricSpec": "mop_bench.spec",
    "FitSpec": "mop_bench.spec",
    "SimulatorSpec": "mop_bench.spec",
    "with_overrides": "mop_bench.overrides",
    "build_spec": "mop_bench.runner",
    "run": "mop_bench.runner",
    "rescore": "mop_bench.scoring",
    "RunOptions": "mop_bench.runner",
    "Workspace": "mop_bench.runner",
    "compare": "mop_bench.compare",
    "sweep": "mop_bench.compare",
    "Example": "mop_bench.types",
    "Context": "mop_bench.types",
    "Generation": "mop_bench.types",
    "MetricResult": "mop_bench.types",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from mop_bench.compare import compare, sweep
    from mop_bench.overrides import with_overrides
    from mop_bench.runner import RunOptions, Workspace, build_spec, run
    from mop_bench.scoring import rescore
    from mop_bench.spec import (
        BudgetSpec,
        DataSpec,
        EncoderSpec,
        FitSpec,
        LMSpec,
        MetricSpec,
        RunSpec,
        SimulatorSpec,
    )
    from mop_bench.types import Context, Example, Generation, MetricResult


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mop_bench' has no attribute {name!r}")
