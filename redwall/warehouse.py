"""Publishing to DuckDB: the shared warehouse dashboards read, and a restricted one.

``warehouse/redwall.duckdb`` (shared) holds schema ``mart`` (every mart, masked per
:mod:`redwall.privacy`), ``ops`` (receipts, rejections…) and ``quality`` (rectification issues,
loop metrics), which hold no personal values, ``catalog`` (the data resource directory) and
``ref`` (the committed reference tables). Every table and column carries a Chinese comment: the
contracts' titles and labels for the marts, for the other tables the titles and labels declared
beside their schemas (:data:`redwall.ingest.receipts.TABLES`, :data:`quality.loop.TABLES`,
:data:`redwall.catalog.TABLES`, :data:`schemas.REFERENCE_TITLES`).
``warehouse/restricted/redwall_restricted.duckdb`` holds the marts unmasked, readable by the owner
only (folder 0700, file 0600).

A DuckDB file has one writer or many readers, never both, so a publish never writes a file anyone
reads: it builds a new file beside the old one and renames it into place (``os.replace``, atomic
on POSIX). A reader keeps a consistent snapshot of the file it opened; its next connection sees
the new one. Delta tables come in through :mod:`redwall.lake` as Arrow (no DuckDB extension,
so nothing to install offline and nothing tied to the DuckDB version).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from quality.loop import ISSUES, LAYER as QUALITY, TABLES as QUALITY_TABLES
from redwall import lake
from redwall.catalog import TABLES as CATALOG_TABLES
from redwall.home import Home
from redwall.ingest.receipts import OPS, TABLES as OPS_TABLES
from redwall.marts.tables import read_typed
from redwall.privacy import pseudonym_key, shared_columns, shared_issues, shared_view
from schemas import REFERENCE, REFERENCE_LABELS, REFERENCE_TITLES, load_contracts, reference

SHARED_MODE, RESTRICTED_MODE, RESTRICTED_DIR_MODE = 0o644, 0o600, 0o700


@dataclass(frozen=True)
class Published:
    schema: str
    name: str
    frame: pl.DataFrame
    comment: str | None = None
    column_comments: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"


def restricted_path(home: Home) -> Path:
    return home.warehouse.parent / "restricted" / "redwall_restricted.duckdb"


def publish(home: Home, demo: bool = False) -> dict[str, int]:
    """Publish the marts, ops and reference tables; returns rows per ``schema.table`` of the
    shared warehouse (the restricted one holds the same marts). Raises
    :class:`redwall.privacy.MissingKeyError` before any work when there is no pseudonym key and
    ``demo`` is false."""
    key = pseudonym_key(demo)
    restricted, shared = [], []
    for t in load_contracts().marts:
        frame = read_typed(home, "mart", t.name, t.schema())
        comment = f"{t.title}：{t.abstract}"
        restricted.append(Published("mart", t.name, frame, comment, {c.name: c.label for c in t.columns}))
        shared.append(Published("mart", t.name, shared_view(frame, t, key), comment,
                                {c.name: c.label for c in shared_columns(t)}))
    # Operational and quality tables hold reasons, counts and digests, never personal values; an
    # issue's record key is a digest that could be enumerated, so it goes out keyed or not at all.
    shared += [Published(layer, name, shared_issues(frame, key) if (layer, name) == (QUALITY, ISSUES) else frame,
                         *described.get(name, (None, {})))
               for layer, described in ((OPS, OPS_TABLES), (QUALITY, QUALITY_TABLES))
               for name in _layer_tables(home, layer) for frame in [lake.read(home, layer, name)]]
    shared += [Published("catalog", name, lake.read(home, "catalog", name), title, {f.name: f.label for f in fields})
               for name, (title, fields) in CATALOG_TABLES.items() if lake.exists(home, "catalog", name)]
    shared += [Published("ref", path.stem, reference(path.stem), REFERENCE_TITLES.get(path.stem), REFERENCE_LABELS)
               for path in sorted(REFERENCE.glob("*.csv"))]

    folder = restricted_path(home).parent
    folder.mkdir(mode=RESTRICTED_DIR_MODE, parents=True, exist_ok=True)
    folder.chmod(RESTRICTED_DIR_MODE)  # also when it existed before
    _build(restricted_path(home), restricted, RESTRICTED_MODE)
    _build(home.warehouse, shared, SHARED_MODE)
    return {p.key: p.frame.height for p in shared}


def _layer_tables(home: Home, layer: str) -> list[str]:
    if not home.is_local:
        raise NotImplementedError(f"listing the {layer} tables of a lake in an object store")
    root = Path(home.table_uri(layer, ""))
    return sorted(p.name for p in root.iterdir() if lake.exists(home, layer, p.name)) if root.is_dir() else []


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _build(path: Path, tables: list[Published], mode: int) -> None:
    """Write ``tables`` to a new file beside ``path``, then rename it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        with duckdb.connect(str(new)) as con:
            con.execute("SET enable_progress_bar = false")  # a pipeline step, not a terminal session
            for schema in dict.fromkeys(t.schema for t in tables):
                con.execute(f'CREATE SCHEMA "{schema}"')
            for t in tables:
                con.register("incoming", t.frame.to_arrow())
                con.execute(f'CREATE TABLE "{t.schema}"."{t.name}" AS SELECT * FROM incoming')
                con.unregister("incoming")
                # dashboards read every table by its comments: an undocumented one is a bug, not a default
                if not t.comment or (bare := [c for c in t.frame.columns if not t.column_comments.get(c)]):
                    raise ValueError(f"{t.schema}.{t.name} has no Chinese title or labels for "
                                     f"{bare if t.comment else 'the table'}: declare them beside its schema")
                con.execute(f'COMMENT ON TABLE "{t.schema}"."{t.name}" IS {_quote(t.comment)}')
                for column in t.frame.columns:  # labels may serve several tables: only this one's
                    con.execute(f'COMMENT ON COLUMN "{t.schema}"."{t.name}"."{column}" IS '
                                f'{_quote(t.column_comments[column])}')
            con.execute("CHECKPOINT")
        new.chmod(mode)
        with open(new, "rb") as f:
            os.fsync(f.fileno())
        os.replace(new, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        for leftover in (new, new.with_name(new.name + ".wal")):
            leftover.unlink(missing_ok=True)
