"""Publishing to DuckDB: the shared warehouse dashboards read, and a restricted one.

``warehouse/redwall.duckdb`` (shared) holds schema ``mart`` (every mart, masked per
:mod:`redwall.privacy`), ``ops`` (receipts, rejections…) and ``quality`` (rectification issues,
loop metrics), which hold no personal values, ``catalog`` (the data resource directory) and
``ref`` (the committed reference tables). Every table and column carries a Chinese comment: its
contract's title, abstract and labels (the marts' in ``schemas/marts/``, the others' in
``schemas/system/``); the warehouse publishes the tables the contracts declare.
``warehouse/restricted/redwall_restricted.duckdb`` holds the marts unmasked, readable by the owner
only (folder 0700, file 0600).

A DuckDB file has one writer or many readers, never both, and DuckDB caches an open database per
file *inside one process*: a process holding any connection to a file gets that same file from
every later ``duckdb.connect`` of it, even after a new one was renamed onto its path. So a publish
never writes or replaces a file anyone may read. Each publish is a new version folder::

    warehouse/versions/<version>/redwall.duckdb                          shared (0644)
    warehouse/versions/<version>/restricted/redwall_restricted.duckdb    restricted (0700 / 0600)
    warehouse/current -> versions/<version>                               switched by one rename
    warehouse/redwall.duckdb -> current/redwall.duckdb                    the stable paths readers open
    warehouse/restricted/redwall_restricted.duckdb -> ../current/restricted/redwall_restricted.duckdb

Both warehouses of a version are built first; then one atomic rename of ``current`` switches them
together, so a kill at any point leaves them in step (both old or both new). DuckDB resolves the
symbolic links before it looks in its cache, so a reader that opens ``warehouse/redwall.duckdb``
again after a publish gets the new version even while it still holds a connection to the old one,
which keeps reading the snapshot it opened. The exact pattern: see the README (Dashboards).

Publishes take ``warehouse/.publish.lock`` in turn. Each removes the versions no reader holds any
more (a read-only connection holds a shared lock on its file; a version whose file another process
has open is kept until a later publish finds it free) and what killed publishes left behind: half
built versions with their ``.wal`` and stray ``.new`` links. Delta tables come in through
:mod:`redwall.lake` as Arrow (no DuckDB extension, so nothing to install offline and nothing tied
to the DuckDB version).

A dashboard author reads the warehouse without the code (:func:`readable`, ``docs/warehouse.md``):
every coded column has its Chinese name beside it (``sex`` → ``sex_name``, ``street_code`` →
``street_name``, from ``ref.codes``), whole numbers are BIGINT, no column is an SQL reserved word
(``table`` → ``table_name``), and ``mart.community`` sums the grids per community as BIGINT (DuckDB's
``sum`` of BIGINT is a 128-bit HUGEINT, which most tools show as a decimal).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import shutil
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import duckdb
import polars as pl

from redwall import lake
from redwall.catalog import CATALOG
from redwall.home import Home
from redwall.ingest.receipts import OPS
from redwall.marts.tables import read_typed
from redwall.privacy import (
    anonymity,
    known_names,
    masked_in_marts,
    pseudonym_key,
    shared_columns,
    shared_issues,
    shared_view,
    small_counts,
)
from redwall.quality.loop import ISSUES
from redwall.quality.loop import LAYER as QUALITY
from redwall.schemas import REFERENCE, Table, code_lists, load_contracts, reference

log = logging.getLogger(__name__)
SHARED_MODE, SHARED_DIR_MODE, RESTRICTED_MODE, RESTRICTED_DIR_MODE = 0o644, 0o755, 0o600, 0o700


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


REF = "ref"  # the warehouse schema of the committed reference tables
SHARED_NAME, RESTRICTED, RESTRICTED_NAME = "redwall.duckdb", "restricted", "redwall_restricted.duckdb"
CURRENT, VERSIONS, NEW = "current", "versions", ".new"
# SQL reserved words a column must not be named after (DuckDB's ``duckdb_keywords()``, reserved).
RENAMED = {"table": "table_name", "column": "column_name"}


def _name_column(column: str) -> str:
    return (column.removesuffix("_code") if column.endswith("_code") else column) + "_name"


def readable(published: Published, coded: dict[str, str]) -> Published:
    """``published`` as a dashboard author reads it: each column of ``coded`` (column → code list)
    followed by its code's Chinese name, whole numbers as BIGINT, reserved words renamed."""
    lists, frame, labels = code_lists(), published.frame, dict(published.column_comments)
    columns: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        columns.append(pl.col(name).cast(pl.Int64) if dtype.is_integer() else pl.col(name))
        if name in coded:
            names = lists[coded[name]]
            columns.append(
                pl.col(name).replace_strict(names, default=None, return_dtype=pl.String).alias(_name_column(name))
            )
            labels[_name_column(name)] = f"{labels.get(name, name)}（名称）"
    frame = frame.select(columns).rename(lambda c: RENAMED.get(c, c))
    labels = {RENAMED.get(c, c): label for c, label in labels.items()}
    return Published(published.schema, published.name, frame, published.comment, labels)


def _column_comments(table: Table, columns) -> dict[str, str]:
    """Label per column; a column kept as the contract has it also says what its values mean
    (``on_time`` says which timeliness it is)."""
    described = {c.name: f"{c.label}：{c.description}" for c in table.all_columns if c.description and not c.pii}
    return {c.name: described.get(c.name, c.label) for c in columns}


def _contract_codes(table: Table) -> dict[str, str]:
    """A contract's coded columns whose codes ref.codes names (community and grid have name columns)."""
    return {c.name: c.codes for c in table.all_columns if c.codes in code_lists()}


def _system(table: Table, frame: pl.DataFrame) -> Published:
    """A system table as dashboards read it, described by its contract (``schemas/system/``)."""
    comment = f"{table.title}：{table.abstract}"
    return readable(
        Published(table.source, table.name, frame, comment, _column_comments(table, table.all_columns)),
        _contract_codes(table),
    )


def restricted_path(home: Home) -> Path:
    return home.warehouse.parent / RESTRICTED / RESTRICTED_NAME


def _versions(home: Home) -> Path:
    return home.warehouse.parent / VERSIONS


def _current(home: Home) -> str | None:
    """The name of the version readers open now (none before the first publish)."""
    link = home.warehouse.parent / CURRENT
    return Path(os.readlink(link)).name if link.is_symlink() else None


PUBLISH_FORMAT = 1  # bump when a table is published otherwise from the same lake table
MANIFEST = "manifest.json"  # in each version: what each table was built from, and its rows


@dataclass(frozen=True)
class Planned:
    """A table a publish puts in a warehouse file: what it is made from (``source``), and how."""

    schema: str
    name: str
    source: str
    make: Callable[[], Published]

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"


def _plan(home: Home, key: bytes) -> tuple[list[Planned], list[Planned]]:
    """The restricted and the shared warehouse's tables. A table's ``source`` names the lake
    table version (or reference file) it is made from and everything else it depends on: the
    contracts, the code lists, the pseudonym key (by digest) and this module's format."""
    contracts = load_contracts()
    common = hashlib.sha256(
        json.dumps(
            [
                PUBLISH_FORMAT,
                hashlib.sha256(key).hexdigest(),
                [repr(t) for t in (*contracts.marts, *contracts.views)],
                [repr(t) for layer in (OPS, QUALITY, CATALOG, REF) for t in contracts.layer(layer)],
                [path.read_bytes().hex() for path in sorted(REFERENCE.glob("*.csv"))],
            ]
        ).encode()
    ).hexdigest()

    def source(*parts) -> str:
        return hashlib.sha256(json.dumps([common, *parts]).encode()).hexdigest()

    # the names the registers hold are masked in a shared mart's free text: a mart is made again
    # when the names masked in it change, not whenever the lake learns a name
    names = known_names(home)
    masked = masked_in_marts(home, contracts.marts, names)

    def mart(t, shared: bool) -> Published:
        frame = read_typed(home, "mart", t.name, t.schema())
        comment = f"{t.title}：{t.abstract}"
        if not shared:
            return readable(
                Published("mart", t.name, frame, comment, _column_comments(t, t.all_columns)), _contract_codes(t)
            )
        return readable(
            Published(
                "mart", t.name, shared_view(frame, t, key, names), comment, _column_comments(t, shared_columns(t))
            ),
            _contract_codes(t),
        )

    def system(t: Table) -> Published:
        frame = reference(t.name) if t.source == REF else lake.read(home, t.source, t.name)
        # Operational and quality tables hold reasons, counts and digests, never personal values; an
        # issue's record key is a digest that could be enumerated, so it goes out keyed or not at all.
        return _system(t, shared_issues(frame, key) if t.key == f"{QUALITY}.{ISSUES}" else frame)

    restricted, shared = [], []
    for t in contracts.marts:
        version = lake.version(home, "mart", t.name)
        restricted.append(Planned("mart", t.name, source("mart", t.name, version), partial(mart, t, False)))
        shared.append(
            Planned("mart", t.name, source("mart", t.name, version, "shared", masked[t.name]), partial(mart, t, True))
        )
    shared += [
        Planned(layer, t.name, source(layer, t.name, lake.version(home, layer, t.name)), partial(system, t))
        for layer in (OPS, QUALITY, CATALOG)
        for t in sorted(contracts.layer(layer), key=lambda t: t.name)
        if lake.exists(home, layer, t.name)
    ]
    shared += [
        Planned(REF, t.name, source(REF, t.name), partial(system, t))
        for t in sorted(contracts.layer(REF), key=lambda t: t.name)
    ]
    return restricted, shared


def publish(home: Home, secret: str | None = None, full: bool = False, cost: dict | None = None) -> dict[str, int]:
    """Publish the marts, ops and reference tables; returns rows per ``schema.table`` of the
    shared warehouse (the restricted one holds the same marts). The pseudonym key is ``secret``,
    else ``REDWALL_PSEUDONYM_KEY`` (:func:`redwall.privacy.pseudonym_key`). Raises
    :class:`redwall.privacy.MissingKeyError` before any work when there is none (and the home's
    data is not all generated by ``redwall demo``).

    Each publish is a new version; unless ``full``, it starts as a copy of the current one and only
    the tables whose lake table changed since are made again (masked, checked, written), the others
    kept as they are. ``cost`` receives, per ``schema.table`` of either file, whether it was made
    again (``(1, 1)``) or kept (``(0, 1)``)."""
    key = pseudonym_key(home, secret)
    restricted, shared = _plan(home, key)

    with _publish_lock(home):
        previous = _current(home)
        before = _manifest(home, previous) if previous and not full else {}
        version = _versions(home) / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        for folder in (home.warehouse.parent, _versions(home), version):  # dashboards may be other users
            folder.mkdir(mode=SHARED_DIR_MODE, exist_ok=True)
            folder.chmod(SHARED_DIR_MODE)  # whatever the umask
        old = _versions(home) / previous if previous else None
        manifest = {
            SHARED_NAME: _build(
                version / SHARED_NAME, shared, SHARED_MODE, old and old / SHARED_NAME, before.get(SHARED_NAME, {})
            )
        }
        # measured on the file itself, before anyone can open it: a table too identifying is never switched in
        if rare := {t: f for t, f in k_anonymity(version / SHARED_NAME).items() if too_rare(f)}:
            raise ReidentificationError(f"not published: persons too rare to share in {rare}")
        (version / RESTRICTED).mkdir(mode=RESTRICTED_DIR_MODE)
        (version / RESTRICTED).chmod(RESTRICTED_DIR_MODE)  # whatever the umask
        manifest[RESTRICTED] = _build(
            version / RESTRICTED / RESTRICTED_NAME,
            restricted,
            RESTRICTED_MODE,
            old and old / RESTRICTED / RESTRICTED_NAME,
            before.get(RESTRICTED, {}),
        )
        (version / MANIFEST).write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
        (version / MANIFEST).chmod(SHARED_MODE)
        _fsync_dir(version / RESTRICTED)
        _fsync_dir(version)
        _switch(home, version)
        if removed := _clean(home, previous):
            log.info("warehouse %s published; removed versions no reader holds: %s", version.name, ", ".join(removed))
    if cost is not None:
        for part, tables in manifest.items():
            for name, entry in tables.items():
                cost[f"{part}:{name}"] = (int(entry["made"]), 1)
    return {name: entry["rows"] for name, entry in manifest[SHARED_NAME].items()}


def _manifest(home: Home, version: str) -> dict:
    """What the tables of ``version`` were made from (empty for a version published before
    manifests: then everything is made again)."""
    path = _versions(home) / version / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


class ReidentificationError(RuntimeError):
    """A shared person table is less k-anonymous than its sharing type requires."""


def too_rare(figures: dict[str, int]) -> bool:
    return figures["rows"] > 0 and figures["k"] < figures["min_k"]


def k_anonymity(path: Path) -> dict[str, dict[str, int]]:
    """k of each shared table of persons in the warehouse file ``path`` — the fewest rows that
    share one combination of its quasi-identifiers (0 for an empty table) —, of the shared person
    tables joined on their person pseudonym (``join/person_key``: over the persons found in two
    tables or more, their quasi-identifiers in all of them together), and of each table of places
    that shares counts of persons (its smallest count from 1 up, see
    :class:`redwall.privacy.SmallCounts`); with the minimum its sharing type requires and the rows
    (joined persons, counts above 0) measured. Figures only, never a value."""
    figures = {}
    person_tables = []
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET enable_progress_bar = false")  # a pipeline step, not a terminal session
        for t in load_contracts().marts:
            if (spec := anonymity(t)) is not None:
                columns = ", ".join(f'"{c}"' for c in spec.quasi_identifiers)
                k, rows = con.execute(
                    f"SELECT coalesce(min(n), 0), coalesce(sum(n), 0) FROM "
                    f'(SELECT count(*) AS n FROM mart."{t.name}" GROUP BY {columns})'
                ).fetchall()[0]
                figures[f"mart.{t.name}"] = {"k": k, "min_k": spec.k, "rows": rows}
                person_tables.append((t, spec))
            elif (counts := small_counts(t)) is not None:
                cells = " UNION ALL ".join(f'SELECT "{c}" AS n FROM mart."{t.name}"' for c in counts.columns)
                k, rows = con.execute(f"SELECT coalesce(min(n), 0), count(*) FROM ({cells}) WHERE n > 0").fetchall()[0]
                figures[f"mart.{t.name}"] = {"k": k, "min_k": counts.k, "rows": rows}
        figures["join/person_key"] = _joined_k(con, person_tables)
    return figures


def _joined_k(con: duckdb.DuckDBPyConnection, tables: list) -> dict[str, int]:
    """k over the join of the person tables on their person pseudonym: each person found in two of
    them or more is described by the quasi-identifiers of all their rows in all of them. Only those
    persons are described: the shared tables key their persons apart, so there are none unless
    something leaks, and describing every person of a district cost a publish half a minute."""
    keys = []
    for t, spec in tables:
        keyed = [c.name for c in t.all_columns if c.pii == "person_key"]
        key = "person_key" if "person_key" in keyed else keyed[0]  # an address issue's record key is its person's
        keys.append((t, spec, key))
    found = " UNION ALL ".join(f'SELECT DISTINCT "{key}" AS person FROM mart."{t.name}"' for t, _, key in keys)
    described = []
    for t, spec, key in keys:
        row = "concat_ws('|', " + ", ".join(f"coalesce(\"{c}\"::VARCHAR, '')" for c in spec.quasi_identifiers) + ")"
        described.append(
            f"SELECT \"{key}\" AS person, '{t.name}' AS t, string_agg({row}, ';' ORDER BY {row}) AS d "
            f'FROM mart."{t.name}" WHERE "{key}" IN (SELECT person FROM joined) GROUP BY 1'
        )
    least = min(spec.k for _, spec in tables)
    k, rows = con.execute(
        f"""WITH joined AS (SELECT person FROM ({found}) GROUP BY person HAVING count(*) > 1),
                 described AS ({" UNION ALL ".join(described)}),
                 persons AS (SELECT person, string_agg(t || ':' || d, '#' ORDER BY t) AS d FROM described GROUP BY person)
            SELECT coalesce(min(n), 0), coalesce(sum(n), 0)
            FROM (SELECT count(*) AS n FROM persons GROUP BY d)"""
    ).fetchall()[0]
    return {"k": k, "min_k": least, "rows": rows}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _build(path: Path, tables: list[Planned], mode: int, old: Path | None, before: dict) -> dict:
    """Write ``tables`` to the new file ``path`` of a version no reader knows yet; returns its
    manifest (per table: ``source``, ``rows``, whether it was ``made`` now). A table whose source
    is the one ``before`` names is kept from the file ``old`` (copied whole first; no reader ever
    writes it), every other table made and written anew."""
    kept = (
        {t.key for t in tables if before.get(t.key, {}).get("source") == t.source} if old and old.is_file() else set()
    )
    if kept and old is not None:
        shutil.copyfile(old, path)
    manifest = {}
    with duckdb.connect(str(path)) as con:
        con.execute("SET enable_progress_bar = false")  # a pipeline step, not a terminal session
        present = {
            name
            for (name,) in con.execute(
                "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE database_name = current_database()"
            ).fetchall()
        }
        for view in load_contracts().views:
            con.execute(f'DROP VIEW IF EXISTS "{view.source}"."{view.name}"')
        for name in present - kept:
            schema, table = name.split(".", 1)
            con.execute(f'DROP TABLE "{schema}"."{table}"')
        for schema in dict.fromkeys(t.schema for t in tables):
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        for planned in tables:
            if planned.key in kept:
                manifest[planned.key] = {**before[planned.key], "made": False}
                continue
            t = planned.make()
            con.register("incoming", t.frame.to_arrow())
            con.execute(f'CREATE TABLE "{t.schema}"."{t.name}" AS SELECT * FROM incoming')
            con.unregister("incoming")
            # dashboards read every table by its comments: an undocumented one is a bug, not a default
            if not t.comment or (bare := [c for c in t.frame.columns if not t.column_comments.get(c)]):
                raise ValueError(
                    f"{t.schema}.{t.name} has no Chinese title or labels for "
                    f"{bare if t.comment else 'the table'}: declare them in its contract (schemas/)"
                )
            con.execute(f'COMMENT ON TABLE "{t.schema}"."{t.name}" IS {_quote(t.comment)}')
            for column in t.frame.columns:  # labels may serve several tables: only this one's
                con.execute(
                    f'COMMENT ON COLUMN "{t.schema}"."{t.name}"."{column}" IS {_quote(t.column_comments[column])}'
                )
            manifest[planned.key] = {"source": planned.source, "rows": t.frame.height, "made": True}
        for view in load_contracts().views:  # documented like the tables, from their contracts
            con.execute(f'CREATE VIEW "{view.source}"."{view.name}" AS {view.query}')
            con.execute(f'COMMENT ON VIEW "{view.source}"."{view.name}" IS {_quote(f"{view.title}：{view.abstract}")}')
            for column, label in _column_comments(view, view.columns).items():
                con.execute(f'COMMENT ON COLUMN "{view.source}"."{view.name}"."{column}" IS {_quote(label)}')
        con.execute("CHECKPOINT")
    path.chmod(mode)
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    return manifest


def _fsync_dir(path: Path) -> None:
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _link(path: Path, target: str) -> None:
    """Make ``path`` a symbolic link to ``target`` in one rename (replacing a link or a file)."""
    if path.is_symlink() and os.readlink(path) == target:
        return
    new = path.with_name(f".{path.name}{NEW}")
    new.unlink(missing_ok=True)
    new.symlink_to(target)
    os.replace(new, path)
    _fsync_dir(path.parent)


def _switch(home: Home, version: Path) -> None:
    """Point ``current`` at ``version``: the one step that publishes both warehouses. The stable
    paths are links through ``current``, made once (and again if a kill interrupted the first)."""
    root = home.warehouse.parent
    _link(root / CURRENT, f"{VERSIONS}/{version.name}")
    _link(home.warehouse, f"{CURRENT}/{SHARED_NAME}")
    restricted_path(home).parent.mkdir(mode=RESTRICTED_DIR_MODE, exist_ok=True)
    restricted_path(home).parent.chmod(RESTRICTED_DIR_MODE)  # also when it existed before
    _link(restricted_path(home), f"../{CURRENT}/{RESTRICTED}/{RESTRICTED_NAME}")


@contextmanager
def _publish_lock(home: Home) -> Iterator[None]:
    """One publish at a time per home; the kernel releases the lock of a killed publish."""
    root = home.warehouse.parent
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".publish.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


_FLOCK = "hhqqi4x"  # struct flock on Linux: type, whence, start, len, pid


def _held(path: Path) -> bool:
    """Whether another process has the DuckDB file ``path`` open: its connection holds a lock on
    the file, which ``F_GETLK`` reports without taking one (taking one, even for a moment, could
    make a reader's open fail). Our own process's locks never show, and a file unlinked under our
    own open connection stays readable through it anyway."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        probe = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    finally:
        os.close(fd)
    return struct.unpack(_FLOCK, probe)[0] != fcntl.F_UNLCK


def _clean(home: Home, previous: str | None) -> list[str]:
    """Remove the versions no reader holds and the leftovers of killed publishes; returns the
    version names removed. The ``previous`` version stays until the next publish: a reader may
    have resolved the stable path just before the switch and not have opened the file yet. Runs
    under the publish lock, so no other publish is half way."""
    root = home.warehouse.parent
    current = _current(home)
    for stray in [*root.glob(f".*{NEW}"), *restricted_path(home).parent.glob(f".*{NEW}")]:
        stray.unlink()
    removed = []
    for version in sorted(_versions(home).iterdir()):
        if version.name not in (current, previous) and not any(_held(f) for f in version.rglob("*.duckdb")):
            shutil.rmtree(version)
            removed.append(version.name)
    return removed


# -- per street --------------------------------------------------------------------------------------
STREETS = "streets"  # warehouse/streets/<street code>.duckdb: one street's part of the shared warehouse


def street_extract_path(home: Home, street: str) -> Path:
    return home.warehouse.parent / STREETS / f"{street}.duckdb"


def extract_street(home: Home, street: str) -> dict[str, int]:
    """One street's part of the shared warehouse, as its own DuckDB file
    (:func:`street_extract_path`, readable like the shared one): every shared table with a street
    (the marts, the rectification issues) cut to that street's rows, the reference tables whole, the
    views and every Chinese comment as published. It is taken from the current shared warehouse
    itself, so it is masked, pseudonymised and k-anonymous exactly as that is: every person table's
    street is one of its quasi-identifiers, so a street's rows are whole groups (a row whose street
    was blanked belongs to no street's extract), and the file is measured again
    (:func:`k_anonymity`) before it replaces the last one. Returns rows per ``schema.table``.
    Raises :class:`FileNotFoundError` before the first publish."""
    shared = home.warehouse.resolve()  # the version current now, whatever a publish switches in meanwhile
    if not shared.is_file():
        raise FileNotFoundError(f"no shared warehouse to extract street {street} from: publish first")
    target = street_extract_path(home, street)
    target.parent.mkdir(mode=SHARED_DIR_MODE, parents=True, exist_ok=True)
    target.parent.chmod(SHARED_DIR_MODE)
    new = target.with_name(f".{target.name}{NEW}")
    new.unlink(missing_ok=True)
    rows = {}
    with duckdb.connect(str(new)) as con:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"ATTACH {_quote(str(shared))} AS shared (READ_ONLY)")
        tables = con.execute(
            "SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE database_name = 'shared' ORDER BY 1, 2"
        ).fetchall()
        columns: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
        for schema, table, column, comment in con.execute(
            "SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() "
            "WHERE database_name = 'shared' ORDER BY schema_name, table_name, column_index"
        ).fetchall():
            columns.setdefault((schema, table), []).append((column, comment))
        for schema, table, comment in tables:
            names = [c for c, _ in columns[(schema, table)]]
            if "street_code" not in names and schema != REF:
                continue
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            where = "WHERE street_code = $street" if "street_code" in names else ""
            con.execute(
                f'CREATE TABLE "{schema}"."{table}" AS SELECT * FROM shared."{schema}"."{table}" {where}',
                {"street": street} if where else None,
            )
            if comment:
                con.execute(f'COMMENT ON TABLE "{schema}"."{table}" IS {_quote(comment)}')
            for column, label in columns[(schema, table)]:
                if label:
                    con.execute(f'COMMENT ON COLUMN "{schema}"."{table}"."{column}" IS {_quote(label)}')
            ((rows[f"{schema}.{table}"],),) = con.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchall()
        con.execute("DETACH shared")
        for view in load_contracts().views:  # as the shared warehouse makes them, over this street's tables
            con.execute(f'CREATE VIEW "{view.source}"."{view.name}" AS {view.query}')
            con.execute(f'COMMENT ON VIEW "{view.source}"."{view.name}" IS {_quote(f"{view.title}：{view.abstract}")}')
            for column, label in _column_comments(view, view.columns).items():
                con.execute(f'COMMENT ON COLUMN "{view.source}"."{view.name}"."{column}" IS {_quote(label)}')
        con.execute("CHECKPOINT")
    if rare := {t: f for t, f in k_anonymity(new).items() if too_rare(f)}:
        new.unlink()
        raise ReidentificationError(f"street {street} not extracted: persons too rare to share in {rare}")
    new.chmod(SHARED_MODE)
    os.replace(new, target)
    _fsync_dir(target.parent)
    return rows
