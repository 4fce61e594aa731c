"""The one way mop-bench writes CSV: every text cell neutralised against formula
injection, as OWASP recommends (https://owasp.org/www-community/attacks/CSV_Injection).

Task and simulator names come from user files, so a name such as
`=HYPERLINK("http://evil","x")` would otherwise run as a formula when a spreadsheet
opens `leaderboard.csv`. A text cell that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return gets a leading `'`, which spreadsheets show as text, and no cell can
break its row. Numbers (negative
ones included) are left alone: only strings are touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value`, with a leading `'` if it is a string a spreadsheet would run. A carriage
    return inside a cell becomes a line feed: Python's csv writer quotes cells holding
    `\n` but not a bare `\r`, which readers then take as the end of the row."""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_STARTS):
        value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n")


def write_csv(frame: Any, path: Path) -> Path:
    """Write a pandas DataFrame as CSV (no index) with every text cell made safe."""
    from pandas.api.types import is_numeric_dtype

    safe = frame.copy()
    for column in safe.columns:
        if not is_numeric_dtype(safe[column].dtype):  # object or string columns
            safe[column] = safe[column].map(safe_cell)
    safe.columns = [safe_cell(str(c)) for c in safe.columns]
    safe.to_csv(path, index=False)
    return path
