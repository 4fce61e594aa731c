"""Run directories: atomic writes, the incremental generation log, locks.

Nothing here knows about simulators or metrics; it only makes sure that whatever is
written is either wholly there or not there at all, so a run killed at any moment
(`kill -9` included) can be resumed without losing or duplicating work.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mop_bench.types import Generation

GENERATIONS = "generations.jsonl"


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename): readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=_json_default)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def jsonable(obj: Any) -> Any:
    """`obj` as it reads back from JSON (tuples become lists, numpy becomes Python)."""
    return json.loads(json.dumps(obj, default=_json_default))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def _generation_line(gen: Generation) -> str:
    return json.dumps(gen.to_json(), ensure_ascii=False, sort_keys=True, default=_json_default)


class GenerationLog:
    """`generations.jsonl`, written one whole chunk at a time.

    A chunk's rows go out in a single `write` followed by fsync. On open, rows that do
    not parse (a torn final line) and chunks that are incomplete are dropped, so the
    caller regenerates exactly the missing chunks. `finalize` rewrites the file in
    index order, making a resumed run byte-identical to an uninterrupted one.
    """

    def __init__(self, run_dir: Path, chunks: Sequence[Sequence[int]]) -> None:
        self.path = run_dir / GENERATIONS
        self.chunks = [list(c) for c in chunks]
        self.rows: dict[int, Generation] = {}
        self._recover()

    def _recover(self) -> None:
        if not self.path.exists():
            return
        rows: dict[int, Generation] = {}
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break  # torn write at the end of the file
                try:
                    gen = Generation.from_json(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue
                rows[gen.index] = gen
        wanted = {i for chunk in self.chunks for i in chunk}
        complete = [c for c in self.chunks if all(i in rows for i in c)]
        self.rows = {i: rows[i] for c in complete for i in c}
        dropped = len(set(rows) & wanted) - len(self.rows)
        if dropped or len(rows) != len(self.rows):
            self._rewrite()  # drop partial chunks so the file holds only whole ones

    def missing_chunks(self) -> list[int]:
        """Indices (into `chunks`) of the chunks that still need generating."""
        return [n for n, c in enumerate(self.chunks) if not all(i in self.rows for i in c)]

    def append_chunk(self, gens: Iterable[Generation]) -> None:
        gens = list(gens)
        blob = "".join(_generation_line(g) + "\n" for g in gens).encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)
        for g in gens:
            self.rows[g.index] = g

    @property
    def complete(self) -> bool:
        return not self.missing_chunks()

    def ordered(self) -> list[Generation]:
        return [self.rows[i] for i in sorted(self.rows)]

    def _rewrite(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for gen in self.ordered():
                fh.write(_generation_line(gen) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def finalize(self) -> None:
        """Rewrite in index order (only if not already so)."""
        on_disk = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        canonical = "".join(_generation_line(g) + "\n" for g in self.ordered())
        if on_disk != canonical:
            self._rewrite()


def read_generations(run_dir: Path) -> list[Generation]:
    path = run_dir / GENERATIONS
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            try:
                out.append(Generation.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}: line {n}: not a generation record ({exc})") from exc
    return sorted(out, key=lambda g: g.index)


def run_lock(run_dir: Path):
    """An exclusive lock on a run directory (two processes on one run never interleave)."""
    from filelock import FileLock

    run_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(run_dir / ".lock"))


def is_run_dir(path: Path) -> bool:
    return (path / "config.json").is_file()


def timing_totals(
    entries: Iterable[dict[str, Any]], start: dict[str, float] | None = None
) -> dict[str, float]:
    """Sum timing.json entries into a run's cost: `<stage>_seconds`, `prepare_seconds`
    (fit and persona synthesis), `lm_<counter>` (tokens, sequences, seconds) and
    `invocations`. Work lost to a crash is not in any entry, so it is not counted.
    Entries from before the fit's LM work was recorded add no `lm_*` counters (they
    would undercount a fitted simulator), so such runs show those costs as unknown."""
    totals = dict(start or {})

    def add(key: str, value: Any) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            totals[key] = totals.get(key, 0) + value

    for entry in entries:
        add("invocations", 1)
        for stage, seconds in (entry.get("seconds") or {}).items():
            add(f"{stage}_seconds", seconds)
        record = entry.get("simulate") or {}
        if "prepare_seconds" not in record:
            continue  # no work done, or written before the fit's LM work was counted
        add("prepare_seconds", record["prepare_seconds"])
        for counter, value in (record.get("lm") or {}).items():
            add(f"lm_{counter}", value)
    return totals
