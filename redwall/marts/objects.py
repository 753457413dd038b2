"""The object mart: every city component (部件) with its class names, grid and community, its
latest inspection (by time recorded) and the number of open events reported against it."""

from __future__ import annotations

import datetime as dt

import polars as pl

from redwall.marts.classes import classes


def build_object(
    components: pl.DataFrame, inspections: pl.DataFrame, events: pl.DataFrame, grids: pl.DataFrame, today: dt.date
) -> pl.DataFrame:
    names = classes("component_class").filter(
        (pl.col("valid_from") <= today) & (pl.col("valid_to").is_null() | (pl.col("valid_to") > today))
    )
    latest = inspections.group_by("object_id").agg(
        last_inspection_status=pl.col("status").sort_by("recorded_at").last(),
        last_inspected_at=pl.col("recorded_at").max(),
    )
    open_events = (
        events.filter(pl.col("is_open") & pl.col("object_id").is_not_null())
        .group_by("object_id")
        .agg(open_events=pl.len().cast(pl.Int64))
    )
    return (
        components.select(
            "object_id",
            "major_code",
            "minor_code",
            "name",
            "grid_code",
            "status",
            "owner_department",
            "maintainer",
            "lon",
            "lat",
            "installed_on",
        )
        .join(
            names.select("major_code", "minor_code", "major_name", "class_name"),
            on=["major_code", "minor_code"],
            how="left",
        )
        .join(grids.select("grid_code", "community_code"), on="grid_code", how="left")
        .join(latest, on="object_id", how="left")
        .join(open_events, on="object_id", how="left")
        .with_columns(pl.col("open_events").fill_null(0))
    )
