"""Working time for the generator: adding a case's time limit to a million timestamps.

The rules (working calendar, working hours) are the shared ones of :mod:`redwall.worktime`; this
clock only counts them in minutes on a grid from ``origin``, so an addition is one ``searchsorted``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from redwall.worktime import SESSIONS, WORKDAY_SECONDS, working_days

HOURS_PER_DAY = WORKDAY_SECONDS // 3600


class WorkClock:
    def __init__(self, first: dt.date, last: dt.date):
        self.origin = np.datetime64(first, "m")
        workday = working_days(first, last)["is_workday"].to_numpy()
        minute = np.arange(24 * 60)
        in_hours = np.zeros(24 * 60, bool)
        for start, stop in SESSIONS:
            in_hours |= (minute >= start // 60) & (minute < stop // 60)
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
