"""The place mart: one row per house of the district register, with its building, grid and
community and the active residents living there now. A building without registered houses still
has a row (house columns null) counting the residents placed in it; a house whose building is not
in the register has one with the building columns null. Residents whose address resolves only to
a building that does have houses count in the grid mart, not here.
"""

from __future__ import annotations

import polars as pl

from redwall.marts.person import RESIDENT_COUNTS, residents_by
from redwall.marts.tables import communities


def build_place(buildings: pl.DataFrame, houses: pl.DataFrame, grids: pl.DataFrame,
                persons: pl.DataFrame) -> pl.DataFrame:
    places = (
        buildings.select("building_code", "grid_code", "community_code", "building_type", building_address="address")
        .join(houses.select("building_code", "house_code", "unit", "floor", "room", "area_m2", "use"),
              on="building_code", how="full", coalesce=True)
    )
    return (
        places.join(residents_by(persons, ["building_code", "house_code"]), on=["building_code", "house_code"],
                    how="left", nulls_equal=True)
        .join(communities(grids), on="community_code", how="left")
        .with_columns(pl.col(RESIDENT_COUNTS).fill_null(0))
    )
