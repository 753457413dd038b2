"""The organisation mart: legal entities with their unified social credit code checked (GB 32100),
placed in a grid by the register's grid code, else by their address's building."""

from __future__ import annotations

import polars as pl

from redwall.identifiers import uscc_check_expr
from redwall.marts.address import locate
from redwall.marts.tables import communities


def build_organization(
    organizations: pl.DataFrame, buildings: pl.DataFrame, houses: pl.DataFrame, grids: pl.DataFrame
) -> pl.DataFrame:
    located = locate(organizations, "address", buildings, houses).join(
        buildings.select("building_code", building_grid="grid_code"), on="building_code", how="left"
    )
    return (
        located.select(
            "uscc",
            "name",
            "org_type",
            "address",
            "employees",
            uscc_valid=uscc_check_expr(pl.col("uscc").str.to_uppercase()).fill_null(False),
            grid_code=pl.coalesce("grid_code", "building_grid"),
        )
        .join(grids.select("grid_code", "community_code"), on="grid_code", how="left")
        .join(communities(grids), on="community_code", how="left")
    )
