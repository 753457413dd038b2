"""The place marts. ``place``: one row per house of the district register, with its building, grid and
community and the active residents living there now. A building without registered houses still
has a row (house columns null) counting the residents placed in it; a house whose building is not
in the register has one with the building columns null. Residents whose address resolves only to
a building that does have houses count in the grid mart, not here.

``address_issue``: the addresses of residence registrations, organisations and reported events
that resolve to no place or to several (:mod:`redwall.marts.address`), one row per record, routed
to the best-known grid, so they are fixed at the source rather than left as silent nulls.
"""

from __future__ import annotations

import polars as pl

from redwall.marts.address import building_part, locate
from redwall.marts.person import RESIDENT_COUNTS, residents_by
from redwall.marts.resolution.records import SOURCES, person_digest, record_key
from redwall.marts.tables import communities, current
from redwall.schemas import load_contracts


def build_place(
    buildings: pl.DataFrame, houses: pl.DataFrame, grids: pl.DataFrame, persons: pl.DataFrame
) -> pl.DataFrame:
    places = buildings.select(
        "building_code", "grid_code", "community_code", "building_type", "lon", "lat", building_address="address"
    ).join(
        houses.select("building_code", "house_code", "unit", "floor", "room", "area_m2", "use"),
        on="building_code",
        how="full",
        coalesce=True,
    )
    return (
        places.join(
            residents_by(persons, ["building_code", "house_code"]),
            on=["building_code", "house_code"],
            how="left",
            nulls_equal=True,
        )
        .join(communities(grids), on="community_code", how="left")
        .with_columns(pl.col(RESIDENT_COUNTS).fill_null(0))
    )


# Every source table whose addresses are resolved, with the column its address is written in: its
# contract's ``address``.
ADDRESSED = load_contracts().addressed


def _issues(source: str, frame: pl.DataFrame, address: str) -> pl.DataFrame:
    """A source's records whose address does not resolve, keyed by the digest of their source key
    (as a person key is digested), so no ID number is held in clear."""
    issues = frame.filter(pl.col("address_issue").is_not_null())
    keys = issues.select(pl.col("record_key") if "record_key" in issues.columns else record_key(source))
    return issues.select(
        source=pl.lit(source),
        record_key=person_digest(keys.to_series()),
        reason="address_issue",
        address_building=building_part(pl.col(address)),
        building_code="building_code",
        grid_code=pl.coalesce("grid_code", "address_grid"),
    )


def build_address_issue(
    placed: pl.DataFrame,
    silver: dict[str, pl.DataFrame],
    buildings: pl.DataFrame,
    houses: pl.DataFrame,
    grids: pl.DataFrame,
) -> pl.DataFrame:
    """Place references that resolve to no place, or to several, as quality issues for the grid
    to settle: per source record, the reason (未匹配到楼栋 / 未匹配到房屋 / 多个候选), the address
    down to its building, and the best-known grid (the record's own, else its building's). Every
    :data:`ADDRESSED` table is read: a person-bearing one's current records from ``placed`` (they
    carry their address as residence_address, located when placed), any other from ``silver`` (a
    snapshot as it stands now, an append-only table whole)."""
    building_grid = buildings.select("building_code", _building_grid="grid_code")
    contracts = load_contracts()

    def rows(source: str) -> pl.DataFrame:
        frame = silver[source]
        return current(frame) if contracts.table(source).load == "snapshot" else frame

    located = [
        (source, placed.filter((pl.col("source") == source) & pl.col("_valid_to").is_null()), "residence_address")
        if source in SOURCES
        else (source, locate(rows(source), column, buildings, houses), column)
        for source, column in ADDRESSED.items()
    ]
    issues = pl.concat([_issues(source, frame, column) for source, frame, column in located], how="diagonal_relaxed")
    return (
        issues.join(building_grid, on="building_code", how="left")
        .with_columns(grid_code=pl.coalesce("grid_code", "_building_grid"))
        .drop("_building_grid")
        .join(grids.select("grid_code", "community_code").unique("grid_code"), on="grid_code", how="left")
        .join(communities(grids), on="community_code", how="left")
        .unique(["source", "record_key"], keep="first", maintain_order=True)
    )
