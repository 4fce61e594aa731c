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
    env.filters["est"] = fmt_estimate
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


#: Significant figures of an interval's half-width; its estimate gets the same decimals.
SIG_FIGS = 2
#: Beyond this many decimals a half-width is round-off, not precision: fmt_num instead.
_MAX_DECIMALS = 8


def decimals_for(width: float | None, sig: int = SIG_FIGS) -> int | None:
    """Decimal places that show `width` with `sig` significant figures (None: no usable
    width, the caller falls back to fmt_num)."""
    if width is None or not math.isfinite(width) or width <= 0:
        return None
    places = sig - 1 - math.floor(math.log10(abs(width)))
    # Rounding can carry into a new digit (0.0996 -> 0.10): one place fewer then.
    if round(abs(width), places) >= 10 ** (sig - places):
        places -= 1
    return None if places > _MAX_DECIMALS else max(0, places)


def fmt_value(value: float | None, half_width: float | None) -> str:
    """`value` with the decimals that show `half_width` (its interval's) to SIG_FIGS
    significant figures; fmt_num's rounding where there is no usable half-width."""
    if value is None:
        return "—"
    places = decimals_for(half_width)
    if places is None or not math.isfinite(value):
        return fmt_num(value)
    text = f"{value:,.{places}f}"
    # "-0.00" reads as a sign where there is none.
    return text[1:] if text.startswith("-") and not any(c in "123456789" for c in text) else text


def fmt_estimate(value: float | None, half_width: float | None) -> str:
    """'value ± half-width' rounded by the interval: the half-width to SIG_FIGS
    significant figures and the value to the same decimal place (0.409 ± 0.0043 shows
    as 0.4090 ± 0.0043, 0.441 ± 0.058 as 0.441 ± 0.058). Pages, tables and exports
    round an estimate here, so a number never shows more precision than its interval
    supports, nor hides a difference the interval resolves. Without a half-width, the
    value alone as fmt_num writes it."""
    if value is None:
        return "—"
    if half_width is None:
        return fmt_value(value, None)
    if decimals_for(half_width) is None:
        return f"{fmt_num(value)} ± {fmt_num(0.0)}"
    return f"{fmt_value(value, half_width)} ± {fmt_value(half_width, half_width)}"


def fmt_bounds(low: float | None, high: float | None, value: float | None = None) -> str:
    """'[low, high]' with the decimals of its half-width (as fmt_estimate); with `value`,
    'value [low, high]'."""
    if low is None or high is None:
        return "—" if value is None else fmt_num(value)
    half = (high - low) / 2.0
    body = f"[{fmt_value(low, half)}, {fmt_value(high, half)}]"
    return body if value is None else f"{fmt_value(value, half)} {body}"


def fmt_interval(iv: Interval | None, digits: int = 3) -> str:
    """'mean ± half-width' (rounded by fmt_estimate), or 'value (1 seed, no interval)'."""
    if iv is None:
        return "—"
    if iv.half_width is None:
        return f"{fmt_num(iv.mean, digits)} (1 seed, no interval)"
    half = iv.half_width
    if half <= 1e-9 * max(1.0, abs(iv.mean)):
        # Identical replicates: round-off of the variance, not spread.
        return f"{fmt_num(iv.mean, digits)} ± {fmt_num(0.0, digits)}"
    return fmt_estimate(iv.mean, half)


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
