"""Working time on the working calendar, vectorised.

Rules (documented choice): a working day is a day marked ``is_workday`` in the working calendar:
the committed ``schemas/reference/calendar.csv`` (weekends and public holidays off, 调休
Saturdays/Sundays on), extended by the holiday schedules the centre delivers as a ledger
(``ledgers.holiday_schedule``, :data:`SCHEDULE`): each day a schedule lists is as it lists it
(放假 off, 调休上班 on), every other day of a year delivered works Monday to Friday unless the
committed calendar says otherwise. The calendar ends on the last day of the last year it covers
without a gap (:func:`calendar_end`); days beyond it fall back to Monday–Friday, and what is
computed on them is provisional. Working hours are 09:00–12:00 and
13:00–18:00 Beijing time, so a working day has 8 working hours, and a limit of N working days is
N × 8 working hours. Timestamps outside working hours count from the next working moment.

Every timestamp is mapped to a *working clock*: the working seconds since the first day of the
table (days before it × 8 h, from a cumulative-sum day table, plus the seconds worked so far that
day). Working time between two timestamps is the difference of their clocks: one join, no loop.
"""

from __future__ import annotations

import datetime as dt
from typing import cast

import polars as pl

from redwall.schemas import reference

TIME_ZONE = "Asia/Shanghai"
SESSIONS = ((9 * 3600, 12 * 3600), (13 * 3600, 18 * 3600))  # seconds of the day
WORKDAY_SECONDS = sum(end - start for start, end in SESSIONS)
UNIT_SECONDS = {"working_hours": 3600, "working_days": WORKDAY_SECONDS}
SCHEDULE = "ledgers.holiday_schedule"  # the holiday schedules the centre delivers
WORKED = "1"  # holiday_day code of a 调休上班 day (0: 放假)


def _delivered(schedule: pl.DataFrame | None) -> pl.DataFrame:
    """The current rows of delivered holiday schedules (silver of :data:`SCHEDULE`): ``year``,
    ``date``, ``is_workday``."""
    if schedule is None or schedule.is_empty():
        return pl.DataFrame(schema={"year": pl.Int64, "date": pl.Date, "is_workday": pl.Boolean})
    return schedule.filter(pl.col("_valid_to").is_null()).select(
        pl.col("year").cast(pl.Int64), "date", is_workday=pl.col("day_type") == WORKED
    )


def calendar_end(schedule: pl.DataFrame | None = None) -> dt.date:
    """The last day the working calendar covers: the committed calendar's, extended year by year
    by each delivered schedule for the year after."""
    end = cast(dt.date, reference("calendar")["date"].max())
    years = set(_delivered(schedule)["year"])
    while end.year + 1 in years:
        end = dt.date(end.year + 1, 12, 31)
    return end


def working_days(first: dt.date, last: dt.date, schedule: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per day from ``first`` to ``last``: ``is_workday`` and ``clock_at_start``, the
    working seconds from ``first`` up to that day's midnight. ``schedule``: the silver rows of
    delivered holiday schedules (:data:`SCHEDULE`), if any."""
    days = pl.DataFrame({"date": pl.date_range(first, last, eager=True)})
    delivered = _delivered(schedule)
    return (
        days.join(delivered.select("date", listed="is_workday"), on="date", how="left")
        .join(reference("calendar").select("date", "is_workday"), on="date", how="left")
        .with_columns(is_workday=pl.coalesce("listed", "is_workday", pl.col("date").dt.weekday() <= 5))
        .drop("listed")
        .with_columns(
            clock_at_start=(pl.col("is_workday").cast(pl.Int64) * WORKDAY_SECONDS).cum_sum().shift(1, fill_value=0)
        )
    )


def _seconds_worked_in_day(second_of_day: pl.Expr) -> pl.Expr:
    return pl.sum_horizontal((second_of_day - start).clip(0, end - start) for start, end in SESSIONS)


def with_working_clocks(frame: pl.DataFrame, columns: list[str], days: pl.DataFrame) -> pl.DataFrame:
    """``frame`` plus ``<column>_clock`` (Int64 working seconds, null where the time is null) for
    each time-zone-aware datetime column; ``days`` must cover every date involved."""
    for name in columns:
        local = pl.col(name).dt.convert_time_zone(TIME_ZONE).dt.replace_time_zone(None)
        second = local.dt.time().cast(pl.Int64) // 1_000_000_000  # Time counts nanoseconds
        frame = (
            frame.with_columns(_date=local.dt.date(), _second=second)
            .join(days, left_on="_date", right_on="date", how="left")
            .with_columns(
                (
                    pl.col("clock_at_start")
                    + pl.when(pl.col("is_workday")).then(_seconds_worked_in_day(pl.col("_second"))).otherwise(0)
                ).alias(f"{name}_clock")
            )
            .drop("_date", "_second", "is_workday", "clock_at_start")
        )
    return frame


def limit_seconds(limit: pl.Expr, unit: pl.Expr) -> pl.Expr:
    return limit * unit.replace_strict(UNIT_SECONDS, default=None, return_dtype=pl.Int64)


def calendar_reach(today: dt.date, schedule: pl.DataFrame | None = None) -> int:
    """Days from ``today`` to :func:`calendar_end`; past it, working time falls back to
    Monday–Friday and misses holidays and 调休 days."""
    return (calendar_end(schedule) - today).days
