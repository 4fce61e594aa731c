"""The Jinja environment and number formatting shared by every report page.

Autoescaping is on for every template regardless of file extension: generations,
personas, contexts and even label names come from a model or a data set and are
untrusted, and nothing in this package marks them safe.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

from mop_bench.report.stats import Interval

TEMPLATES = Path(__file__).parent / "templates"


@functools.cache
def environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_num
    env.filters["pct"] = fmt_pct
    env.filters["arrow"] = arrow
    env.filters["iv"] = fmt_interval
    return env


def render_page(path: Path, template: str, **context: Any) -> Path:
    """Render `template` to `path` atomically (a reader never sees half a page)."""
    html = environment().get_template(template).render(**context)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    return path


def fmt_num(x: Any, digits: int = 3) -> str:
    """Numbers for tables: fixed decimals, small values in significant digits, '—' for none."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x).lower()
    if not isinstance(x, int | float):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if not math.isfinite(x):
        return str(x)
    if x != 0 and abs(x) < 10 ** (-digits + 1):
        return f"{x:.{digits}g}"
    if abs(x) >= 1000:
        return f"{x:,.1f}"
    return f"{x:.{digits}f}"


def fmt_pct(x: float | None) -> str:
    return "—" if x is None else f"{x:+.1%}"


def arrow(higher_is_better: bool) -> str:
    return "↑ higher is better" if higher_is_better else "↓ lower is better"


def fmt_interval(iv: Interval | None, digits: int = 3) -> str:
    """'mean ± half-width', or 'value (1 seed, no interval)'."""
    if iv is None:
        return "—"
    if iv.half_width is None:
        return f"{fmt_num(iv.mean, digits)} (1 seed, no interval)"
    half = iv.half_width
    if half <= 1e-9 * max(1.0, abs(iv.mean)):
        half = 0.0  # identical replicates: round-off of the variance, not spread
    return f"{fmt_num(iv.mean, digits)} ± {fmt_num(half, digits)}"


def relative_link(target: Path, from_dir: Path) -> str:
    """A relative URL from a page in `from_dir` to `target` (reports move as a folder)."""
    rel = os.path.relpath(Path(target).resolve(), Path(from_dir).resolve())
    return Path(rel).as_posix()


def show(v: Any) -> Any:
    """A configuration value as written (no number formatting): '0.05' stays '0.05'."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as (dotted.path, value) rows; lists of scalars joined by commas."""
    rows: list[tuple[str, Any]] = []
    if isinstance(obj, dict):
        for key in obj:
            rows.extend(flatten(obj[key], f"{prefix}{key}."))
        if not obj and prefix:
            rows.append((prefix[:-1], "{}"))
        return rows
    if isinstance(obj, list | tuple) and all(not isinstance(v, dict | list) for v in obj):
        return [(prefix[:-1], ", ".join(str(v) for v in obj))]
    return [(prefix[:-1], obj)]


def shown_path(value: Any, bases: dict[str, Path]) -> Any:
    """`value` with any absolute path replaced by one relative to a named base folder
    (`<data dir>/yelp/test.parquet`), else by its last two parts (`…/tasks/yelp.yaml`).

    Pages are published and shared: the build machine's folders (user names, mount
    points) say nothing about the result and do not belong in them. Other values pass.
    """
    from pathlib import PurePosixPath, PureWindowsPath

    if not isinstance(value, str) or not value:
        return value
    if not (PurePosixPath(value).is_absolute() or PureWindowsPath(value).drive):
        return value
    path = Path(value)
    for name, base in bases.items():
        for b in {base, base.resolve()}:
            try:
                rel = path.relative_to(b)
            except ValueError:
                continue
            return f"<{name}>/{rel.as_posix()}" if rel.parts else f"<{name}>"
    return "…/" + "/".join(path.parts[-2:])
