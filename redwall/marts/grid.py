"""The grid mart: per unit grid (with its community) the active resident population by type, the
care groups among them, and how its events stand. Grids that appear in persons or events but not
in the district's grid register still get a row (community columns null)."""

from __future__ import annotations

import polars as pl

from redwall.marts.event import CLOSED
from redwall.marts.person import ACTIVE, RESIDENT_COUNTS, residents_by

CARE_COUNTS = {
    "living_alone": "is_living_alone",
    "very_old": "is_very_old",
    "disabled": "is_disabled",
    "dibao": "is_dibao",
}
EVENT_COUNTS = ["events_open", "events_overdue", "events_closed", "events_judged", "events_on_time"]


def build_grid(grids: pl.DataFrame, persons: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    placed = pl.col("grid_code").is_not_null()
    care = (
        persons.filter(placed & (pl.col("status") == ACTIVE))
        .group_by("grid_code")
        .agg(pl.col(flag).sum().alias(name) for name, flag in CARE_COUNTS.items())
    )
    work = (
        events.filter(placed)
        .group_by("grid_code")
        .agg(
            events_open=pl.col("is_open").sum(),
            events_overdue=pl.col("overdue").sum(),
            events_closed=(pl.col("status") == CLOSED).sum(),
            # one timeliness, the event mart's on_time: its rate per grid is events_on_time / events_judged
            events_judged=pl.col("on_time").is_not_null().sum(),
            events_on_time=pl.col("on_time").fill_null(False).sum(),
        )
    )
    counts = [*RESIDENT_COUNTS, *CARE_COUNTS, *EVENT_COUNTS]
    return (
        grids.select("grid_code", "community_code", "community_name", "street_code", "area_m2")
        .join(residents_by(persons.filter(placed), ["grid_code"]), on="grid_code", how="full", coalesce=True)
        .join(care, on="grid_code", how="full", coalesce=True)
        .join(work, on="grid_code", how="full", coalesce=True)
        .with_columns(pl.col(counts).fill_null(0).cast(pl.Int64))
    )
