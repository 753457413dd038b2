"""Address matching measured on the generator's ground truth (``redwall evaluate`` prints it, with
person resolution's figures).

Address matching is measured on ``truth/addresses.parquet`` (every delivered address text with the
place it means): the share of texts resolved to the right place at the level written (house or
building), to the right building only (a house-level text whose house stays unknown), to a wrong
place, or to none. Person resolution is measured by :mod:`redwall.marts.resolution.evaluate`.
"""

from __future__ import annotations

import time
from typing import cast

import polars as pl

from redwall.home import Home
from redwall.marts.address import resolve_addresses
from redwall.marts.tables import current, read_silver

ADDRESS_OUTCOMES = ("right", "building_only", "wrong", "unmatched")
LEVELS = ("house", "building")


def address_outcomes(truth: pl.DataFrame, buildings: pl.DataFrame, houses: pl.DataFrame) -> pl.DataFrame:
    """``truth`` (address, level, house_code, building_code) with the ``outcome`` of resolving each
    text. A house-level text is judged by its house: the truth's building of a relocated person's
    old address is their new one."""
    found = resolve_addresses(truth["address"], buildings, houses).select(
        "address", found_building="building_code", found_house="house_code"
    )
    house_found = (pl.col("level") == "house") & pl.col("found_house").is_not_null()
    return truth.join(found, on="address", how="left").with_columns(
        outcome=pl.when(house_found)
        .then(pl.when(pl.col("found_house") == pl.col("house_code")).then(pl.lit("right")).otherwise(pl.lit("wrong")))
        .when(pl.col("found_building").is_null())
        .then(pl.lit("unmatched"))
        .when(pl.col("found_building") != pl.col("building_code"))
        .then(pl.lit("wrong"))
        .when(pl.col("level") == "building")
        .then(pl.lit("right"))
        .otherwise(pl.lit("building_only"))
    )


def measure_addresses(home: Home) -> dict[str, float | int]:
    """Shares of the home's delivered address texts by outcome (:func:`address_outcomes`), over all
    texts and per level (figures only, no values)."""
    silver = read_silver(home, ("district.building", "district.house"))
    started = time.perf_counter()
    outcomes = address_outcomes(
        pl.read_parquet(home.truth / "addresses.parquet"),
        *(current(silver[f"district.{name}"]) for name in ("building", "house")),
    )
    figures: dict[str, float | int] = {"seconds": round(time.perf_counter() - started, 2)}
    for level, texts in (("all", outcomes), *((lv, outcomes.filter(pl.col("level") == lv)) for lv in LEVELS)):
        figures[f"{level}_texts"] = texts.height
        for outcome in ADDRESS_OUTCOMES:
            figures[f"{level}_{outcome}"] = round(cast(float | None, (texts["outcome"] == outcome).mean()) or 0.0, 4)
    return figures
