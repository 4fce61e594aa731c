"""The run report's view of a MoP-family fit: personas by their real index, what the
samples drew, gate diagnostics, and a visible flag when the mixture has collapsed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mop_bench.report.load import RunData, read_json_file


def personas_view(personas_path: Path, mixture: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Personas in index order (the index `generations.jsonl` records as
    `persona_index`), each with its share of the samples and a statistics line."""
    raw = read_json_file(personas_path)
    if isinstance(raw, dict):  # MoP writes {"personas": [...], "settings": {...}}
        raw = raw.get("personas")
    if not isinstance(raw, list):
        raise ValueError(f"{personas_path}: expected a list of personas")
    shares = ((mixture or {}).get("generation") or {}).get("persona_shares") or {}
    out = []
    for n, p in enumerate(raw):
        if not isinstance(p, dict) or "text" not in p:
            raise ValueError(f"{personas_path}: entry {n}: needs a 'text' field")
        out.append(
            {
                "index": n,
                "text": p["text"],
                "source": p.get("source", ""),
                "cluster_size": p.get("cluster_size"),
                "share": shares.get(str(n), 0.0 if shares else None),
                "stats": _stats_line(p.get("stats")),
                "raw": p.get("raw") if p.get("source") != "synthesized" else None,
                "examples": p.get("example_texts") or [],
            }
        )
    return out


def _stats_line(stats: dict[str, Any] | None) -> str:
    if not isinstance(stats, dict):
        return ""
    bits = [f"{name} {share:.0%}" for name, share in (stats.get("labels") or [])[:2]]
    for field, values in (stats.get("fields") or {}).items():
        bits.append(f"{field}: " + ", ".join(f"{v} {s:.0%}" for v, s in values[:2]))
    if stats.get("median_words"):
        bits.append(f"median {stats['median_words']} words")
    if stats.get("keywords"):
        bits.append("words: " + ", ".join(stats["keywords"]))
    return "; ".join(bits)


def diagnostics_view(run: RunData) -> dict[str, Any] | None:
    """Rows for the diagnostics table and the collapse flag (None for non-MoP runs)."""
    mix = run.mixture
    if not mix:
        return None
    fit = mix.get("fit") or {}
    held = mix.get("heldout_gates") or {}
    gen = mix.get("generation") or {}
    rows: list[tuple[str, Any]] = []

    def add(label: str, value: Any) -> None:
        if value is not None:
            rows.append((label, value))

    add("effective personas per context (fit)", fit.get("effective_personas"))
    add("effective personas over all contexts (fit)", fit.get("effective_personas_marginal"))
    add("effective exemplars per context (fit)", fit.get("effective_exemplars"))
    add("effective exemplars over all contexts (fit)", fit.get("effective_exemplars_marginal"))
    add("effective exemplars per context (held-out contexts)", held.get("effective_exemplars"))
    add("temperatures never trained (share)", fit.get("share_taus_never_trained"))
    add("samples", gen.get("samples"))
    add("distinct exemplars drawn", gen.get("distinct_exemplars"))
    if gen.get("top_exemplar"):
        add(
            "top exemplar (share of samples)",
            f"{gen['top_exemplar']} ({gen['top_exemplar_share']:.1%})",
        )
    add("distinct personas drawn", gen.get("distinct_personas"))
    add("top persona share", gen.get("top_persona_share"))
    add("exemplar label = requested label", gen.get("exemplar_label_match"))
    sources = mix.get("persona_sources") or {}
    if sources:
        add("persona sources", ", ".join(f"{k} {v}" for k, v in sorted(sources.items())))
    return {
        "rows": rows,
        "collapsed": bool(mix.get("collapsed")),
        "reasons": mix.get("reasons") or [],
    }
