"""Text data files as their bytes say: the encoding a byte-order mark names, the
separator a .csv header uses, and the line of the file a data row starts on.

Spreadsheet programs and PowerShell write UTF-16 (with a byte-order mark) and
semicolon-separated "CSV"; both used to fail with misleading messages ("looks like
cp1252", "column 'text' not found (did you mean 'text;label'?)"). Both are now read as
they are. Error messages name the 1-based line of a .csv/.tsv/.jsonl file, which an
editor shows, rather than a 0-based data row.
"""

from __future__ import annotations

import codecs
import csv
import logging
from pathlib import Path

log = logging.getLogger(__name__)

#: Byte-order marks and the codec that reads past them (UTF-32 first: its little-endian
#: mark starts with UTF-16's).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
#: Separators tried, in order, when a .csv header holds no comma.
_OTHER_SEPARATORS = (";", "\t", "|")
LINE_FORMATS = (".csv", ".tsv", ".jsonl")


def text_encoding(path: Path) -> str:
    """The codec to read `path` with: the one its byte-order mark names, else UTF-8.

    A file of mostly NUL bytes and no mark is UTF-16 without its mark: refused with
    what to do, since guessing its byte order could silently garble the text."""
    from mop_bench.data._read import DataError

    with open(path, "rb") as fh:
        head = fh.read(4096)
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec
    if len(head) >= 4 and head.count(0) >= len(head) // 4:
        order = "LE" if head[1::2].count(0) > head[0::2].count(0) else "BE"
        raise DataError(
            f"{path}: looks like UTF-16 text ({order}) without a byte-order mark; convert "
            f"it to UTF-8, e.g. `iconv -f UTF-16{order} -t UTF-8 {path.name} > "
            f"{path.stem}.utf8{path.suffix}`"
        )
    return "utf-8"


def csv_separator(path: Path, encoding: str) -> str:
    """`,` for a .csv file, unless its header line holds no comma but a `;`, a tab or
    a `|` (a spreadsheet's "CSV" in many locales): then that one, logged. A .tsv file
    is tab-separated."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    with open(path, encoding=encoding, newline="") as fh:
        header = fh.readline()
    if "," in header:
        return ","
    for sep in _OTHER_SEPARATORS:
        if sep in header:
            log.info("%s: read as %r-separated (its header line has no comma)", path, sep)
            return sep
    return ","  # one column


def row_place(source: str, row: int) -> str:
    """How an error names data row `row` (0-based, header excluded) of `source`: the
    1-based line of a .csv/.tsv/.jsonl file it starts on (what an editor shows); a
    parquet file or Hub split has no lines, so its 0-based row. Only called on the way
    to an error, so re-reading the file costs nothing that matters."""
    path = Path(source)
    if path.suffix.lower() in LINE_FORMATS and path.is_file():
        try:
            line = _line_of_row(path, row)
        except (OSError, UnicodeDecodeError, csv.Error, ValueError):
            line = None
        if line is not None:
            return f"line {line}"
    return f"row {row} (0-based)"


def _line_of_row(path: Path, row: int) -> int | None:
    encoding = text_encoding(path)
    if path.suffix.lower() == ".jsonl":
        seen = -1
        with open(path, encoding=encoding) as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():  # the reader skips blank lines
                    seen += 1
                    if seen == row:
                        return lineno
        return None
    sep = csv_separator(path, encoding)
    with open(path, encoding=encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=sep)
        seen = -2  # the header is record -1
        start = 1
        for record in reader:
            if record:  # pandas skips blank lines too
                seen += 1
                if seen == row:
                    return start
            start = reader.line_num + 1  # a quoted field may span lines
    return None
