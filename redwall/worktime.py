"""Working time on the working calendar, vectorised.

Rules (documented choice): a working day is a day marked ``is_workday`` in
``schemas/reference/calendar.csv`` (weekends and public holidays off, 调休 Saturdays/Sundays on);
days beyond the calendar's range fall back to Monday–Friday. Working hours are 09:00–12:00 and
13:00–18:00 Beijing time, so a working day has 8 working hours, and a limit of N working days is
N × 8 working hours. Timestamps outside working hours count from the next working moment.

Every timestamp is mapped to a *working clock*: the working seconds since the first day of the
table (days before it × 8 h, from a cumulative-sum day table, plus the seconds worked so far that
day). Working time between two timestamps is the difference of their clocks: one join, no loop.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from schemas import reference

TIME_ZONE = "Asia/Shanghai"
SESSIONS = ((9 * 3600, 12 * 3600), (13 * 3600, 18 * 3600))  # seconds of the day
WORKDAY_SECONDS = sum(end - start for start, end in SESSIONS)
UNIT_SECONDS = {"working_hours": 3600, "working_days": WORKDAY_SECONDS}


def working_days(first: dt.date, last: dt.date) -> pl.DataFrame:
    """One row per day from ``first`` to ``last``: ``is_workday`` and ``clock_at_start``, the
    working seconds from ``first`` up to that day's midnight."""
    days = pl.DataFrame({"date": pl.date_range(first, last, eager=True)})
    return (
        days.join(reference("calendar").select("date", "is_workday"), on="date", how="left")
        .with_columns(pl.col("is_workday").fill_null(pl.col("date").dt.weekday() <= 5))
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
                (pl.col("clock_at_start")
                 + pl.when(pl.col("is_workday")).then(_seconds_worked_in_day(pl.col("_second"))).otherwise(0)
                 ).alias(f"{name}_clock")
            )
            .drop("_date", "_second", "is_workday", "clock_at_start")
        )
    return frame


def limit_seconds(limit: pl.Expr, unit: pl.Expr) -> pl.Expr:
    return limit * unit.replace_strict(UNIT_SECONDS, default=None, return_dtype=pl.Int64)


def calendar_reach(today: dt.date) -> int:
    """Days from ``today`` to the last day of the committed working calendar; past it, working
    time falls back to Monday–Friday and misses holidays and 调休 days."""
    return (reference("calendar")["date"].max() - today).days
