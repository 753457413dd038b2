"""district: full snapshots of the district registers, ``<table>_YYYYMMDD.parquet``.

Each table arrives on the first day of the period and, except the grid map, once more on a
later day of its own: by then houses left by departing households stand empty and a few
organisations have opened or closed. Code columns carry names (自住, 住宅, 正常, 企业).
Organisation addresses are typed by many hands, so they come in every spelling.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from redwall.generator.addresses import with_variants
from redwall.generator.feeds import Context

CHURN = 0.01  # share of organisations opening or closing between two snapshots


def _dates(ctx: Context, table: str) -> list[dt.date]:
    days = ctx.world.period.days
    if table == "grid" or len(days) < 3:
        return days[:1]
    return [days[0], days[int(ctx.dice(f"district-{table}").integers(2, len(days)))]]


def write(ctx: Context) -> None:
    w = ctx.world
    rng = ctx.dice("district")
    folder = ctx.inbox("district")
    organizations = with_variants(w.organizations, rng)
    ctx.truth.address(organizations, "district", "organization", "house")
    opened = pl.Series(rng.random(organizations.height) < CHURN)
    closed = pl.Series(rng.random(organizations.height) < CHURN) & ~opened
    left = (
        w.persons.filter(pl.col("status") == "moved_out").group_by("house_code").agg(left_on=pl.col("status_on").max())
    )
    for table in ("grid", "building", "house", "organization", "component"):
        columns = [c.name for c in ctx.contracts.table(f"district.{table}").columns]
        for i, day in enumerate(_dates(ctx, table)):
            if table == "house":
                frame = w.houses.join(left, on="house_code", how="left", maintain_order="left").with_columns(
                    use=pl.when(pl.col("left_on") <= pl.lit(day)).then(pl.lit("空置")).otherwise("use")
                )
            elif table == "organization":
                frame = organizations.filter(~closed if i else ~opened)
            else:
                frame = getattr(w, {"grid": "grids", "building": "buildings", "component": "components"}[table])
            frame = frame.select(columns)
            name = f"{table}_{day:%Y%m%d}.parquet"
            frame.write_parquet(folder / name)
            ctx.truth.file("district", table, name, "parquet", frame.height)
