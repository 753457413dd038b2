"""Addresses as people write them: one true place, many spellings.

A place is held as parts (road, door number, compound building number, unit, room); every
spelling is built from the parts by a named variant, so ``addresses.parquet`` can say which
variant each delivered text is and which house or building it means.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from redwall.generator.text import FULLWIDTH, chinese_numbers

if TYPE_CHECKING:  # the types of a when/then chain (polars does not export them at the top)
    from polars.expr.whenthen import ChainedThen, Then

DISTRICT = "西城区"
CITY = "北京市"
# Variants and how often clerks write each (the canonical form is the district register's own).
VARIANTS = {
    "canonical": 0.30,
    "with_city": 0.14,
    "no_district": 0.14,
    "chinese_numerals": 0.08,
    "short_building": 0.07,
    "dashed": 0.06,
    "room_suffix": 0.08,
    "spaced": 0.05,
    "fullwidth": 0.04,
    "no_unit": 0.04,
}


def _parts(level: str, numerals: bool = False, building_word: str = "号楼") -> dict[str, pl.Expr]:
    num = chinese_numbers if numerals else (lambda e: e)
    door = pl.concat_str([num(pl.col("door_no").cast(pl.String)), pl.lit("号")])
    block = (
        pl.when(pl.col("building_no").is_not_null())
        .then(pl.concat_str([pl.lit("院"), num(pl.col("building_no").cast(pl.String)), pl.lit(building_word)]))
        .otherwise(pl.lit(""))
    )
    parts = {"road": pl.col("road"), "door": door, "block": block}
    if level == "house":
        parts["unit"] = (
            pl.when(pl.col("unit").is_not_null())
            .then(pl.concat_str([num(pl.col("unit").cast(pl.String)), pl.lit("单元")]))
            .otherwise(pl.lit(""))
        )
        parts["room"] = pl.col("room")
    return parts


def address_expr(variant: str, level: str = "house") -> pl.Expr:
    """The text of one variant, from columns road, door_no, building_no (null: no compound),
    and for houses unit (null: none) and room."""
    p = _parts(level)
    plain = list(p.values())
    if variant == "canonical":
        return pl.concat_str([pl.lit(DISTRICT), *plain])
    if variant == "with_city":
        return pl.concat_str([pl.lit(CITY + DISTRICT), *plain])
    if variant == "no_district":
        return pl.concat_str(plain)
    if variant == "chinese_numerals":
        cn = _parts(level, numerals=True)
        tail = [pl.lit("室")] if level == "house" else []
        return pl.concat_str([*cn.values(), *tail])
    if variant == "short_building":
        return pl.concat_str([pl.lit(DISTRICT), *_parts(level, building_word="楼").values()])
    if variant == "dashed":
        if level != "house":
            return pl.concat_str(
                [
                    pl.lit(DISTRICT),
                    p["road"],
                    pl.col("door_no").cast(pl.String),
                    pl.lit("号"),
                    pl.when(pl.col("building_no").is_not_null())
                    .then(pl.concat_str([pl.lit("院"), pl.col("building_no").cast(pl.String), pl.lit("号")]))
                    .otherwise(pl.lit("")),
                ]
            )
        numbers = pl.concat_str(
            [pl.col("building_no").cast(pl.String), pl.col("unit").cast(pl.String), pl.col("room")],
            separator="-",
            ignore_nulls=True,
        )
        return pl.concat_str(
            [
                pl.lit(DISTRICT),
                p["road"],
                pl.col("door_no").cast(pl.String),
                pl.when(pl.col("building_no").is_not_null()).then(pl.lit("号院")).otherwise(pl.lit("号-")),
                numbers,
            ]
        )
    if variant == "room_suffix":
        tail = [pl.lit("室")] if level == "house" else [pl.lit("")]
        return pl.concat_str([pl.lit(DISTRICT), *plain, *tail])
    if variant == "spaced":
        return pl.concat_str([pl.lit(DISTRICT), pl.concat_str([p["road"], p["door"]]), *plain[2:]], separator=" ")
    if variant == "fullwidth":
        return pl.concat_str([pl.lit(DISTRICT), *plain]).str.replace_many(
            list("0123456789"), [chr(FULLWIDTH[ord(c)]) for c in "0123456789"]
        )
    if variant == "no_unit":
        return pl.concat_str([pl.lit(DISTRICT), *[e for k, e in p.items() if k != "unit"]])
    raise KeyError(variant)


def with_variants(
    frame: pl.DataFrame,
    rng: np.random.Generator,
    level: str = "house",
    variants: dict[str, float] = VARIANTS,
    column: str = "address",
) -> pl.DataFrame:
    """Add ``column`` (the written address) and ``address_variant`` drawn by the given shares."""
    names = list(variants)
    p = np.array(list(variants.values()))
    chosen = pl.Series("address_variant", np.array(names)[rng.choice(len(names), frame.height, p=p / p.sum())])
    frame = frame.with_columns(chosen)
    expr: Then | ChainedThen = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    for name in names:
        expr = expr.when(pl.col("address_variant") == name).then(address_expr(name, level))
    return frame.with_columns(expr.alias(column))
