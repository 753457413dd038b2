"""The feed writers: each renders the world as one source delivers it.

Shared here: the :class:`Context` every writer gets, and the helpers that plant flaws into a
frame column following the convention of :mod:`redwall.generator.truth`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from redwall.generator import sheets, text
from redwall.generator.truth import DETAIL, FLAW, Truth
from redwall.generator.world import Dice, World
from redwall.home import Home
from redwall.schemas import Contracts, code_lists

if TYPE_CHECKING:  # the types of a when/then chain (polars does not export them at the top)
    from polars.expr.whenthen import ChainedThen, Then

TYPE = "#type"
NAME_VARIANT_MIX = {"homophone": 0.5, "traditional": 0.3, "inner_space": 0.2}


@dataclass
class Context:
    home: Home
    world: World
    dice: Dice
    truth: Truth
    contracts: Contracts

    def inbox(self, source: str, department: str | None = None) -> Path:
        path = self.home.inbox(source, department)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def labels(self, key: str) -> list[str]:
        return [c.label for c in self.contracts.table(key).columns]

    def header(self, key: str, column: str) -> str:
        return self.contracts.table(key).column(column).label

    @property
    def multi_street(self) -> bool:
        return self.world.streets.height > 1


def code_names(code_list: str) -> dict[str, str]:
    return code_lists()[code_list]


def names_of(frame: pl.DataFrame, column: str, code_list: str) -> pl.Expr:
    """Codes of a column delivered as their names (性别 1 -> 男)."""
    return pl.col(column).replace_strict(code_names(code_list), default=None)


def merge_flaws(frame: pl.DataFrame, column: str, kinds: pl.Series, details: pl.Series | None = None) -> pl.DataFrame:
    """Record flaw kinds of a column, keeping flaws planted earlier where no new one lands."""
    flaw, detail = column + FLAW, column + DETAIL
    new: dict[str, pl.Series | pl.Expr] = {flaw: kinds.rename(flaw)}
    if flaw in frame.columns:
        new[flaw] = pl.coalesce(kinds.rename(flaw), frame[flaw])
    if details is not None:
        new[detail] = details.rename(detail)
        if detail in frame.columns:
            new[detail] = pl.coalesce(details.rename(detail), frame[detail])
    return frame.with_columns(**new)


def flaw_column(
    frame: pl.DataFrame,
    column: str,
    flaws: dict[str, float],
    rng: np.random.Generator,
    functions: dict = text.ID_FLAWS,
    encodable: str | None = None,
) -> pl.DataFrame:
    values, kinds = text.plant(frame[column], flaws, rng, functions, _unflawed(frame, column), encodable)
    return merge_flaws(frame.with_columns(values.rename(column)), column, kinds)


def _unflawed(frame: pl.DataFrame, column: str) -> np.ndarray | None:
    """Cells without a flaw yet: one flaw per cell keeps every defect row exact."""
    return frame[column + FLAW].is_null().to_numpy() if column + FLAW in frame.columns else None


def name_variants(
    frame: pl.DataFrame, column: str, share: float, rng: np.random.Generator, encodable: str | None = None
) -> pl.DataFrame:
    """Plant name variants (kind ``name_variant``, the variant in the detail)."""
    values, detail = text.plant(
        frame[column],
        {k: share * p for k, p in NAME_VARIANT_MIX.items()},
        rng,
        text.NAME_VARIANTS,
        _unflawed(frame, column),
        encodable,
    )
    kinds = pl.when(detail.is_not_null()).then(pl.lit("name_variant"))
    return merge_flaws(frame.with_columns(values.rename(column)), column, frame.select(kinds.alias("k"))["k"], detail)


def excel_ids(frame: pl.DataFrame, column: str, share: float, rng: np.random.Generator) -> pl.DataFrame:
    """IDs typed into numeric cells: the cell holds the number Excel kept (15 significant digits)."""
    values = frame[column]
    eligible = values.str.contains(r"^\d{18}$").fill_null(False).to_numpy()
    if (unflawed := _unflawed(frame, column)) is not None:
        eligible &= unflawed
    new, kinds = text.plant(
        values,
        {"excel_rounded_id": share},
        rng,
        {"excel_rounded_id": lambda v, _: repr(text.excel_rounded(v))},
        eligible=eligible,
    )
    frame = merge_flaws(frame.with_columns(new.rename(column)), column, kinds)
    return set_types(frame, column, kinds.is_not_null(), sheets.NUMBER)


def set_types(frame: pl.DataFrame, column: str, where: pl.Series, kind: str) -> pl.DataFrame:
    t = column + TYPE
    old = frame[t] if t in frame.columns else pl.Series(t, [None] * frame.height, dtype=pl.String)
    return frame.with_columns(pl.when(where).then(pl.lit(kind)).otherwise(old).alias(t))


DATE_FLAWS = {
    "slash": "text_date",
    "chinese": "text_date",
    "compact": "text_date",
    "dotted": "text_date",
    "excel": "excel_date",
    "serial": "serial_date",
}


def date_cells(
    frame: pl.DataFrame, column: str, source: str, styles: dict[str, float], rng: np.random.Generator
) -> pl.DataFrame:
    """Write the date column ``source`` into text column ``column`` in a mix of styles.

    ``iso`` is plain text 2026-11-05; ``excel`` a real date cell; ``serial`` the bare serial
    number (an unformatted cell); the others text in that style (flaw ``text_date``).
    """
    names = list(styles)
    p = np.array(list(styles.values()))
    style = pl.Series(np.array(names)[rng.choice(len(names), frame.height, p=p / p.sum())])
    d = pl.col(source)
    serial = (d - pl.lit(text.EXCEL_EPOCH)).dt.total_days().cast(pl.String)
    expr: Then | ChainedThen = pl.when(d.is_null()).then(None)
    for name in names:
        written = {"excel": d.dt.strftime("%Y-%m-%d"), "serial": serial}.get(name)
        expr = expr.when(style == name).then(written if written is not None else text.date_text(d, name))
    frame = frame.with_columns(expr.alias(column))
    has = frame[column].is_not_null()
    kinds = pl.select(pl.when(has).then(style.replace_strict(DATE_FLAWS, default=None))).to_series()
    frame = merge_flaws(frame, column, kinds, pl.select(pl.when(has).then(style)).to_series())
    frame = set_types(frame, column, has & (style == "excel"), sheets.DATE)
    return set_types(frame, column, has & (style == "serial"), sheets.SERIAL)


def sheet_of(frame: pl.DataFrame, headers: list[str], **kwargs) -> sheets.Sheet:
    types = frame.select(
        [pl.col(h + TYPE) if h + TYPE in frame.columns else pl.lit(None, pl.String).alias(h + TYPE) for h in headers]
    )
    has_types = any(types[c].is_not_null().any() for c in types.columns)
    return sheets.Sheet(
        headers=headers,
        cells=frame.select(pl.col(h).cast(pl.String) for h in headers),
        types=types if has_types else None,
        **kwargs,
    )


def numbered(frame: pl.DataFrame, file: str, first_row: int) -> pl.DataFrame:
    return frame.with_columns(_file=pl.lit(file), _row=pl.int_range(pl.len(), dtype=pl.Int64) + first_row)
