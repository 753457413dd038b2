"""The district's roll-up of its streets (mart.street): one row per street that sent a package
(street_package, the upward leg of 市区街居), from the current rows of that street's package.

Population and care groups are the sums of the street's grids (mart.grid as the street published
it); events, timeliness and handling time come from its events, one on-time definition
(mart.event.on_time) as in every street; quality is the street's rectification issues per source,
summed. A street counts only what its own package says: packages are snapshots per street.
"""

from __future__ import annotations

import polars as pl

from redwall.marts.event import CLOSED
from redwall.marts.grid import CARE_COUNTS
from redwall.marts.person import RESIDENT_COUNTS
from redwall.marts.tables import current

ISSUE_COUNTS = ["issues_open", "issues_open_errors", "issues_closed", "issues_waived"]
EVENT_COUNTS = ["events", "events_open", "events_overdue", "events_closed", "events_judged", "events_on_time"]


def build_street(grids: pl.DataFrame, events: pl.DataFrame, quality: pl.DataFrame) -> pl.DataFrame:
    """The roll-up from the silver frames (with history) of the packages' ``grid``, ``event`` and
    ``quality`` tables: their current rows, and when a street's package last changed any row."""
    changed = (
        pl.concat([frame.select("street_code", "_valid_from", "_valid_to") for frame in (grids, events, quality)])
        .group_by("street_code")
        .agg(package_on=pl.max_horizontal(pl.col("_valid_from").max(), pl.col("_valid_to").max()))
    )
    grids, events, quality = (current(frame) for frame in (grids, events, quality))
    people = grids.group_by("street_code").agg(
        pl.col([*RESIDENT_COUNTS, *CARE_COUNTS]).sum(),
        communities=pl.col("community_code").n_unique(),
        grids=pl.len(),
    )
    answered = pl.col("fed_back_at").is_not_null() | pl.col("closed_at").is_not_null()
    work = events.group_by("street_code").agg(
        events=pl.len(),
        events_open=pl.col("is_open").sum(),
        events_overdue=pl.col("overdue").sum(),
        events_closed=(pl.col("status") == CLOSED).sum(),
        events_judged=pl.col("on_time").is_not_null().sum(),
        events_on_time=pl.col("on_time").fill_null(False).sum(),
        handling_minutes_median=pl.col("handling_minutes").filter(answered).median(),
    )
    issues = quality.group_by("street_code").agg(pl.col(ISSUE_COUNTS).sum())
    counts = [*RESIDENT_COUNTS, *CARE_COUNTS, "communities", "grids", *EVENT_COUNTS, *ISSUE_COUNTS]
    return (
        changed.join(people, on="street_code", how="left")
        .join(work, on="street_code", how="left")
        .join(issues, on="street_code", how="left")
        .with_columns(pl.col(counts).fill_null(0).cast(pl.Int64))
        .with_columns(
            on_time_rate=pl.when(pl.col("events_judged") > 0).then(pl.col("events_on_time") / pl.col("events_judged"))
        )
        .sort("street_code")
    )
