"""Tables that fit the terminal: one line per row at any width, long cells shortened on purpose.

A test name loses its start (its end, the test and its class or module, is the most specific part);
free text such as a reason loses its end. `--json` always has the full text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from flakeguard.pipeline.report import shorten

FRAME_PER_COLUMN = 3  # rich's default box: a border and one space of padding on each side
MIN_SHRUNK = 8
FREE_TEXT_FLOOR = 16


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    justify: Literal["left", "right", "center"] = "left"
    cut: Literal["start", "end"] | None = None  # None: never shortened


def cut_end(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


def _widths(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> list[int]:
    """Each column's width: its content's, then taken back one character at a time while the table is
    too wide, from free text first (down to FREE_TEXT_FLOOR), then from names, then from any of them
    down to MIN_SHRUNK (a name is worth more than the end of a reason)."""
    widths = [max([len(c.header), *(len(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    excess = sum(widths) + FRAME_PER_COLUMN * len(columns) + 1 - width
    phases = (("end", FREE_TEXT_FLOOR), ("start", MIN_SHRUNK), ("end", MIN_SHRUNK))
    for cut, floor in phases:
        while excess > 0:
            candidates = [
                i for i, c in enumerate(columns) if c.cut == cut and widths[i] > max(floor, len(c.header))
            ]
            if not candidates:
                break
            widest = max(candidates, key=lambda i: widths[i])
            widths[widest] -= 1
            excess -= 1
    return widths


def fitted_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int, *, title: str | None = None
) -> Any:
    """A rich Table of `rows` no wider than `width` where shortening can make it so."""
    from rich.table import Table
    from rich.text import Text

    widths = _widths(columns, rows, width)
    table = Table(title=title)
    for column, column_width in zip(columns, widths, strict=True):
        table.add_column(column.header, justify=column.justify, no_wrap=True, min_width=column_width)
    for row in rows:
        cells: list[Text] = []
        for column, column_width, cell in zip(columns, widths, row, strict=True):
            text = cell
            if column.cut == "start":
                text = shorten(cell, column_width)
            elif column.cut == "end":
                text = cut_end(cell, column_width)
            cells.append(Text(text))  # never markup: test names hold brackets
        table.add_row(*cells)
    return table
