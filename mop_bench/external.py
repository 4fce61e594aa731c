"""Scoring anyone's own generations (issue 18).

`mop-bench contexts` writes the exact requests a run would make (the runner's own
context draw), a researcher generates one text per request with any system, and
`mop-bench run --generations FILE.jsonl` scores that file like any simulator's output:
the same golden set, the same metrics, a run directory that reports, comparisons and
the leaderboard read like every other.

The run is a simulator of kind `external` whose fingerprint includes the SHA-256 of
the file's bytes, so two different files never share a run directory and the same
file scored again reuses its directory (and its metrics). The whole file is checked
before anything is written: a refused file leaves no run directory and no metrics.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mop_bench import store
from mop_bench.paths import safe_name
from mop_bench.spec import RunSpec, SimulatorSpec
from mop_bench.types import Context, Generation

log = logging.getLogger(__name__)

KIND = "external"
#: Keys of a generations line that echo its request, as `mop-bench contexts` writes
#: them: each is checked against the context (a file made for another seed, preset or
#: task is refused rather than scored against the wrong requests) and not copied into
#: the row's details, which already hold the context and label.
ECHO_KEYS = ("label", "label_name", "context", "fields")
#: Why `heldout_nll` has no value: it is the likelihood of held-out real texts under
#: the simulator's own model, and an external file brings texts, not a model.
HELDOUT_UNAVAILABLE = (
    "external generations: the texts were produced outside mop-bench, so there is no "
    "simulator model to measure held-out texts' likelihood under"
)


class ExternalFileError(ValueError):
    """A generations file that cannot be scored; the message is one line naming the
    file (and the 1-based line number where one line is at fault)."""


@dataclass(frozen=True)
class ExternalFile:
    """A checked generations file: its identity and its rows in the harness's format."""

    path: Path
    sha256: str
    size: int
    generations: list[Generation]

    def record(self) -> dict[str, Any]:
        """What config.json and timing.json record about the source (its name, not
        where it lay: the hash identifies it)."""
        return {
            "file": self.path.name,
            "sha256": self.sha256,
            "bytes": self.size,
            "rows": len(self.generations),
        }


def default_name(path: Path) -> str:
    """The simulator name shown in reports: the file's stem as a safe path component."""
    return safe_name(Path(path).stem, "external")


def external_spec(
    task: str,
    *,
    name: str,
    description: str = "",
    preset: str = "default",
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
) -> RunSpec:
    """The RunSpec of an external run: the preset and overrides decide the budget, data,
    encoder and metric settings exactly as for `build_spec`; the simulator is recorded
    only by name and kind (the preset's simulator settings describe a MoP, not these
    texts, so they are left out)."""
    from mop_bench.overrides import with_overrides
    from mop_bench.presets import preset as preset_values
    from mop_bench.simulators import SIMULATORS
    from mop_bench.validate import validate_spec

    clean = safe_name(name, "external")
    # Reports and leaderboards group runs by simulator name: an external file named like
    # a bundled simulator would be shown (and averaged) as that simulator.
    if clean in SIMULATORS.names():
        raise ValueError(
            f"--name {clean!r} is the name of a bundled simulator; give the external "
            "generations another --name so reports do not mix the two"
        )
    sim = SimulatorSpec(name=clean, description=description, kind=KIND)
    spec = RunSpec(task=task, simulator=sim, seed=seed, preset=preset)
    values = {k: v for k, v in preset_values(preset).items() if not k.startswith("simulator.")}
    spec = with_overrides(spec, values)
    spec = with_overrides(spec, overrides or {})
    validate_spec(spec)
    return spec


def contexts_for(spec: RunSpec, task_data) -> list[Context]:
    """The contexts a run of `spec` requests: the runner's own draw (simulate_stage)."""
    from mop_bench.data import draw_contexts

    return draw_contexts(task_data, spec.budget.n_samples, spec.seed, spec.simulator.label_prior)


def context_rows(contexts: list[Context], label_names: tuple[str, ...]) -> list[dict[str, Any]]:
    """One JSON object per context: index, label (and its name), context text, fields."""
    rows = []
    for c in contexts:
        row: dict[str, Any] = {"index": c.index, "label": c.label}
        if label_names and c.label is not None:
            row["label_name"] = label_names[c.label]
        row["context"] = c.text
        row["fields"] = c.fields
        rows.append(store.jsonable(row))  # numpy values in fields become plain JSON
    return rows


def write_contexts(rows: list[dict[str, Any]], out: Path) -> None:
    """Write the rows as JSONL to `out` atomically (`-` writes to standard output)."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if str(out) == "-":
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)


def read_external(
    path: Path, contexts: list[Context], label_names: tuple[str, ...]
) -> ExternalFile:
    """Check the whole file against the run's contexts and turn it into Generation rows.

    Each line is `{"index": int, "text": str, ...}`; indices 0..n-1 must each appear
    exactly once. Any problem raises ExternalFileError with one line; nothing is written.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: --generations file not found") from None
    except IsADirectoryError:
        raise IsADirectoryError(
            f"{path}: --generations takes a JSONL file, not a directory"
        ) from None
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    n = len(contexts)
    need = f"{n} contexts need indices 0..{n - 1}"
    seen: dict[int, int] = {}  # index -> line it was on
    rows: list[Generation] = []
    lines = data.split(b"\n")
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):
        lines[0] = lines[0][3:]  # a UTF-8 byte-order mark some editors write
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue  # blank lines (a trailing newline, an empty last line) carry nothing
        where = f"{path} line {lineno}"
        row = _parse_line(raw, where)
        index = row.get("index")
        if "index" not in row:
            raise ExternalFileError(f'{where}: no "index" (each line needs an index and a text)')
        if isinstance(index, bool) or not isinstance(index, int):
            raise ExternalFileError(f"{where}: index must be an integer, got {index!r}")
        if not 0 <= index < n:
            raise ExternalFileError(f"{where}: index {index} is out of range 0..{n - 1}")
        if index in seen:
            raise ExternalFileError(
                f"{where}: index {index} appears twice (first on line {seen[index]})"
            )
        seen[index] = lineno
        if "text" not in row:
            raise ExternalFileError(f'{where}: no "text" for index {index}')
        if not isinstance(row["text"], str):
            raise ExternalFileError(
                f"{where}: text must be a string, got {type(row['text']).__name__}"
            )
        ctx = contexts[index]
        _check_echo(row, ctx, label_names, where)
        details = {k: v for k, v in row.items() if k not in ("index", "text", *ECHO_KEYS)}
        details["external_line"] = lineno
        rows.append(
            Generation(
                index=index, context=ctx.text, label=ctx.label, text=row["text"], details=details
            )
        )
    if not seen:
        raise ExternalFileError(f"{path}: no generations in the file ({need})")
    missing = [i for i in range(n) if i not in seen]
    if missing:
        more = f"; {len(missing)} missing in all" if len(missing) > 1 else ""
        raise ExternalFileError(f"{path}: index {missing[0]} is missing ({need}{more})")
    rows.sort(key=lambda g: g.index)
    return ExternalFile(path=path, sha256=sha, size=len(data), generations=rows)


def _parse_line(raw: bytes, where: str) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExternalFileError(f"{where}: not UTF-8 text ({exc.reason})") from None
    try:
        row = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise ExternalFileError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
    except ValueError as exc:  # a duplicate key
        raise ExternalFileError(f"{where}: {exc}") from None
    if not isinstance(row, dict):
        raise ExternalFileError(
            f'{where}: expected a JSON object like {{"index": 0, "text": "..."}}, '
            f"got {type(row).__name__}"
        )
    return row


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # `{"index": 1, "index": 2}` would silently keep the last: which one was meant?
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def _check_echo(row: dict[str, Any], ctx: Context, names: tuple[str, ...], where: str) -> None:
    """Echoed request keys must agree with the context the index names."""
    name = names[ctx.label] if ctx.label is not None and ctx.label < len(names) else None
    expected = "none (the task is unlabelled)" if ctx.label is None else str(ctx.label)
    if name is not None:
        expected += f" ({name})"
    if "label" in row:
        given = row["label"]
        if isinstance(given, bool) or not (
            (given is None and ctx.label is None)
            or (isinstance(given, int) and given == ctx.label)
            or (isinstance(given, str) and name is not None and given == name)
        ):
            raise ExternalFileError(
                f"{where}: label {given!r} does not match context {ctx.index}'s label {expected}"
            )
    if "label_name" in row and row["label_name"] != name:
        raise ExternalFileError(
            f"{where}: label_name {row['label_name']!r} does not match context "
            f"{ctx.index}'s label {expected}"
        )
    if "context" in row and row["context"] != ctx.text:
        raise ExternalFileError(
            f"{where}: context differs from the run's context {ctx.index} (was the file "
            "made for another task, preset, seed or --n? `mop-bench contexts` writes them)"
        )
    if "fields" in row and row["fields"] != store.jsonable(ctx.fields):
        raise ExternalFileError(
            f"{where}: fields differ from the run's context {ctx.index}'s fields"
        )


def run_external(spec: RunSpec, path: Path, options=None, workspace=None) -> Path:
    """Score an external generations file as a run of `spec` (kind `external`); returns
    the run directory. The file is checked in full before anything is written."""
    from mop_bench.guard import check_size
    from mop_bench.runner import (
        RunOptions,
        Workspace,
        _clear,
        _record_timing,
        _write_config,
        report_stage,
        run_dir_for,
    )
    from mop_bench.runtime import runtime_identity
    from mop_bench.scoring import HELDOUT, score_stage

    if spec.simulator.kind != KIND:
        raise ValueError(f"run_external needs a simulator of kind {KIND!r} (external_spec)")
    options = options or RunOptions()
    workspace = workspace or Workspace.for_options(options)
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    task_data = workspace.task(spec)
    timing["load"] = time.perf_counter() - t0
    check_size(spec, task_data, options.results_dir, assume_yes=options.assume_yes)
    t0 = time.perf_counter()
    source = read_external(path, contexts_for(spec, task_data), tuple(task_data.card.label_names))
    timing["read_external"] = time.perf_counter() - t0
    runtime = runtime_identity(spec, workspace.device)
    run_dir = run_dir_for(
        spec, task_data, options.results_dir, runtime=runtime,
        identity={"external_sha256": source.sha256},
    )  # fmt: skip
    with store.run_lock(run_dir):
        if options.overwrite:
            _clear(run_dir)
        _write_config(run_dir, spec, task_data, runtime=runtime, extra={KIND: source.record()})
        try:
            # The source file is the truth (its hash names the directory): a rewritten
            # or hand-edited generations.jsonl is replaced by it and re-hashed.
            written = store.write_generations(run_dir, source.generations)
            if written or not _hash_matches(run_dir):
                store.record_generations_hash(run_dir)
            store.write_json(run_dir / HELDOUT, {"unavailable": HELDOUT_UNAVAILABLE})
            t0 = time.perf_counter()
            score_stage(run_dir, spec, task_data, source.generations, workspace)
            timing["embed_and_score"] = time.perf_counter() - t0
        except Exception as exc:
            store.mark_failed(run_dir, exc)
            raise
        store.clear_failed(run_dir)
        if options.report:
            t0 = time.perf_counter()
            report_stage(run_dir)
            timing["report"] = time.perf_counter() - t0
        # No prepare_seconds or LM counters: what producing the texts cost is unknown
        # here, and the cost table says so rather than showing zero.
        _record_timing(run_dir, timing, {KIND: source.record()})
    return run_dir


def _hash_matches(run_dir: Path) -> bool:
    try:
        return store.check_generations_hash(run_dir)
    except ValueError:
        return False
