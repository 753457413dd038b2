"""The care-visit mart: every active care-group person, their last visit and whether the next is
overdue.

A visit counts when a grid worker's household visit saw the person (matched by their ID), or
visited their house and recorded people without an ID (a house visit, ours to assume it saw
them), or when the 独居老人台账 gives a last-visit date. A visit is overdue when none happened
within 30 days for 独居老人 and 高龄, within 90 days for the other care groups (documented choice:
monthly visits for old people living alone or very old, quarterly for the rest), or never.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from redwall.marts.person import ACTIVE, CARE_FLAGS
from redwall.marts.resolution.records import VISITS
from redwall.schemas import code_lists

CLOSE_CARE, ROUTINE_CARE = 30, 90  # days between visits


def build_care_visit(persons: pl.DataFrame, resolved: pl.DataFrame, today: dt.date) -> pl.DataFrame:
    flags = list(CARE_FLAGS.values())
    names = code_lists()["care_type"]
    seen = (
        resolved.filter(pl.col("person_key").is_not_null() & pl.col("visited_on").is_not_null())
        .group_by("person_key")
        .agg(seen_on=pl.col("visited_on").max())
    )
    house_visits = (
        resolved.filter(
            pl.col("source").is_in(VISITS) & pl.col("person_key").is_null() & pl.col("house_code").is_not_null()
        )
        .group_by("house_code")
        .agg(house_visited_on=pl.col("visited_on").max())
    )
    last_visit = pl.max_horizontal("seen_on", "house_visited_on")
    return (
        persons.filter((pl.col("status") == ACTIVE) & pl.any_horizontal(flags))
        .join(seen, on="person_key", how="left")
        .join(house_visits, on="house_code", how="left")
        .select(
            "person_key",
            "name",
            "phone",
            "residence_address",
            "house_code",
            "grid_code",
            "community_code",
            "community_name",
            care_types=pl.concat_str(
                [pl.when(flag).then(pl.lit(names[code])) for code, flag in CARE_FLAGS.items()],
                separator=",",
                ignore_nulls=True,
            ),
            visit_interval_days=pl.when(pl.col("is_living_alone") | pl.col("is_very_old"))
            .then(CLOSE_CARE)
            .otherwise(ROUTINE_CARE)
            .cast(pl.Int64),
            last_visit_on=last_visit,
            days_since_visit=(pl.lit(today) - last_visit).dt.total_days(),
        )
        .with_columns(visit_overdue=(pl.col("days_since_visit") > pl.col("visit_interval_days")).fill_null(True))
    )
