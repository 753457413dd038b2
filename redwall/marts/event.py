"""The event mart: one row per reported problem and its 7-step workflow.

- Each step's time is its *first* occurrence; steps may arrive out of order or twice. Without a
  上报 step, the report's upload time (or, before the report arrives, the first step) is its
  reported time.
- The current status is the latest step by time (ties: the higher status code, i.e. the later
  step); an event with no step yet is 上报. It is open unless that status ends the workflow
  (codes whose reference note is 终止: 结案, 不予立案). A 回退 after 结案 reopens it; a 延期 or
  督办 recorded after it does not (it comes late) and is not the current status.
- The class (names, time limit) is the version valid on the report date of the event class, or,
  for a problem with a component, of the component class.

**Timeliness** (the rule the generator's truth follows too), in working time on the working
calendar (:mod:`redwall.worktime`):

- The time limit runs from dispatch (派遣) to the handling department's feedback (反馈). A 回退
  sends the case back to the centre; its next 派遣 restarts the limit (``limit_starts_at``). A 派遣
  recorded again without a 回退 in between is the same dispatch: its first record counts.
- ``handling_minutes``: from ``limit_starts_at`` to the first 反馈 after it; without a 反馈, to the
  close (结案) of a case that ended, or to ``as_of`` while it runs.
- An approved extension (延期 after the limit started and before the feedback) grants the limit
  once more: ``extended``, and ``limit_minutes`` is doubled.
- ``on_time``: fed back (or closed) within the limit; false as soon as the limit has passed
  without one; null while running within it, and for a case parked as unsolvable (挂账).
  ``overdue``: open (not 挂账) and past the limit.
- ``working_minutes``, the working time to close: from the first 派遣 to the first 结案, or to
  ``as_of`` while open.
- ``provisional``: the limit's time runs past the working calendar's end (no holiday schedule
  delivered for that year yet), where it was counted Monday to Friday; the figures are computed
  again, and the flag cleared, once the year's schedule is delivered.
"""

from __future__ import annotations

import datetime as dt
from typing import cast
from zoneinfo import ZoneInfo

import polars as pl

from redwall.marts.classes import classes
from redwall.schemas import reference
from redwall.worktime import TIME_ZONE, calendar_end, limit_seconds, with_working_clocks, working_days

STEPS = {
    "01": "reported_at",
    "02": "filed_at",
    "04": "dispatched_at",
    "05": "handled_at",
    "06": "fed_back_at",
    "07": "verified_at",
    "08": "closed_at",
}
REPORTED, DISPATCHED, FED_BACK, CLOSED = "01", "04", "06", "08"
RETURNED, EXTENDED, PARKED, SUPERVISED = "11", "12", "13", "14"
ENDING = tuple(reference("codes").filter((pl.col("list") == "event_status") & (pl.col("note") == "终止"))["code"])


def _workflow(steps: pl.DataFrame) -> pl.DataFrame:
    order = ["at", "status"]
    status, at = pl.col("status"), pl.col("at")
    # each 回退 opens a new dispatch round; the limit starts at the first 派遣 of the latest round
    steps = steps.sort("event_id", *order).with_columns(round=(status == RETURNED).cum_sum().over("event_id"))
    latest_round = pl.col("round") == pl.col("round").filter(status == DISPATCHED).max()
    limit_starts_at = at.filter((status == DISPATCHED) & latest_round).min()
    # a 延期 or 督办 recorded after the case ended (in the same round) comes late: it changes nothing
    ends = status.is_in(ENDING).cast(pl.Int32)
    late = status.is_in([EXTENDED, SUPERVISED]) & ((ends.cum_sum() - ends).over("event_id", "round") > 0)

    def first_since_limit(code: str) -> pl.Expr:
        return at.filter((status == code) & (at >= limit_starts_at)).min()

    return steps.group_by("event_id").agg(
        *(at.filter(status == code).min().alias(name) for code, name in STEPS.items()),
        status=status.filter(~late).last(),  # steps are in order
        status_at=at.filter(~late).max(),
        first_step_at=at.min(),
        department=pl.col("department").sort_by(order).last(),
        step_grid_code=pl.col("grid_code").sort_by(order).first(),
        limit_starts_at=limit_starts_at,
        limit_fed_back_at=first_since_limit(FED_BACK),
        limit_closed_at=first_since_limit(CLOSED),
        extension_at=first_since_limit(EXTENDED),
    )


def build_event(
    events: pl.DataFrame,
    steps: pl.DataFrame,
    grids: pl.DataFrame,
    as_of: dt.datetime,
    schedule: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """``schedule``: the delivered holiday schedules (silver ``ledgers.holiday_schedule``), which
    extend the working calendar (:func:`redwall.worktime.working_days`)."""
    reports = (
        events.sort("recorded_at")
        .unique("event_id", keep="first")
        .select(
            "event_id",
            "source",
            "major_code",
            "minor_code",
            "object_id",
            "address",
            "lon",
            "lat",
            "description",
            "grid_code",
            "recorded_at",
        )
    )
    frame = (
        reports.join(_workflow(steps), on="event_id", how="full", coalesce=True)
        .with_columns(
            reported_at=pl.coalesce("reported_at", "recorded_at", "first_step_at"),
            grid_code=pl.coalesce("grid_code", "step_grid_code"),
            status=pl.col("status").fill_null(REPORTED),
        )
        .with_columns(
            status_at=pl.coalesce("status_at", "reported_at"),
            is_open=~pl.col("status").is_in(ENDING),
            reported_on=pl.col("reported_at").dt.date(),
        )
        .drop("recorded_at", "first_step_at", "step_grid_code")
    )
    # A problem with a component (部件) is classed, and given its time limit, by the component's class.
    versions = pl.concat(
        [
            classes("event_class").with_columns(about_component=pl.lit(False)),
            classes("component_class").with_columns(about_component=pl.lit(True)),
        ]
    ).select(
        "about_component",
        "major_code",
        "minor_code",
        "major_name",
        "class_name",
        "time_limit",
        "time_unit",
        "valid_from",
        "valid_to",
    )
    frame = (
        frame.with_columns(about_component=pl.col("object_id").is_not_null())
        .sort("reported_on")
        .join_asof(
            versions.sort("valid_from"),
            left_on="reported_on",
            right_on="valid_from",
            by=["about_component", "major_code", "minor_code"],
            check_sortedness=False,
        )
        .with_columns(
            # a class version that ended before the report does not apply
            pl.when(pl.col("valid_to").is_null() | (pl.col("reported_on") < pl.col("valid_to"))).then(pl.col(c))
            for c in ("major_name", "class_name", "time_limit", "time_unit")
        )
    )
    frame = _timeliness(frame, as_of, schedule)
    return frame.join(grids.select("grid_code", "community_code"), on="grid_code", how="left").drop(
        "about_component", "reported_on", "valid_from", "valid_to"
    )


def _timeliness(frame: pl.DataFrame, as_of: dt.datetime, schedule: pl.DataFrame | None) -> pl.DataFrame:
    now = pl.lit(as_of).dt.convert_time_zone(TIME_ZONE)
    frame = frame.with_columns(
        until=pl.when(pl.col("is_open")).then(now).otherwise(pl.col("closed_at")),
        handling_until=pl.coalesce(
            "limit_fed_back_at", pl.when(~pl.col("is_open")).then(pl.col("limit_closed_at")), now
        ),
    )
    clocks = ["dispatched_at", "until", "limit_starts_at", "handling_until"]
    dates = frame.select(pl.concat_list(pl.col(clocks).dt.convert_time_zone(TIME_ZONE).dt.date()).alias("d")).explode(
        "d"
    )
    today = as_of.astimezone(ZoneInfo(TIME_ZONE)).date()
    first = min(filter(None, [cast(dt.date | None, dates["d"].min()), today]))
    last = max(filter(None, [cast(dt.date | None, dates["d"].max()), today]))
    # a limit reaching past the calendar's end was counted Monday to Friday there: provisional
    # until the next year's holiday schedule is delivered
    beyond = pl.max_horizontal(pl.col(clocks).dt.convert_time_zone(TIME_ZONE).dt.date()) > calendar_end(schedule)
    frame = frame.with_columns(provisional=pl.col("limit_starts_at").is_not_null() & beyond.fill_null(False))
    frame = with_working_clocks(frame, clocks, working_days(first, last, schedule))
    handling = pl.col("handling_until_clock") - pl.col("limit_starts_at_clock")
    extended = pl.col("extension_at") < pl.col("handling_until")
    limit = limit_seconds(pl.col("time_limit"), pl.col("time_unit")) * (1 + extended.fill_null(False).cast(pl.Int64))
    fed_back = pl.col("limit_fed_back_at").is_not_null() | (
        ~pl.col("is_open") & pl.col("limit_closed_at").is_not_null()
    )
    judged = pl.col("status") != PARKED
    return frame.with_columns(
        extended=extended.fill_null(False),
        limit_minutes=limit // 60,
        handling_minutes=handling // 60,
        working_minutes=(pl.col("until_clock") - pl.col("dispatched_at_clock")) // 60,
        on_time=pl.when(judged & fed_back).then(handling <= limit).when(judged & (handling > limit)).then(False),
        overdue=pl.when(judged & pl.col("is_open")).then(handling > limit),
    ).drop(
        "until",
        "handling_until",
        *(f"{c}_clock" for c in clocks),
        "limit_fed_back_at",
        "limit_closed_at",
        "extension_at",
    )
