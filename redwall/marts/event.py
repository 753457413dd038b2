"""The event mart: one row per reported problem and its 7-step workflow.

- Each step's time is its *first* occurrence; steps may arrive out of order or twice. Without a
  上报 step, the report's upload time (or, before the report arrives, the first step) is its
  reported time.
- The current status is the latest step by time (ties: the higher status code, i.e. the later
  step); an event with no step yet is 上报. It is open unless that status ends the workflow
  (codes whose reference note is 终止: 结案, 不予立案). A 回退 after 结案 reopens it.
- The class (names, time limit) is the version valid on the report date of the event class, or,
  for a problem with a component, of the component class (which sets no time limit yet).
- Working time runs from dispatch (派遣, where the limit starts) to the first 结案, or to ``as_of``
  while open. ``on_time``: closed within the limit. ``overdue``: open, dispatched and past it.
  Extensions (延期) do not move the limit yet.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl

from redwall.marts.classes import classes
from redwall.worktime import TIME_ZONE, limit_seconds, with_working_clocks, working_days
from schemas import reference

STEPS = {"01": "reported_at", "02": "filed_at", "04": "dispatched_at", "05": "handled_at",
         "06": "fed_back_at", "07": "verified_at", "08": "closed_at"}
REPORTED, CLOSED = "01", "08"
ENDING = tuple(
    reference("codes").filter((pl.col("list") == "event_status") & (pl.col("note") == "终止"))["code"]
)


def _workflow(steps: pl.DataFrame) -> pl.DataFrame:
    order = ["at", "status"]
    return steps.group_by("event_id").agg(
        *(pl.col("at").filter(pl.col("status") == code).min().alias(name) for code, name in STEPS.items()),
        status=pl.col("status").sort_by(order).last(),
        status_at=pl.col("at").max(),
        first_step_at=pl.col("at").min(),
        department=pl.col("department").sort_by(order).last(),
        step_grid_code=pl.col("grid_code").sort_by(order).first(),
    )


def build_event(events: pl.DataFrame, steps: pl.DataFrame, grids: pl.DataFrame, as_of: dt.datetime) -> pl.DataFrame:
    reports = (
        events.sort("recorded_at").unique("event_id", keep="first")
        .select("event_id", "source", "major_code", "minor_code", "object_id", "address", "lon", "lat",
                "description", "grid_code", "recorded_at")
    )
    frame = (
        reports.join(_workflow(steps), on="event_id", how="full", coalesce=True)
        .with_columns(
            reported_at=pl.coalesce("reported_at", "recorded_at", "first_step_at"),
            grid_code=pl.coalesce("grid_code", "step_grid_code"),
            status=pl.col("status").fill_null(REPORTED),
        )
        .with_columns(status_at=pl.coalesce("status_at", "reported_at"),
                      is_open=~pl.col("status").is_in(ENDING),
                      reported_on=pl.col("reported_at").dt.date())
        .drop("recorded_at", "first_step_at", "step_grid_code")
    )
    # A problem with a component (部件) is classed by the component's class, which sets no time limit.
    versions = pl.concat([
        classes("event_class").with_columns(pl.col("time_limit").cast(pl.Int64), about_component=pl.lit(False)),
        classes("component_class").with_columns(about_component=pl.lit(True)),
    ], how="diagonal_relaxed").select("about_component", "major_code", "minor_code", "major_name", "class_name",
                                      "time_limit", "time_unit", "valid_from", "valid_to")
    frame = (
        frame.with_columns(about_component=pl.col("object_id").is_not_null())
        .sort("reported_on")
        .join_asof(versions.sort("valid_from"), left_on="reported_on", right_on="valid_from",
                   by=["about_component", "major_code", "minor_code"], check_sortedness=False)
        .with_columns(
            # a class version that ended before the report does not apply
            pl.when(pl.col("valid_to").is_null() | (pl.col("reported_on") < pl.col("valid_to")))
            .then(pl.col(c)) for c in ("major_name", "class_name", "time_limit", "time_unit")
        )
    )
    frame = _timeliness(frame, as_of)
    return frame.join(grids.select("grid_code", "community_code"), on="grid_code", how="left").drop(
        "about_component", "reported_on", "valid_from", "valid_to")


def _timeliness(frame: pl.DataFrame, as_of: dt.datetime) -> pl.DataFrame:
    frame = frame.with_columns(
        until=pl.when(pl.col("is_open")).then(pl.lit(as_of).dt.convert_time_zone(TIME_ZONE))
        .otherwise(pl.col("closed_at"))
    )
    dates = frame.select(pl.col("dispatched_at", "until").dt.convert_time_zone(TIME_ZONE).dt.date())
    today = as_of.astimezone(ZoneInfo(TIME_ZONE)).date()
    first = min(filter(None, [dates["dispatched_at"].min(), today]))
    last = max(filter(None, [dates["until"].max(), today]))
    frame = with_working_clocks(frame, ["dispatched_at", "until"], working_days(first, last))
    working = pl.col("until_clock") - pl.col("dispatched_at_clock")
    limit = limit_seconds(pl.col("time_limit"), pl.col("time_unit"))
    return frame.with_columns(
        limit_minutes=limit // 60,
        working_minutes=working // 60,
        on_time=pl.when(pl.col("status") == CLOSED).then(working <= limit),
        overdue=pl.when(pl.col("is_open")).then(working > limit),
    ).drop("until", "until_clock", "dispatched_at_clock")
