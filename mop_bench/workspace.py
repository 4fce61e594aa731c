"""Loaded resources shared by the runs of one process: task data, encoders, LMs.

A comparison of many simulators loads each of them once. Kept apart from the runner so
that the stages (scoring, re-scoring) can use it without importing the recipe.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mop_bench.spec import EncoderSpec, LMSpec, RunSpec

log = logging.getLogger(__name__)


@dataclass
class Workspace:
    """Loaded resources shared by the runs of one process."""

    progress: bool = True
    lm_batch_size: int | None = None
    device: str = "cpu"
    """Where the in-process LM and the encoder run, resolved (`mop_bench.devices`)."""
    _lms: dict[LMSpec, Any] = field(default_factory=dict)
    _encoders: dict[EncoderSpec, Any] = field(default_factory=dict)
    _tasks: dict[tuple, Any] = field(default_factory=dict)
    _cards: dict[tuple, Any] = field(default_factory=dict)
    _stage_bar: bool = False
    """A stage shows its own progress bar: the LMs' per-call bars stay off meanwhile."""

    @classmethod
    def for_options(cls, options: Any) -> Workspace:
        """The workspace a `RunOptions` asks for, its device resolved here, once."""
        from mop_bench.devices import resolve_device

        return cls(
            progress=options.progress,
            lm_batch_size=options.lm_batch_size,
            device=resolve_device(options.device),
        )

    def card(self, spec: RunSpec):
        d = spec.data
        key = (spec.task, d.data_file, d.text_column, d.label_column)
        if key not in self._cards:
            from mop_bench.data import resolve_task

            self._cards[key] = resolve_task(
                spec.task,
                data_file=d.data_file,
                text_column=d.text_column,
                label_column=d.label_column,
            )
        return self._cards[key]

    def task(self, spec: RunSpec):
        key = (spec.task, spec.data, spec.seed)
        if key not in self._tasks:
            from mop_bench.data import load_task

            self._tasks[key] = load_task(
                self.card(spec), spec.data, spec.seed, progress=self.progress
            )
        return self._tasks[key]

    def encoder(self, spec: EncoderSpec):
        if spec not in self._encoders:
            from mop_bench.embed import Encoder

            self._encoders[spec] = Encoder(spec, progress=self.progress, device=self.device)
        return self._encoders[spec]

    def lm(self, spec: LMSpec):
        if spec not in self._lms:
            from mop_bench.lm import load_lm

            t0 = time.perf_counter()
            kwargs = {"progress": self.progress and not self._stage_bar, "device": self.device}
            if self.lm_batch_size:
                kwargs["batch_size"] = self.lm_batch_size
            self._lms[spec] = load_lm(spec, **kwargs)
            log.info("loaded LM %s in %.1fs", spec.model, time.perf_counter() - t0)
        return self._lms[spec]

    @contextlib.contextmanager
    def stage_bar(self) -> Iterator[None]:
        """While the caller's bar runs (e.g. "generating"), the LMs draw none of their
        own under it: one progress bar per stage."""
        self._stage_bar = True
        self._lm_bars(False)
        try:
            yield
        finally:
            self._stage_bar = False
            self._lm_bars(self.progress)

    def _lm_bars(self, on: bool) -> None:
        for lm in self._lms.values():
            if hasattr(lm, "progress"):  # the in-process and server adapters have one
                lm.progress = on
