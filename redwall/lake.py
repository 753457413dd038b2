"""The Delta lake: every read and write of a lake table goes through here.

Tables are addressed by ``(layer, name)``; :class:`redwall.home.Home` turns that into a local path or
an object-store URI. Delta commits are atomic, so a run killed mid-write leaves the previous version
readable.

Several runs write some tables at once: every source's load records its receipts and rejections in
``ops`` and compacts them, a decision on a held delivery rewrites a row, a build started by hand
runs beside the service's. Delta's own conflict check does not make that safe here: two
compactions of one table at once both commit, and the rows of the files they both rewrote are
then there twice (tried with deltalake 1.6.6). So every write takes the table's lock
(``taking/tables/<layer>.<name>.lock``, :func:`redwall.locks.exclusive`) for the read it is based
on and its commit; the processes of a home run on one machine (one service per home), wherever its
lake is stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Literal

import polars as pl
from deltalake import CommitProperties, DeltaTable, write_deltalake

from redwall.home import Home
from redwall.locks import exclusive

LINEAGE = ("_source_file", "_sheet", "_row_number", "_file_hash", "_load_id", "_loaded_at")


def _writing(home: Home, layer: str, name: str) -> contextlib.AbstractContextManager[None]:
    """The table's write lock: one writer at a time, in any process of the home."""
    return exclusive(home.taking / "tables" / f"{layer}.{name}.lock")


def exists(home: Home, layer: str, name: str) -> bool:
    return DeltaTable.is_deltatable(home.table_uri(layer, name), storage_options=home.storage_options())


def open_table(home: Home, layer: str, name: str) -> DeltaTable:
    return DeltaTable(home.table_uri(layer, name), storage_options=home.storage_options())


def read(
    home: Home, layer: str, name: str, columns: list[str] | None = None, where: pl.Expr | None = None
) -> pl.DataFrame:
    """The current version of a table (an empty frame if it was never written), optionally only
    the rows ``where`` holds (pushed down to the Parquet scan)."""
    if not exists(home, layer, name):
        return pl.DataFrame()
    frame = scan(home, layer, name)
    if where is not None:
        frame = frame.filter(where)
    return frame.select(columns or pl.all()).collect()


def scan(home: Home, layer: str, name: str) -> pl.LazyFrame:
    return pl.scan_delta(home.table_uri(layer, name), storage_options=home.storage_options() or None)


def write(
    home: Home,
    layer: str,
    name: str,
    frame: pl.DataFrame,
    mode: Literal["append", "overwrite"] = "overwrite",
    partition_by: list[str] | None = None,
    metadata: dict[str, str] | None = None,
) -> int:
    """Write a frame as one Delta commit (``metadata``: kept in the commit, see :func:`commit_metadata`);
    returns the new table version."""
    uri = home.table_uri(layer, name)
    with _writing(home, layer, name):
        write_deltalake(
            uri,
            frame.to_arrow(),
            mode=mode,
            partition_by=partition_by,
            schema_mode="merge" if mode == "append" else "overwrite",
            storage_options=home.storage_options() or None,
            commit_properties=CommitProperties(custom_metadata=metadata) if metadata else None,
        )
        return DeltaTable(uri, storage_options=home.storage_options()).version()


def write_changed(home: Home, layer: str, name: str, frame: pl.DataFrame) -> bool:
    """Overwrite the table with ``frame`` unless it already holds exactly that (same columns, types
    and rows in the same order); returns whether it wrote. An unchanged table keeps its version, so
    whatever follows it (the warehouse publish) knows there is nothing new to take."""
    if exists(home, layer, name):
        held = read(home, layer, name)
        if held.schema == frame.schema and held.equals(frame):
            return False
    write(home, layer, name, frame)
    return True


def version(home: Home, layer: str, name: str) -> str | None:
    """What identifies the table's current state: its version and when that was committed (a table
    dropped and made anew starts again at version 0). None for a table never written."""
    if not exists(home, layer, name):
        return None
    table = open_table(home, layer, name)
    return f"{table.version()}@{table.history(1)[0]['timestamp']}"


def replace(home: Home, layer: str, name: str, frame: pl.DataFrame, where: str) -> bool:
    """Replace the rows matching the SQL predicate ``where`` by ``frame`` in one commit (new
    columns are added). Writing the same rows again is idempotent: the way to re-run a write, and
    an upsert of a few rows by key that costs no merge. Returns whether rows were replaced (an
    earlier attempt had written some)."""
    with _writing(home, layer, name):
        present = exists(home, layer, name)  # a first write appends: never a whole-table overwrite
        uri, data, options = home.table_uri(layer, name), frame.to_arrow(), home.storage_options() or None
        if present:  # deltalake takes a predicate with mode="overwrite" only
            write_deltalake(uri, data, mode="overwrite", predicate=where, schema_mode="merge", storage_options=options)
        else:
            write_deltalake(uri, data, mode="append", schema_mode="merge", storage_options=options)
        # the newest commit is this one: nobody else writes the table while the lock is held
        return present and open_table(home, layer, name).history(1)[0]["operationMetrics"]["num_removed_files"] > 0


def commit_metadata(home: Home, layer: str, name: str, key: str) -> list[str]:
    """The values of ``key`` in the custom metadata of the table's commits, newest first."""
    if not exists(home, layer, name):
        return []
    return [commit[key] for commit in open_table(home, layer, name).history() if key in commit]


def one_of(column: str, values: Iterable[str]) -> str:
    """The SQL predicate ``column IN ('a', 'b', …)`` for :func:`replace`: the rows of a batch."""
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


def merge(
    home: Home, layer: str, name: str, frame: pl.DataFrame, keys: list[str], metadata: dict[str, str] | None = None
) -> dict:
    """Upsert ``frame`` into the table by business key (creating it on first use) in one commit
    carrying ``metadata``; returns deltalake's merge metrics."""
    with _writing(home, layer, name):
        if not exists(home, layer, name):
            write(home, layer, name, frame, mode="overwrite", metadata=metadata)
            return {"num_target_rows_inserted": frame.height, "num_target_rows_updated": 0}
        predicate = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        return (
            open_table(home, layer, name)
            .merge(
                frame.to_arrow(),
                predicate=predicate,
                source_alias="s",
                target_alias="t",
                commit_properties=CommitProperties(custom_metadata=metadata) if metadata else None,
            )
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )


def compact(home: Home, layer: str, name: str, min_files: int = 32) -> dict | None:
    """Rewrite a table's small files into a few large ones once it has gathered ``min_files``
    (a feed appending hourly adds a file per commit, and every read pays for each). One commit;
    readers keep reading the previous version meanwhile. Returns the optimize metrics, or None."""
    if not exists(home, layer, name):
        return None
    with _writing(home, layer, name):
        table = open_table(home, layer, name)
        if len(table.file_uris()) < min_files:
            return None
        return table.optimize.compact()
