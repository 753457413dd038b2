"""Working time: case time limits run in working hours/days of the official calendar (调休 included).

A working day is 09:00–12:00 and 13:00–18:00 (8 working hours). Minutes are counted on a grid
from ``origin``, so adding working time to a million timestamps is one ``searchsorted``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from schemas import reference

WORKING_SPANS = ((9 * 60, 12 * 60), (13 * 60, 18 * 60))
HOURS_PER_DAY = sum(b - a for a, b in WORKING_SPANS) // 60


class WorkClock:
    def __init__(self, first: dt.date, last: dt.date):
        self.origin = np.datetime64(first, "m")
        days = np.arange(np.datetime64(first), np.datetime64(last) + 1)
        calendar = reference("calendar")
        known = dict(zip(calendar["date"].to_list(), calendar["is_workday"].to_list()))
        # Outside the committed calendar, fall back to Monday–Friday.
        workday = np.array([known.get(d, d.weekday() < 5) for d in days.astype(dt.date)])
        minute = np.arange(24 * 60)
        in_hours = np.zeros(24 * 60, bool)
        for start, stop in WORKING_SPANS:
            in_hours |= (minute >= start) & (minute < stop)
        working = (workday[:, None] & in_hours[None, :]).ravel()
        self.cumulative = np.concatenate([[0], np.cumsum(working)])

    def _index(self, t: np.ndarray) -> np.ndarray:
        return (t.astype("datetime64[m]") - self.origin).astype(np.int64)

    def add(self, t: np.ndarray, minutes: np.ndarray) -> np.ndarray:
        """The moment ``minutes`` working minutes after ``t`` (datetime64, minute resolution)."""
        start = self._index(t)
        target = self.cumulative[start] + np.asarray(minutes, np.int64)
        reached = np.maximum(np.searchsorted(self.cumulative, target, side="left"), start)
        return self.origin + reached.astype("timedelta64[m]")

    def between(self, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
        """Working minutes in [start, stop)."""
        return self.cumulative[self._index(stop)] - self.cumulative[self._index(start)]
