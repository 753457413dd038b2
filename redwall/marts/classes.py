"""The event and component class reference tables, typed for joins."""

from __future__ import annotations

import polars as pl

from redwall.schemas import reference


def classes(name: str) -> pl.DataFrame:
    """``event_class`` or ``component_class`` with ``major_code``/``minor_code``, the class names,
    the time limit (an integer, in ``time_unit``), and validity as dates (``valid_to`` exclusive,
    null while valid)."""
    return (
        reference(name)
        .rename({"major": "major_code", "minor": "minor_code", "name": "class_name"})
        .with_columns(pl.col("time_limit").cast(pl.Int64), pl.col("valid_from", "valid_to").str.to_date())
    )
