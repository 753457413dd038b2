"""Silver: the typed, current state of every contract table, with its history as validity intervals.

Each row is a version of one business key, valid on the half-open interval
``[_valid_from, _valid_to)``; ``_valid_to`` is null while the version is current. "Who lived where on
date D" is ``_valid_from <= D AND (_valid_to IS NULL OR D < _valid_to)``.

How a delivery changes silver depends on the contract's ``load``:

- ``snapshot`` (police, city exchange, district, the elderly-alone ledger): the delivery is the whole
  truth on its date. New keys open a version, changed keys close the old version and open a new one,
  keys absent from the delivery are closed (deregistered). A snapshot older than one already loaded
  changes nothing: the newer snapshot is the truth (the receipt says so). A table that names a
  community (a ledger each community keeps) is snapshotted per community: a community's ledger
  closes nobody of another community.
- ``increment`` (floating population): only the keys delivered change, as for a snapshot, but nobody
  is closed for being absent. A row older than the current version of its key does not replace it.
- ``append`` (grid app records, most ledgers): one row per business key; a key delivered again
  (an upload retried, a ledger re-sent with a rectification date filled in) keeps one row, with the
  latest values.

A second delivery on the same date replaces that date's version in place instead of opening a
version that lasts no day. Only the keys of the delivery are read and only changed rows are
written, so a small increment costs in proportion to itself: when nothing existing changes, the
rows are appended without a merge.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from redwall import lake
from redwall.home import Home
from schemas import Table

LAYER = "silver"
LINEAGE = {
    "_source_file": pl.String(),
    "_row_number": pl.Int64(),
    "_file_hash": pl.String(),
    "_load_id": pl.String(),
    "_loaded_at": pl.Datetime("us", "UTC"),
}
VALIDITY = {"_valid_from": pl.Date(), "_valid_to": pl.Date()}
SCOPE_CODES = ("community",)  # code lists whose values partition a snapshot among its senders


def _scope_key(columns: list[str]) -> pl.Expr:
    """Clerks write 府右街南 or 府右街南社区 for the same community."""
    return pl.concat_str([pl.col(c).str.strip_suffix("社区") for c in columns], separator="|")


def silver_schema(table: Table) -> dict[str, pl.DataType]:
    return {**table.schema(), **LINEAGE, **VALIDITY}


@dataclass(frozen=True)
class Change:
    """What a delivery did to one silver table."""

    opened: int = 0  # new keys
    changed: int = 0  # keys whose values changed (a new version, or the row updated in place)
    closed: int = 0  # snapshot keys absent from the delivery, now closed
    unchanged: int = 0  # identical to the current version
    collapsed: int = 0  # rows sharing a business key with a later row of the same delivery
    late: int = 0  # rows older than what silver already holds: kept in bronze only


def scope(table: Table, rows: pl.DataFrame) -> tuple[str, ...]:
    """What a snapshot delivery is the truth for: ``("",)``, the whole table, or the communities
    its rows name (``"府右街南"``, …) when the table is kept per community."""
    columns = _scope_columns(table)
    if not columns:
        return ("",)
    return tuple(sorted(rows.select(_scope_key(columns)).to_series().drop_nulls().unique()))


def _scope_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if c.codes in SCOPE_CODES] if table.load == "snapshot" else []


def apply(home: Home, table: Table, rows: pl.DataFrame, as_of: dt.date, *, stale: bool = False) -> Change:
    """Bring silver up to date with the accepted ``rows`` (silver columns, in delivery order) of a
    delivery describing ``as_of``. ``stale``: a snapshot older than one already applied to its
    :func:`scope`."""
    keys = list(table.keys)
    latest = rows.unique(subset=keys, keep="last", maintain_order=True)
    collapsed = rows.height - latest.height
    if stale:
        return Change(collapsed=collapsed, late=latest.height)
    current = _current(home, table, None if table.load == "snapshot" else latest.select(keys))
    content = [c for c in table.schema() if c not in keys]
    seen = latest.join(
        current.select(*keys, *content, "_valid_from").rename(lambda c: c if c in keys else f"{c}.current"),
        on=keys, how="left", nulls_equal=True,
    )
    since = pl.col("_valid_from.current")
    same = pl.all_horizontal(pl.col(c).eq_missing(pl.col(f"{c}.current")) for c in content)
    # a snapshot is never older than silver (stale ones stop above); an increment row may be
    is_late = (since > as_of) if table.load == "increment" else pl.lit(False)
    new = seen.filter(since.is_null())
    late = seen.filter(since.is_not_null() & ~same & is_late).height
    changed = seen.filter(since.is_not_null() & ~same & ~is_late)
    unchanged = seen.filter(since.is_not_null() & same).height
    schema = list(silver_schema(table))

    if table.load == "append":  # one row per key: changed rows are updated in place
        upserts = pl.concat([new, changed]).select(schema)
        _write(home, table, upserts, keys, in_place=changed.height > 0)
        return Change(opened=new.height, changed=changed.height, unchanged=unchanged,
                      collapsed=collapsed, late=late)

    # versions: close what changed on an earlier day, replace what changed on this same day
    successor = changed.filter(since < as_of).select(keys)
    gone = current.join(latest.select(keys), on=keys, how="anti", nulls_equal=True) \
        if table.load == "snapshot" else current.clear()
    if columns := _scope_columns(table):  # a community's ledger closes only its own community's rows
        gone = gone.filter(_scope_key(columns).is_in(scope(table, latest)))
    closing = pl.concat([current.join(successor, on=keys, how="semi", nulls_equal=True), gone])
    closing = closing.with_columns(pl.lit(as_of).alias("_valid_to"))
    versions = pl.concat([new, changed]).select(schema)
    _write(home, table, pl.concat([closing.select(schema), versions]), [*keys, "_valid_from"],
           in_place=closing.height > 0 or changed.height > successor.height)
    return Change(opened=new.height, changed=changed.height, closed=gone.height, unchanged=unchanged,
                  collapsed=collapsed, late=late)


def _current(home: Home, table: Table, keys: pl.DataFrame | None) -> pl.DataFrame:
    """Current versions: all of them (a snapshot replaces all), or only those of ``keys``."""
    schema = silver_schema(table)
    if not lake.exists(home, LAYER, table.bronze_name):
        return pl.DataFrame(schema=schema)
    current = lake.scan(home, LAYER, table.bronze_name).filter(pl.col("_valid_to").is_null())
    if keys is not None:
        current = current.join(keys.lazy(), on=list(table.keys), how="semi", nulls_equal=True)
    return current.collect().cast(schema)  # Delta hands timestamps back in UTC


def _write(home: Home, table: Table, rows: pl.DataFrame, merge_keys: list[str], *, in_place: bool) -> None:
    if rows.is_empty():
        return
    if in_place:
        lake.merge(home, LAYER, table.bronze_name, rows, merge_keys)
    else:  # only new keys or versions: nothing existing is touched, so no merge scan is needed
        lake.write(home, LAYER, table.bronze_name, rows, mode="append")
