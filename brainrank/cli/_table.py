"""Tables that fit the terminal: long text cut, long headers wrapped, wide tables split.

:func:`render` lays a DataFrame out in at most ``width`` columns:

1. text cells longer than a third of the width (descriptions, parameter lists, paths) are
   cut with ``…`` (``--format json`` or ``csv`` gives them whole);
2. a header longer than its column's values (a configuration name such as
   ``simulated/srp-ridge:mouse(alphas=1, standardize=all)``) is wrapped over up to three
   lines at ``/``, ``(``, ``,`` and spaces;
3. a table still too wide is split into blocks of columns, one under the other, each
   starting with the table's key columns (``rank`` and ``model``, or the first column) so
   every block can be read on its own.

Numbers are right-aligned, text left-aligned. The commands use it when they print to a
terminal (or when ``COLUMNS`` is set); piped into a file, a table is printed whole.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

#: columns repeated at the left of every block, in this order, where the table has them
KEY_COLUMNS = ("rank", "model", "identifier", "data")
#: a cell is never cut below this many characters
MIN_CELL = 12
#: header lines at most
HEADER_LINES = 3
GAP = 2


def output_width(stream: Any = None) -> int | None:
    """Columns to fit a table to: ``COLUMNS`` when set, the terminal's width when ``stream``
    (default stdout) is a terminal, else None (print whole)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    stream = stream or sys.stdout
    try:
        if stream.isatty():
            return shutil.get_terminal_size((100, 24)).columns
    except (AttributeError, ValueError):
        pass
    return None


def _cell(value: Any, float_format: Callable[[float], str]) -> str:
    if value is None or value is pd.NA:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else float_format(value)
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        try:
            return _cell(value.item(), float_format)
        except (ValueError, AttributeError):
            pass
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    text = str(value)
    return " ".join(text.split()) if "\n" in text else text


def _numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _wrap_header(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width``, broken after ``/``, ``(``, ``,`` or at
    spaces; at most :data:`HEADER_LINES` lines: a longer text keeps its start and its end
    with ``…`` between (two configurations that differ at the end stay told apart)."""
    lines = _wrap(text, width)
    budget = width * HEADER_LINES
    while len(lines) > HEADER_LINES and budget > 8:
        budget -= 2
        half = (budget - 1) // 2
        lines = _wrap(text[:half] + "…" + text[len(text) - half :], width)
    return lines[:HEADER_LINES]


def _wrap(text: str, width: int) -> list[str]:
    if len(text) <= width:
        return [text]
    pieces = [p for p in re.split(r"(?<=[/(,])|(?<= )", text) if p]
    lines: list[str] = []
    current = ""
    for piece in pieces:
        while len(piece) > width:  # a piece longer than a line: cut it
            if current:
                lines.append(current)
                current = ""
            lines.append(piece[:width])
            piece = piece[width:]
        if len(current) + len(piece) > width:
            lines.append(current.rstrip())
            current = piece.lstrip()
        else:
            current += piece
    if current:
        lines.append(current)
    return lines


def render(
    frame: pd.DataFrame,
    width: int | None,
    float_format: Callable[[float], str] = lambda v: f"{v:.3f}",
    keys: Sequence[str] = KEY_COLUMNS,
) -> str:
    """``frame`` as text fitting ``width`` columns (see the module docstring); ``width``
    None: every column at its full width, in one block."""
    columns = [str(c) for c in frame.columns]
    cells = {
        name: [_cell(v, float_format) for v in frame[column]]
        for name, column in zip(columns, frame.columns, strict=True)
    }
    numeric = {name: _numeric(frame[column])
               for name, column in zip(columns, frame.columns, strict=True)}  # fmt: skip
    cap = None if width is None else max(MIN_CELL, width // 3)
    if cap is not None:
        for name in columns:
            if not numeric[name]:
                cells[name] = [c if len(c) <= cap else c[: cap - 1] + "…" for c in cells[name]]
    sizes: dict[str, int] = {}
    headers: dict[str, list[str]] = {}
    for name in columns:
        content = max((len(c) for c in cells[name]), default=1)
        if cap is None:
            headers[name] = [name]
        else:  # a long header over short values is wrapped over up to three lines
            room = max(content, min(len(name), max(12, math.ceil(len(name) / HEADER_LINES) + 4)))
            headers[name] = _wrap_header(name, min(room, max(cap, content)))
        sizes[name] = max(content, *(len(line) for line in headers[name]))
    key = [c for c in keys if c in columns] or columns[:1]
    blocks = _blocks(columns, key, sizes, width)
    out = []
    for block in blocks:
        out.append(_block_text(block, cells, headers, sizes, numeric, len(frame)))
    return "\n\n".join(out)


def _blocks(columns: list[str], key: list[str], sizes: dict[str, int],
            width: int | None) -> list[list[str]]:  # fmt: skip
    """Columns split into blocks of at most ``width`` characters, each led by ``key``."""
    total = sum(sizes[c] for c in columns) + GAP * (len(columns) - 1)
    if width is None or total <= width:
        return [columns]
    lead = sum(sizes[c] for c in key) + GAP * len(key)
    rest = [c for c in columns if c not in key]
    blocks: list[list[str]] = []
    current: list[str] = []
    used = lead
    for column in rest:
        need = sizes[column] + GAP
        if current and used + need > width:
            blocks.append(key + current)
            current, used = [], lead
        current.append(column)
        used += need
    if current or not blocks:
        blocks.append(key + current)
    return blocks


def _block_text(block: list[str], cells: dict[str, list[str]], headers: dict[str, list[str]],
                sizes: dict[str, int], numeric: dict[str, bool], n_rows: int) -> str:  # fmt: skip
    height = max(len(headers[c]) for c in block)
    lines = []
    for level in range(height):
        parts = []
        for column in block:
            lines_of = headers[column]
            # a wrapped header sits at the bottom of the header rows, by its values
            offset = height - len(lines_of)
            text = lines_of[level - offset] if level >= offset else ""
            parts.append(
                text.rjust(sizes[column]) if numeric[column] else text.ljust(sizes[column])
            )
        lines.append((" " * GAP).join(parts).rstrip())
    for row in range(n_rows):
        parts = []
        for column in block:
            value = cells[column][row]
            parts.append(
                value.rjust(sizes[column]) if numeric[column] else value.ljust(sizes[column])
            )
        lines.append((" " * GAP).join(parts).rstrip())
    return "\n".join(lines)
