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
  closes nobody of another community. A snapshot that would close far more than usual never
  reaches :func:`apply` unasked: it is held first (:mod:`redwall.ingest.holds`, counted by
  :func:`closing`).
- ``increment`` (floating population): only the keys delivered change, as for a snapshot, but nobody
  is closed for being absent. A row older than the current version of its key does not replace it.
- ``append`` (grid app records, most ledgers): one row per business key; a key delivered again
  (an upload retried, a ledger re-sent with a rectification date filled in) keeps one row, with the
  latest values.

A second delivery on the same date replaces that date's version in place instead of opening a
version that lasts no day. Increments and appends are applied a batch of deliveries at a time, with
the result of applying them one after another: one read and one write per table, however many files
the batch holds. Only the keys of the batch are read and only changed rows are written, so a small
batch costs in proportion to itself: when nothing existing changes, the rows are appended without a
merge.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass

import polars as pl

from redwall import lake
from redwall.home import Home
from redwall.schemas import Table

LAYER = "silver"
FILE = "_file_hash"  # names the delivery a row came from
POSITION = "_position"  # a row's place in the batch: deliveries oldest first, rows as delivered
LINEAGE = {
    "_source_file": pl.String(),
    "_row_number": pl.Int64(),
    "_file_hash": pl.String(),
    "_load_id": pl.String(),
    "_loaded_at": pl.Datetime("us", "UTC"),
}
VALIDITY = {"_valid_from": pl.Date(), "_valid_to": pl.Date()}
SCOPE_CODES = ("community",)
OUTCOMES = "redwall.outcomes"  # commit metadata: file hash → its Change, see applied()  # code lists whose values partition a snapshot among its senders


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
    its rows name (``"府右街南"``, …) when the table is kept per community, or the parts its
    contract's ``scope`` columns name (a street's package: that street)."""
    columns = _scope_columns(table)
    if not columns:
        return ("",)
    return tuple(sorted(rows.select(_scope_key(columns)).to_series().drop_nulls().unique()))


def _scope_columns(table: Table) -> list[str]:
    if table.load != "snapshot":
        return []
    return [c.name for c in table.columns if c.codes in SCOPE_CODES or c.name in table.scope]


def closing(table: Table, rows: pl.DataFrame, current: pl.DataFrame) -> pl.DataFrame:
    """What applying the snapshot ``rows`` (one delivery's accepted rows) to ``current`` would
    close, counted before anything is written: per part of its :func:`scope`, the current records
    (``current``) and those absent from the delivery (``closing``), as :func:`apply` closes them."""
    keys = list(table.keys)
    columns = _scope_columns(table)
    held = current.select(*keys, (_scope_key(columns) if columns else pl.lit("")).alias("part"))
    held = held.filter(pl.col("part").is_in(scope(table, rows)))
    absent = held.join(rows.select(keys).unique(), on=keys, how="anti", nulls_equal=True)
    return (
        held.group_by("part")
        .agg(pl.len().alias("current"))
        .join(absent.group_by("part").agg(pl.len().alias("closing")), on="part", how="left")
        .with_columns(pl.col("closing").fill_null(0))
        .sort("part")
    )


def apply(
    home: Home,
    table: Table,
    rows: pl.DataFrame,
    deliveries: dict[str, dt.date],
    *,
    stale: bool = False,
    current: pl.DataFrame | None = None,
) -> dict[str, Change]:
    """Bring silver up to date with the accepted ``rows`` (table columns and lineage) of
    ``deliveries`` (file hash → the date it describes), oldest data first, each delivery's rows in
    delivery order. Returns what happened, per delivery.

    Several deliveries at once leave silver, and their counts, as applying them one after another
    would: each row is compared with the version its key has just before it, earlier in the batch
    or else in silver. A snapshot is applied one delivery at a time (absent keys close);
    ``stale``: it is older than one already applied to its :func:`scope`. ``current``: every
    current version of a snapshot table, when the caller has just read it."""
    keys = list(table.keys)
    rows = (
        rows.with_columns(
            pl.col(FILE).replace_strict(deliveries, return_dtype=pl.Date).alias("_valid_from"),
            pl.lit(None, dtype=pl.Date).alias("_valid_to"),
        )
        .select(list(silver_schema(table)))
        .with_row_index(POSITION)
    )
    latest = rows.unique([FILE, *keys], keep="last").sort(POSITION)  # a key once per delivery
    collapsed = rows.join(latest, on=POSITION, how="anti").select(FILE, pl.lit("collapsed").alias("outcome"))
    if stale:
        return _tally(deliveries, pl.concat([collapsed, latest.select(FILE, pl.lit("late").alias("outcome"))]))

    if current is None or table.load != "snapshot":
        current = _current(home, table, None if table.load == "snapshot" else latest.select(keys).unique())
    content = [c for c in table.schema() if c not in keys]
    seen = latest.join(
        current.select(*keys, *content, "_valid_from").rename(lambda c: c if c in keys else f"{c}.current"),
        on=keys,
        how="left",
        nulls_equal=True,
    ).sort(*keys, POSITION)  # each key's rows together, in delivery order: a plain shift finds the row before
    since, day = pl.col("_valid_from.current"), pl.col("_valid_from")
    # An increment row older than silver's version never applies. The deliveries come oldest first,
    # so such rows precede the others of their key, and each other row follows the one before it.
    behind = (since > day) if table.load == "increment" else pl.lit(False)
    seen = seen.with_columns(behind.alias("_behind"))
    fresh = pl.col("_behind") | ~_same_key(keys, 1) | pl.col("_behind").shift(1)  # compared with silver
    before = [pl.when(fresh).then(pl.col(f"{c}.current")).otherwise(pl.col(c).shift(1)) for c in content]
    same = pl.all_horizontal(pl.col(c).eq_missing(b) for c, b in zip(content, before, strict=True))
    seen = seen.with_columns(
        pl.when(fresh & since.is_null())
        .then(pl.lit("opened"))
        .when(same)
        .then(pl.lit("unchanged"))
        .when(pl.col("_behind"))
        .then(pl.lit("late"))
        .otherwise(pl.lit("changed"))
        .alias("outcome")
    )
    applied = seen.filter(pl.col("outcome").is_in(["opened", "changed"]))
    schema = list(silver_schema(table))

    if table.load == "append":  # one row per key, with its latest values: changed rows are updated in place
        upserts = applied.unique(keys, keep="last")
        changes = _tally(deliveries, pl.concat([collapsed, seen.select(FILE, "outcome")]))
        _write(
            home,
            table,
            upserts.select(schema),
            keys,
            changes,
            in_place=upserts["_valid_from.current"].is_not_null().any(),
        )
        return changes

    # versions: one per key and day (a later delivery of the same day replaces the day's version),
    # each valid until the next; silver's version closes on the first day, or is replaced on its own
    versions = (
        applied.unique([*keys, "_valid_from"], keep="last")
        .sort(*keys, POSITION)
        .with_columns(pl.when(_same_key(keys, -1)).then(pl.col("_valid_from").shift(-1)).alias("_valid_to"))
    )
    successor = (
        versions.unique(keys, keep="first").filter(since < day).select(*keys, pl.col("_valid_from").alias("_until"))
    )
    closing = current.join(successor, on=keys, how="inner", nulls_equal=True).with_columns(
        pl.col("_until").alias("_valid_to")
    )
    outcomes = [collapsed, seen.select(FILE, "outcome")]
    gone = [current.clear()]
    if table.load == "snapshot":  # the keys absent from each delivery close on its date
        columns = _scope_columns(table)
        assert columns or len(deliveries) == 1, "whole-table snapshots are applied one at a time"
        for delivery, as_of in deliveries.items():
            own = latest.filter(pl.col(FILE) == delivery)
            absent = current.join(own.select(keys), on=keys, how="anti", nulls_equal=True)
            if columns:  # a community's ledger closes only its own community's rows
                absent = absent.filter(_scope_key(columns).is_in(scope(table, own)))
            gone.append(absent.with_columns(pl.lit(as_of).alias("_valid_to")))
            outcomes.append(
                absent.with_columns(pl.lit(delivery).alias(FILE), pl.lit("closed").alias("outcome")).select(
                    FILE, "outcome"
                )
            )  # one row per closed key
            # counted for the snapshot; the rows keep their lineage
    closing = pl.concat([closing.select(schema), *(g.select(schema) for g in gone)])
    changes = _tally(deliveries, pl.concat(outcomes))
    _write(
        home,
        table,
        pl.concat([closing, versions.select(schema)]),
        [*keys, "_valid_from"],
        changes,
        in_place=closing.height > 0 or versions.filter(since == day).height > 0,
    )
    return changes


def disjoint_prefix(table: Table, parts: list[pl.DataFrame], current: pl.DataFrame) -> int:
    """How many of the leading snapshot deliveries (each one's accepted rows, oldest first) can be
    applied together on top of ``current`` with the result of one after another: at least one.

    They can when they are the truth for different communities and no business key concerns two of
    them, a key concerning a delivery when its rows name it or its community's current rows hold it
    (a person moving between two communities is applied in date order). A whole-table snapshot, or
    a second delivery for a community, starts the next group."""
    columns = _scope_columns(table)
    if not columns:
        return 1
    keys = list(table.keys)
    held = current.select(*keys, _scope_key(columns).alias("_scope"))
    communities: set[str] = set()
    touched = held.clear().select(keys)
    for n, rows in enumerate(parts):
        parts_scope = set(scope(table, rows))
        mine = pl.concat([rows.select(keys), held.filter(pl.col("_scope").is_in(list(parts_scope))).select(keys)])
        if n and (parts_scope & communities or mine.join(touched, on=keys, how="semi", nulls_equal=True).height):
            return n
        communities |= parts_scope
        touched = pl.concat([touched, mine.unique()])
    return len(parts)


def per_community(table: Table) -> bool:
    """Whether the table is a snapshot kept per community (see :func:`scope`)."""
    return bool(_scope_columns(table))


def current_versions(home: Home, table: Table) -> pl.DataFrame:
    """Every current version of a table: what a snapshot is compared with."""
    return _current(home, table, None)


def _same_key(keys: list[str], offset: int) -> pl.Expr:
    """Whether the row ``offset`` rows away holds the same key (in rows sorted by key)."""
    return pl.all_horizontal(pl.col(k).eq_missing(pl.col(k).shift(offset)) for k in keys)


def _tally(deliveries: dict[str, dt.date], outcomes: pl.DataFrame) -> dict[str, Change]:
    """Each delivery's :class:`Change`, from one ``outcome`` (a field of Change) per row."""
    counted: dict[str, dict[str, int]] = {delivery: {} for delivery in deliveries}
    for delivery, outcome, n in outcomes.group_by(FILE, "outcome").len().iter_rows():
        counted[delivery][outcome] = n
    return {delivery: Change(**counts) for delivery, counts in counted.items()}


def _current(home: Home, table: Table, keys: pl.DataFrame | None) -> pl.DataFrame:
    """Current versions: all of them (a snapshot replaces all), or only those of ``keys``."""
    schema = silver_schema(table)
    if not lake.exists(home, LAYER, table.bronze_name):
        return pl.DataFrame(schema=schema)
    current = lake.scan(home, LAYER, table.bronze_name).filter(pl.col("_valid_to").is_null())
    if keys is not None:
        current = current.join(keys.lazy(), on=list(table.keys), how="semi", nulls_equal=True)
    return current.collect().cast(schema)  # type: ignore[arg-type]  # Delta hands timestamps back in UTC; polars types cast()'s keys as str | Selector | DataType, invariantly


def _write(
    home: Home, table: Table, rows: pl.DataFrame, merge_keys: list[str], changes: dict[str, Change], *, in_place: bool
) -> None:
    """One commit, carrying what it did for each delivery (see :func:`applied`)."""
    if rows.is_empty():
        return
    metadata = {OUTCOMES: json.dumps({delivery: asdict(change) for delivery, change in changes.items()})}
    if in_place:
        lake.merge(home, LAYER, table.bronze_name, rows, merge_keys, metadata=metadata)
    else:  # only new keys or versions: nothing existing is touched, so no merge scan is needed
        lake.write(home, LAYER, table.bronze_name, rows, mode="append", metadata=metadata)


def applied(home: Home, table: Table, deliveries: list[str]) -> dict[str, Change]:
    """What the silver commits of an earlier attempt did for any of ``deliveries`` (file hashes):
    a run killed after its silver commit and before registering its files is retried, and the
    retry must answer as that commit did, not diff against silver that already holds the rows."""
    wanted, found = set(deliveries), {}
    for recorded in lake.commit_metadata(home, LAYER, table.bronze_name, OUTCOMES):
        for delivery, change in json.loads(recorded).items():
            if delivery in wanted and delivery not in found:
                found[delivery] = Change(**change)
        if len(found) == len(wanted):
            break
    return found
