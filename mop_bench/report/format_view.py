"""The run report's view of the `format` metric: the share failing each check, and the
texts it flagged, so that a reader sees *what* broke instead of only a worse FID."""

from __future__ import annotations

from typing import Any

from mop_bench.report.load import RunData

#: Characters of a flagged text shown in the report (the whole text is in generations.jsonl).
_TEXT_CHARS = 300
_CHECK_TITLES = {
    "markup": "echoes prompt markup",
    "assistant": "reads as an assistant's reply",
    "empty": "empty",
}


def format_note(details: dict[str, Any]) -> str:
    """One line for the metrics table: each check's share, and the capped share."""
    parts = []
    for check in _CHECK_TITLES:
        entry = details.get(check)
        if isinstance(entry, dict) and isinstance(entry.get("share"), int | float):
            parts.append(f"{check} {entry['share']:.3f}")
    capped = (details.get("capped") or {}).get("share")
    if isinstance(capped, int | float):
        parts.append(f"ended at the token cap {capped:.3f} (not a failure)")
    return " · ".join(parts)


def format_view(run: RunData, gens: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """Per failing check: its share, count and example texts (None: no format result)."""
    res = run.metrics.get("format")
    if res is None:
        return None
    details = res.get("details") or {}
    by_index = {int(g["index"]): g for g in gens or [] if "index" in g}
    checks = []
    for check, title in _CHECK_TITLES.items():
        entry = details.get(check)
        if not isinstance(entry, dict) or not entry.get("count"):
            continue
        examples = []
        for ex in entry.get("examples") or []:
            row = by_index.get(int(ex.get("index", -1)))
            text = "" if row is None else str(row.get("text", ""))
            examples.append(
                {
                    "index": ex.get("index"),
                    "match": str(ex.get("match", "")),
                    "text": text[:_TEXT_CHARS] + ("…" if len(text) > _TEXT_CHARS else ""),
                }
            )
        checks.append(
            {
                "title": title,
                "share": _percent(entry.get("share")),
                "count": entry.get("count"),
                "by_pattern": sorted((entry.get("by_pattern") or {}).items()),
                "examples": examples,
            }
        )
    return {"share": _percent(res.get("value")), "n": details.get("n"), "checks": checks}


def _percent(x: Any) -> str:
    return f"{x:.1%}" if isinstance(x, int | float) else "—"
