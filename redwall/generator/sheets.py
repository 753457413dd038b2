"""Spreadsheets as clerks deliver them: a title row, the header, typed cells, notes below.

A :class:`Sheet` holds every cell as text plus, where it is not a text cell, its Excel type; the
same sheet can be written as .xlsx (xlsxwriter) or "saved as" CSV in GBK the way Excel does it.
Workbooks carry a fixed creation date so equal seeds give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import xlsxwriter

# Cell types beside plain text (null type = text cell).
NUMBER, DATE, SERIAL, FORMULA = "number", "date", "serial", "formula"
FORMULA_SEPARATOR = "\t"  # a formula cell's text is "<formula>\t<cached value>"
CREATED = dt.datetime(2026, 1, 1, 8, 0, 0)
BIG_SHEET = 20_000  # rows; above this xlsxwriter streams rows to disk (constant_memory)


@dataclass
class Sheet:
    headers: list[str]
    cells: pl.DataFrame  # one String column per header, in order
    types: pl.DataFrame | None = None  # same columns, the cell type or null
    title: str | None = None
    notes: list[str] = field(default_factory=list)
    name: str = "Sheet1"
    merged: list[tuple[int, int, int]] = field(default_factory=list)  # (first data row, last, column)

    @property
    def first_data_row(self) -> int:
        """The Excel row number (1-based) of the first data row."""
        return 3 if self.title else 2


def write_xlsx(path: Path, sheet: Sheet, author: str) -> None:
    big = sheet.cells.height > BIG_SHEET and not sheet.merged
    workbook = xlsxwriter.Workbook(
        str(path),
        {"constant_memory": big, "strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False},
    )
    workbook.set_properties({"created": CREATED, "author": author})
    ws = workbook.add_worksheet(sheet.name)
    bold = workbook.add_format({"bold": True, "align": "center"})
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    top = 0
    if sheet.title:
        ws.merge_range(0, 0, 0, len(sheet.headers) - 1, sheet.title, bold)
        top = 1
    ws.write_row(top, 0, sheet.headers, bold)
    types = sheet.types.rows() if sheet.types is not None else None
    merged_away = {(r, c) for first, last, c in sheet.merged for r in range(first + 1, last + 1)}
    for i, row in enumerate(sheet.cells.rows()):
        r = top + 1 + i
        kinds = types[i] if types else ()
        for c, value in enumerate(row):
            if value is None or value == "" or (i, c) in merged_away:
                continue
            kind = kinds[c] if kinds else None
            if kind is None:
                ws.write_string(r, c, value)
            elif kind == NUMBER:
                ws.write_number(r, c, float(value))
            elif kind == SERIAL:
                ws.write_number(r, c, int(value))
            elif kind == DATE:
                ws.write_datetime(r, c, dt.datetime.fromisoformat(value), date_format)
            elif kind == FORMULA:
                formula, cached = value.split(FORMULA_SEPARATOR)
                ws.write_formula(r, c, formula, None, float(cached))
    for first, last, c in sheet.merged:
        ws.merge_range(top + 1 + first, c, top + 1 + last, c, sheet.cells[first, c])
    r = top + 1 + sheet.cells.height
    for note in sheet.notes:
        ws.write_string(r, 0, note)
        r += 1
    workbook.close()


def csv_text(value: str | None, kind: str | None) -> str:
    """A cell as Excel writes it when saving as CSV: what the cell displays."""
    if value is None:
        return ""
    if kind == NUMBER:
        number = float(value)
        return f"{number:.5E}" if abs(number) >= 1e11 else f"{number:g}"
    if kind == DATE:
        d = dt.date.fromisoformat(value[:10])
        return f"{d.year}/{d.month}/{d.day}"
    if kind == FORMULA:
        cached = value.split(FORMULA_SEPARATOR)[1]
        return cached.removesuffix(".0")
    return value


def write_csv(path: Path, sheet: Sheet, encoding: str) -> None:
    width = len(sheet.headers)

    def line(values) -> str:
        return ",".join(f'"{v}"' if ("," in v or '"' in v) else v for v in values)

    types = sheet.types.rows() if sheet.types is not None else None
    lines = [line([sheet.title] + [""] * (width - 1))] if sheet.title else []
    lines.append(line(sheet.headers))
    for i, row in enumerate(sheet.cells.rows()):
        kinds = types[i] if types else [None] * width
        lines.append(line(csv_text(v, k) for v, k in zip(row, kinds, strict=True)))
    lines += [line([note] + [""] * (width - 1)) for note in sheet.notes]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
