"""Transferred gates (`--gates-from RUN`): their identity, and the checks before use.

A transfer run's output is decided by the gates it loads as much as by any setting, so
the source enters the run's fingerprint and comparable key as a content hash of the
fitted artifacts (personas, gate weights, fit settings): not as a path, which can be
refitted in place. Two transfer runs from different fits never share a directory, and
a plain run never reuses a transfer run's generations (or the reverse).

Before any work, the source is checked against the run:
- simulator structure (persona source and count, exemplar mode, gating, temperature
  mode) and encoder must match: gates trained on other shapes or another encoder's
  feature space cannot mean anything here, so these are always refused;
- the task must match too, unless the user passes `--allow-foreign-gates`: personas
  fitted on Yelp describing AG News is an experiment one may want, but never by
  accident. Accepted mismatches are recorded in config.json and fit/fit.json.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mop_bench.mop import artifacts as art

log = logging.getLogger(__name__)

#: Switches a reused fit must share with the current simulator (gate shapes and meaning).
STRUCTURAL = (
    "personas",
    "n_personas",
    "exemplars",
    "exemplars_per_prompt",
    "gating",
    "temperature",
)


@dataclass(frozen=True)
class GatesSource:
    """A checked `--gates-from` source."""

    fit_dir: Path
    content_hash: str
    """Hash of the personas, the gate weights and the fit settings (not of paths)."""
    task: str | None
    encoder: str | None
    simulator: str | None
    lm: Any
    foreign: tuple[str, ...] = ()
    """Mismatches accepted with `--allow-foreign-gates`, described."""
    allow_foreign: bool = False
    checkpoint: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.fit_dir),
            "content_hash": self.content_hash,
            "task": self.task,
            "encoder": self.encoder,
            "simulator": self.simulator,
            "lm": self.lm,
            "allow_foreign": self.allow_foreign,
            "foreign": list(self.foreign),
        }


def _canonical(obj: Any, h: Any) -> None:
    """Feed a checkpoint's content (tensors by dtype, shape and bytes) into `h`."""
    if hasattr(obj, "detach") and hasattr(obj, "dtype"):  # a torch tensor
        import torch

        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(b"{")
        for key in sorted(obj, key=str):
            h.update(json.dumps(str(key)).encode())
            _canonical(obj[key], h)
        h.update(b"}")
    elif isinstance(obj, list | tuple):
        h.update(b"[")
        for item in obj:
            _canonical(item, h)
        h.update(b"]")
    else:
        h.update(json.dumps(obj, sort_keys=True, default=str).encode())


def content_hash(personas: list[dict[str, Any]], ckpt: dict[str, Any], settings: Any) -> str:
    h = hashlib.sha256(b"mop-bench gates v1")
    h.update(json.dumps(personas, sort_keys=True).encode())
    _canonical(ckpt, h)
    h.update(art.digest(settings).encode())
    return h.hexdigest()[:16]


def _read_source(path: Path) -> tuple[Path, dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    fit_dir = art.resolve_fit_dir(Path(path))
    record = art.read_json(fit_dir / art.FIT)
    settings = record.get("settings") if isinstance(record, dict) else None
    if not isinstance(settings, dict) or not isinstance(settings.get("simulator"), dict):
        raise ValueError(f"--gates-from {fit_dir}: {art.FIT} is not a MoP fit record (no settings)")
    personas_path = fit_dir / art.PERSONAS
    if not personas_path.is_file():
        raise FileNotFoundError(f"--gates-from {fit_dir}: {art.PERSONAS} is missing")
    personas = art.read_json(personas_path)
    rows = personas.get("personas") if isinstance(personas, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f"{personas_path}: malformed personas file (no 'personas' list)")
    return fit_dir, record, rows, art.load_gates(fit_dir / art.GATES)


def check(
    fit_dir: Path,
    src_settings: dict[str, Any],
    *,
    simulator: dict[str, Any],
    sim_name: str,
    task: str,
    encoder: str,
    allow_foreign: bool,
) -> tuple[str, ...]:
    """Refuse a source that cannot serve this run; return the accepted foreign mismatches."""
    src_sim = src_settings.get("simulator") or {}
    diff = [k for k in STRUCTURAL if src_sim.get(k) != simulator.get(k)]
    if diff:
        raise ValueError(
            f"--gates-from {fit_dir}: fitted for a simulator with "
            + ", ".join(f"{k}={src_sim.get(k)!r}" for k in diff)
            + f", but this run's {sim_name!r} has "
            + ", ".join(f"{k}={simulator.get(k)!r}" for k in diff)
            + "; gates only transfer between simulators of the same structure"
        )
    if src_settings.get("encoder") != encoder:
        raise ValueError(
            f"--gates-from {fit_dir}: gates were trained on features of encoder "
            f"{src_settings.get('encoder')!r}, this run uses {encoder!r}; pass the same "
            "--encoder as the source run"
        )
    foreign = []
    if src_settings.get("task") != task:
        foreign.append(f"task {src_settings.get('task')!r} (this run: {task!r})")
    if foreign and not allow_foreign:
        raise ValueError(
            f"--gates-from {fit_dir}: personas and gates were fitted on {', '.join(foreign)}; "
            "they describe another population. Pass --allow-foreign-gates to use them "
            "anyway (recorded in config.json)"
        )
    if foreign:
        log.warning("--gates-from %s: using gates fitted on %s", fit_dir, ", ".join(foreign))
    return tuple(foreign)


def resolve_source(
    path: Path,
    spec: Any,
    *,
    task_name: str,
    encoder_identity: str,
    allow_foreign: bool = False,
) -> GatesSource:
    """Read, hash and check `path` for a run of `spec` (before its directory is chosen)."""
    fit_dir, record, personas, ckpt = _read_source(path)
    settings = record["settings"]
    sim = dataclasses.asdict(spec.simulator)
    foreign = check(
        fit_dir,
        settings,
        simulator=sim,
        sim_name=spec.simulator.name,
        task=task_name,
        encoder=encoder_identity,
        allow_foreign=allow_foreign,
    )
    return GatesSource(
        fit_dir=fit_dir,
        content_hash=content_hash(personas, ckpt, settings),
        task=settings.get("task"),
        encoder=settings.get("encoder"),
        simulator=record.get("simulator"),
        lm=settings.get("lm"),
        foreign=foreign,
        allow_foreign=allow_foreign,
        checkpoint=ckpt,
    )


def open_source(
    source: GatesSource | Path | str, settings: dict[str, Any], sim_name: str
) -> tuple[GatesSource, dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """For the simulator: (checked source, fit record, persona rows, checkpoint).

    A `GatesSource` from the runner is re-read and must still hash the same (the source
    was not refitted since this run's directory was chosen); a bare path is checked
    against the simulator's own settings, foreign sources refused."""
    path = source.fit_dir if isinstance(source, GatesSource) else Path(source)
    fit_dir, record, personas, ckpt = _read_source(path)
    src_settings = record["settings"]
    allow = source.allow_foreign if isinstance(source, GatesSource) else False
    foreign = check(
        fit_dir,
        src_settings,
        simulator=settings["simulator"],
        sim_name=sim_name,
        task=settings["task"],
        encoder=settings["encoder"],
        allow_foreign=allow,
    )
    digest = content_hash(personas, ckpt, src_settings)
    if isinstance(source, GatesSource) and digest != source.content_hash:
        raise ValueError(
            f"--gates-from {fit_dir}: the fit changed while this run started (hash "
            f"{source.content_hash}, now {digest}); run again"
        )
    checked = GatesSource(
        fit_dir=fit_dir,
        content_hash=digest,
        task=src_settings.get("task"),
        encoder=src_settings.get("encoder"),
        simulator=record.get("simulator"),
        lm=src_settings.get("lm"),
        foreign=foreign,
        allow_foreign=allow,
    )
    return checked, record, personas, ckpt
