"""Run directories: atomic writes, the incremental generation log, locks.

Nothing here knows about simulators or metrics; it only makes sure that whatever is
written is either wholly there or not there at all, so a run killed at any moment
(`kill -9` included) can be resumed without losing or duplicating work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mop_bench.types import Generation

GENERATIONS = "generations.jsonl"
GENERATIONS_SHA = "generations.sha256"
FAILED = "failed.json"


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


def write_generations(run_dir: Path, generations: Sequence[Generation]) -> bool:
    """Write `generations.jsonl` whole, in index order and in the log's own line format,
    unless it already holds exactly these rows; returns whether it was written. For
    generations that arrive complete (an external file), not for resumable runs."""
    path = run_dir / GENERATIONS
    canonical = "".join(
        _generation_line(g) + "\n" for g in sorted(generations, key=lambda g: g.index)
    )
    if path.is_file() and path.read_text(encoding="utf-8") == canonical:
        return False
    _write_text(path, canonical)
    return True


def read_generations(run_dir: Path, n: int | None = None) -> list[Generation]:
    """The generations in index order. With `n`, the file must hold indices 0..n-1
    exactly once each (a deleted or duplicated line is an error, not a smaller or
    larger sample) and match the hash recorded when it was generated."""
    path = run_dir / GENERATIONS
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            try:
                out.append(Generation.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}: line {lineno}: not a generation record ({exc})") from exc
    out.sort(key=lambda g: g.index)
    if n is not None:
        _check_indices(path, [g.index for g in out], n)
        check_generations_hash(run_dir)
    return out


def _check_indices(path: Path, indices: list[int], n: int) -> None:
    seen: dict[int, int] = {}
    for i in indices:
        seen[i] = seen.get(i, 0) + 1
    dups = sorted(i for i, c in seen.items() if c > 1)
    missing = sorted(set(range(n)) - set(seen))
    extra = sorted(i for i in seen if not 0 <= i < n)
    problems = []
    if missing:
        problems.append(f"index {_few(missing)} missing")
    if dups:
        problems.append(f"index {_few(dups)} repeated")
    if extra:
        problems.append(f"index {_few(extra)} outside 0..{n - 1}")
    if problems:
        raise ValueError(
            f"{path}: damaged: the run's config asks for {n} generations (indices 0..{n - 1} "
            f"once each) but the file has {len(indices)} rows: {'; '.join(problems)}. "
            "Re-run the run (it regenerates missing chunks) instead of re-scoring"
        )


def _few(values: list[int]) -> str:
    shown = ", ".join(map(str, values[:5]))
    return shown + (f" and {len(values) - 5} more" if len(values) > 5 else "")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record_generations_hash(run_dir: Path) -> None:
    """Write `generations.sha256` (sha256sum format) for the finished generations file."""
    digest = file_sha256(run_dir / GENERATIONS)
    _write_text(run_dir / GENERATIONS_SHA, f"{digest}  {GENERATIONS}\n")


def check_generations_hash(run_dir: Path) -> bool:
    """Whether a hash was recorded; raises if the file no longer matches it."""
    sha_path = run_dir / GENERATIONS_SHA
    if not sha_path.is_file():
        return False
    recorded = sha_path.read_text(encoding="ascii", errors="replace").split()[:1]
    actual = file_sha256(run_dir / GENERATIONS)
    if recorded != [actual]:
        raise ValueError(
            f"{run_dir / GENERATIONS}: changed since it was generated (sha256 "
            f"{actual[:12]}..., recorded {(recorded or ['nothing'])[0][:12]}...); re-run "
            "with --overwrite to regenerate it"
        )
    return True


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def mark_failed(run_dir: Path, exc: BaseException) -> None:
    """Record why a run stopped (`failed.json`), so reports can say so and skip it."""
    from mop_bench.redact import scrub

    message = " ".join(scrub(str(exc)).splitlines())[:2000]
    with contextlib.suppress(OSError):  # the original error matters more than this note
        write_json(run_dir / FAILED, {"error": type(exc).__name__, "message": message})


def clear_failed(run_dir: Path) -> None:
    (run_dir / FAILED).unlink(missing_ok=True)


def incomplete_reason(run_dir: Path) -> str | None:
    """Why `run_dir` holds no usable result (None when it is complete: scored, and its
    last invocation did not fail; a failure can leave metrics of an earlier state)."""
    failed = run_dir / FAILED
    if not failed.is_file() and (run_dir / "metrics.json").is_file():
        return None
    if failed.is_file():
        try:
            info = read_json(failed)
            return f"the run failed: {info.get('error')}: {info.get('message')}"
        except (OSError, ValueError, AttributeError):
            return "the run failed"
    return "incomplete run: no metrics.json (it failed or is still running)"


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
