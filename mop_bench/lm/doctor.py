"""`mop-bench doctor`: can this backend be trusted to generate and to score?

    mop-bench doctor --backend openai --base-url http://127.0.0.1:8000/v1 --model M

prints one line per capability (pass / FAIL / warn / skip and the reason; the checks
are in `doctor_checks.py`, `doctor_server.py` and `doctor_generation.py`) and caches the
result per (server URL, model, engine, engine version) under `$MOP_BENCH_CACHE/doctor/`.

The interface for code that scores (a MoP fit, a held-out likelihood):

    from mop_bench.lm.doctor import require_scoring_ok
    require_scoring_ok(lm)   # raises ScoringRefused (a ValueError) with the reason

In-process backends pass at once. For an OpenAI-compatible server it uses the cached
doctor result, or runs the scoring checks now (a few requests, no reference model
needed) and caches them. Generation never asks: a server whose echo is broken can
still generate (e.g. with gates fitted in process, `--gates-from`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mop_bench.lm.base import LanguageModel
from mop_bench.lm.doctor_checks import FAIL, PASS, SKIP, WARN, Check, generic_checks
from mop_bench.lm.http import ServerError
from mop_bench.paths import cache_dir

#: Bump when checks change meaning, so older cached results are not trusted.
CHECKS_VERSION = 1
_STATUSES = (PASS, FAIL, WARN, SKIP)


class ScoringRefused(ValueError):
    """Scoring through this backend failed the doctor's checks."""


@dataclass
class DoctorReport:
    backend: dict[str, Any]
    """What was checked: backend, public URL, model, engine and version."""
    checks: list[Check]
    reference: str | None = None
    """The in-process reference model the log-probs were compared with, if any."""
    seconds: float = 0.0
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    @property
    def scoring_ok(self) -> bool:
        return not self.scoring_problems()

    def scoring_problems(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if c.scoring and c.status == FAIL]

    def lines(self) -> list[str]:
        b = self.backend
        head = f"{b.get('model')} on {b.get('url') or b.get('backend')}"
        if b.get("engine"):
            head += f" ({b['engine']}{' ' + str(b['engine_version']) if b.get('engine_version') else ''})"
        verdict = "scoring: OK" if self.scoring_ok else "scoring: REFUSED (generation only)"
        return [
            f"mop-bench doctor: {head}",
            *(c.line() for c in self.checks),
            f"{verdict}; {sum(c.status == FAIL for c in self.checks)} failed, "
            f"{sum(c.status == WARN for c in self.checks)} warnings ({self.seconds:.0f} s)",
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CHECKS_VERSION,
            "backend": self.backend,
            "reference": self.reference,
            "seconds": self.seconds,
            "created": self.created,
            "checks": [asdict(c) for c in self.checks],
        }

    @classmethod
    def from_json(cls, payload: Any) -> DoctorReport:
        """Parse a cached report, checking every field (a cache is not trusted blindly)."""
        if not isinstance(payload, dict) or payload.get("version") != CHECKS_VERSION:
            raise ValueError("not a doctor report of this version")
        checks = []
        for c in payload.get("checks") or []:
            if not (
                isinstance(c, dict)
                and isinstance(c.get("name"), str)
                and c.get("status") in _STATUSES
                and isinstance(c.get("detail"), str)
                and isinstance(c.get("scoring"), bool)
            ):
                raise ValueError(f"malformed check in doctor report: {c!r}")
            checks.append(Check(c["name"], c["status"], c["detail"], c["scoring"]))
        if not checks or not isinstance(payload.get("backend"), dict):
            raise ValueError("doctor report without checks or backend")
        return cls(
            backend=payload["backend"],
            checks=checks,
            reference=payload.get("reference"),
            seconds=float(payload.get("seconds") or 0.0),
            created=str(payload.get("created") or ""),
        )


# -- running ------------------------------------------------------------------------------


def run_doctor(
    lm: LanguageModel, *, reference: LanguageModel | None = None, scoring_only: bool = False
) -> DoctorReport:
    """Every check for `lm` (an `OpenAICompatLM` gets the server checks too)."""
    from mop_bench.lm.openai_compat import OpenAICompatLM

    start = time.perf_counter()
    ref_name = getattr(reference, "name", None)
    if isinstance(lm, OpenAICompatLM):
        from mop_bench.lm.doctor_server import server_checks

        try:
            info = lm.server_info()
        except ServerError as err:
            backend = {"backend": "openai", "url": lm.http.public, "model": lm.model}
            check = Check("server", FAIL, str(err), True)
            return DoctorReport(backend, [check], ref_name, time.perf_counter() - start)
        backend = {"backend": "openai", **info}
        version = f" {info['engine_version']}" if info.get("engine_version") else ""
        checks = [Check("server", PASS, f"{info['engine']}{version} serves {lm.model!r}")]
        checks += server_checks(lm, reference, scoring_only=scoring_only)
        if not scoring_only:
            # seed / T = 0 / max_new_tokens through the adapter's own generation path
            checks += [c for c in generic_checks(lm, None) if c.name != "reference"]
    else:
        backend = {"backend": type(lm).__name__, "model": getattr(lm, "name", "?")}
        checks = generic_checks(lm, reference)
    return DoctorReport(backend, checks, ref_name, time.perf_counter() - start)


# -- cache ----------------------------------------------------------------------------


def _cache_path(backend: dict[str, Any]) -> Path:
    key = json.dumps(
        [backend.get(k) for k in ("url", "model", "engine", "engine_version")], sort_keys=True
    )
    return cache_dir() / "doctor" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def save_report(report: DoctorReport) -> Path:
    """Write atomically (temp file + rename), so a reader never sees half a report."""
    path = _cache_path(report.backend)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".doctor.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(report.to_json(), f, indent=1)
    os.replace(tmp, path)
    return path


def cached_report(backend: dict[str, Any]) -> DoctorReport | None:
    """The cached report for this server and model, if there is a valid one for it."""
    path = _cache_path(backend)
    try:
        report = DoctorReport.from_json(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
    keys = ("url", "model", "engine", "engine_version")
    if any(report.backend.get(k) != backend.get(k) for k in keys):
        return None  # a hash collision or a hand-edited file: do not trust it
    return report


def require_scoring_ok(lm: LanguageModel) -> None:
    """Raise `ScoringRefused` (a ValueError: the CLI prints one line, rc 2) if scoring
    through `lm` cannot be trusted. In-process backends always pass; a server is
    judged by its cached doctor report, or by the scoring checks run now (and cached)."""
    from mop_bench.lm.openai_compat import OpenAICompatLM

    if not isinstance(lm, OpenAICompatLM):
        return
    backend = {"backend": "openai", **lm.server_info()}  # ServerError if it is down
    report = cached_report(backend)
    if report is None:
        report = run_doctor(lm, scoring_only=True)
        save_report(report)
    if not report.scoring_ok:
        raise ScoringRefused(
            f"refusing to score through {lm.name}: `mop-bench doctor` found "
            f"{'; '.join(report.scoring_problems())}. Generating through it stays allowed: "
            f"fit with the transformers backend and reuse the gates (--gates-from)"
        )


# -- the command ------------------------------------------------------------------------


def _reference_model(name: str | None, served: str) -> str | None:
    """The reference model: as given ("none" for no reference), else the served model's
    name when it resolves to weights on this machine (an alias or a local path; a Hub
    id is not downloaded unless named explicitly)."""
    if name:
        return None if name.lower() == "none" else name
    from mop_bench.lm.loading import PACKAGED_GGUF

    if served in PACKAGED_GGUF or Path(served).expanduser().exists():
        return served
    return None


def doctor_command(
    *,
    backend: str,
    model: str,
    base_url: str | None,
    reference: str | None,
    reference_dtype: str = "float32",
    timeout: float = 60.0,
    api_key: str | None = None,
) -> DoctorReport:
    """Build the backend, run every check, cache and return the report."""
    ref_name = _reference_model(reference, model)
    if backend == "openai":
        from mop_bench.lm.openai_compat import OpenAICompatLM

        if not base_url:
            raise ValueError(
                "doctor --backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)"
            )
        lm: LanguageModel = OpenAICompatLM(
            base_url,
            model,
            api_key=api_key,
            timeout=timeout,
            retries=1,
            tokenizer=ref_name if ref_name else None,
        )
    else:
        from mop_bench.lm.registry import load_lm
        from mop_bench.spec import LMSpec

        try:
            lm = load_lm(LMSpec(model=model, backend=backend, base_url=base_url), progress=False)
        except ImportError as err:  # e.g. the in-process vllm backend without vllm
            raise ValueError(str(err)) from None
    ref = None
    if ref_name is not None:
        from mop_bench.lm.hf import TransformersLM

        ref = TransformersLM.from_pretrained(ref_name, dtype=reference_dtype, batch_size=8)
    report = run_doctor(lm, reference=ref)
    if backend == "openai" and report.checks[0].status == PASS:
        save_report(report)
    return report
