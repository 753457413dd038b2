"""What the marts read and write: silver tables as the ingestion promises them, marts as their
contracts declare them.

Silver interface: every feed and ledger table ``T`` lives at ``silver/<T.bronze_name>`` with exactly
the contract's columns (typed per ``T.schema()``), lineage columns, and history: ``_valid_from`` and
``_valid_to`` (dates, the end exclusive; a null end marks the current version).
"""

from __future__ import annotations

import polars as pl

from redwall import lake
from redwall.home import Home
from redwall.schemas import Table, load_contracts, reference

HISTORY = {"_valid_from": pl.Date(), "_valid_to": pl.Date()}


def typed(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """``frame``'s columns of ``schema``, in its order and types. Delta hands time-zone-aware
    datetimes back in UTC, so those are converted, not cast."""
    return frame.select(
        pl.col(name).dt.convert_time_zone(dtype.time_zone)
        if isinstance(dtype, pl.Datetime) and dtype.time_zone
        else pl.col(name).cast(dtype)
        for name, dtype in schema.items()
    )


def read_typed(home: Home, layer: str, name: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """The lake table's columns of ``schema``, typed; a table never written is an empty frame of
    that schema."""
    frame = lake.read(home, layer, name, columns=list(schema))
    return typed(frame, schema) if frame.width else pl.DataFrame(schema=schema)


def read_silver(home: Home, keys: tuple[str, ...]) -> dict[str, pl.DataFrame]:
    """The silver frames (contract columns and history) of the contract tables ``keys``
    (``source.table``); one never loaded is empty, so every mart still builds."""
    tables = [load_contracts().table(key) for key in keys]
    return {t.key: read_typed(home, "silver", t.bronze_name, {**t.schema(), **HISTORY}) for t in tables}


def current(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows valid now: the latest snapshot's view of a snapshot table."""
    return frame.filter(pl.col("_valid_to").is_null())


def conform(frame: pl.DataFrame, table: Table) -> pl.DataFrame:
    """A computed mart checked against its contract: the same columns, no more and no fewer, in
    the contract's order and types."""
    schema = table.schema()
    if set(frame.columns) != set(schema):
        raise ValueError(
            f"{table.key} does not match its contract: missing {sorted(set(schema) - set(frame.columns))}, "
            f"undeclared {sorted(set(frame.columns) - set(schema))}"
        )
    return typed(frame, schema)


def communities(grids: pl.DataFrame) -> pl.DataFrame:
    """Community code → name, as the district grid register gives them."""
    return grids.select("community_code", "community_name").unique("community_code")


def only_street(grids: pl.DataFrame) -> str | None:
    """The one street of a street centre's grid register (none for a district's, or no register):
    a row its home holds that no grid or community places is still that street's."""
    streets = grids["street_code"].drop_nulls().unique()
    return streets[0] if streets.len() == 1 else None


def coded_street(grid_code: pl.Expr, grids: pl.DataFrame) -> pl.Expr:
    """The street a grid code names by its coding scheme (``reference/grid_code_scheme.csv``: district
    6 digits, then street 3), for a grid the register does not hold: only a street of the register,
    or, a home without one (a district's, taking its streets' packages), a street of the national
    list; else null. A typed code naming another street than the register's is no evidence."""
    known = grids["street_code"].drop_nulls().unique()
    streets = known if known.len() else reference("street")["code"]
    schemes = reference("grid_code_scheme")
    by_length = {}
    for length, parts in schemes.select("length", "parts").iter_rows():
        sizes = [(part.split(":")[0], int(part.split(":")[1])) for part in parts.split("|")]
        names = [name for name, _ in sizes]
        by_length[int(length)] = sum(size for _, size in sizes[: names.index("street") + 1])
    street: pl.Expr = pl.lit(None, pl.String)
    for length, prefix in by_length.items():
        street = pl.when(grid_code.str.len_chars() == length).then(grid_code.str.slice(0, prefix)).otherwise(street)
    return pl.when(street.is_in(streets.implode())).then(street)


def with_street(frame: pl.DataFrame, grids: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with each row's street (``street_code``): the street of its grid in the district
    register, else of its community, else the street its grid code names (:func:`coded_street`),
    else :func:`only_street`."""
    streets = []
    for column in ("grid_code", "community_code"):
        if column in frame.columns:
            of = grids.select(column, pl.col("street_code").alias(f"_street_of_{column}")).unique(column)
            frame = frame.join(of, on=column, how="left", maintain_order="left")
            streets.append(f"_street_of_{column}")
    coded = [coded_street(pl.col("grid_code"), grids)] if "grid_code" in frame.columns else []
    street = pl.coalesce(*streets, *coded, pl.lit(only_street(grids), pl.String))
    return frame.with_columns(street.alias("street_code")).drop(streets)
