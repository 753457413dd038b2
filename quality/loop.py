"""The quality-control closed loop (质量控制闭环): detect, explain, route, re-check, close.

Every failing record becomes one rectification issue in ``quality/issue``:

- **detect**: the row problems ingestion already found (``ops/rejection``: ``error`` rows were kept
  out, ``warning`` rows loaded with the value blanked), the contract suites run with Great
  Expectations on current silver (:mod:`redwall.quality.suites`), the cross-source rules and the
  addresses the registers do not confirm (``mart/address_issue``, :mod:`redwall.quality.rules`);
- **explain**: ``message_zh`` says row, column and what to do, never the value itself;
- **route**: to the grid (and its community) of the record's grid code (for an address, of the
  buildings it may mean), else of the person's residence in ``mart/person``, else of the address
  the row was written with; a ledger's issues also go to the department that sent it;
- **re-check and close**: an issue found at ingestion closes when a later delivery brings the same
  record (same business key; where the key itself was destroyed, the same row of a re-sent file of
  the same name, or in any file a record of the same person: :func:`record_hint`) and it loads;
  an issue found on silver closes when the record is current and passes. A record still failing
  keeps its issue open and moves ``last_seen``. A closed issue that fails again reopens;
- **waive**: an authorised analyst waives an issue by id with a reason; the waiver is kept.

``issue_id`` is stable: a digest of source, table, record key and rule. Record keys holding personal
data are digests: a single citizen-ID key hashes exactly as ``person_key`` does (so issues join the
person mart), other personal keys hash their joined values; keys without personal data stay legible.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from redwall import lake
from redwall.home import Home
from redwall.ingest.layout import RETURNED_ROW
from redwall.ingest.normalise import judge
from redwall.ingest.receipts import OPS, RECEIPTS, REJECTIONS
from redwall.marts.address import locate
from redwall.marts.resolution.records import person_digest
from redwall.marts.tables import coded_street, only_street
from redwall.quality.docs import build_data_docs
from redwall.quality.rules import ADDRESS_RULES, CROSS_RULES, address_checks, cross_checks
from redwall.quality.suites import FAILURE_SCHEMA, RULES_ZH, load_suite, suite_tables, validate
from redwall.schemas import Table, load_contracts

LAYER = "quality"
ISSUES, METRICS = "issue", "loop_metrics"
PLACE = "第{}行"
OPEN, CLOSED, WAIVED = "open", "closed", "waived"
INGEST, SUITE, CROSS, ADDRESS = "ingest", "suite", "cross", "address"
UTC = pl.Datetime("us", "UTC")

# the issue table's columns, types and labels: its contract (schemas/system/quality.yaml)
ISSUE_SCHEMA = pl.Schema(load_contracts().table(f"{LAYER}.{ISSUES}").schema())
ISSUE_LABELS = {c.name: c.label for c in load_contracts().table(f"{LAYER}.{ISSUES}").columns}
FINDING = [
    c
    for c in ISSUE_SCHEMA
    if c
    not in (
        "issue_id",
        "first_seen",
        "status",
        "closed_at",
        "waiver_reason",
        "waived_by",
        "waived_at",
        "community_code",
        "street_code",
    )
]
KEYED = "_record_key"  # a current silver row's record_key, computed once per run
# routing hints a finding carries until :func:`route` turns them into grid and community
ROUTING = ("person_key", "community_name", "place_address", "street_hint")


@dataclass(frozen=True)
class Waiver:
    issue_id: str
    reason: str
    by: str


# -- record keys -----------------------------------------------------------------------------------
def record_key(table: Table, rows: pl.DataFrame) -> pl.Series:
    """The business key of each row as an issue may show it (null where a key part is missing)."""
    joined = rows.select(pl.concat_str([pl.col(k).cast(pl.String) for k in table.keys], separator="|")).to_series()
    if not table.personal_key:
        return joined.alias("record_key")
    present = joined.drop_nulls().unique()
    digests = dict(zip(present, person_digest(present), strict=True))
    return joined.replace_strict(digests, default=None, return_dtype=pl.String).alias("record_key")


def record_hint(table: Table, rows: pl.DataFrame) -> pl.Series:
    """Where a table's key holds a citizen ID: a digest of the key with the ID replaced by the
    person's name and addresses, so that when an ID Excel destroyed comes back corrected in a file
    of another name (a clerk's 更正 copy, the next day's increment), the issue still finds its
    record. Null for other tables, and where a part is missing."""
    ids = [k for k in table.keys if table.column(k).format == "person_id"]
    names = [c.name for c in table.all_columns if c.pii == "name"]
    if not ids or not names:
        return pl.Series("record_hint", [None] * rows.height, dtype=pl.String)
    parts = (
        [k for k in table.keys if k not in ids] + names[:1] + [c.name for c in table.all_columns if c.pii == "address"]
    )
    joined = rows.select(pl.concat_str([pl.col(c).cast(pl.String) for c in parts], separator="|")).to_series()
    return person_digest(joined).alias("record_hint")


def returned_row(file_path: str, row_number: int) -> str:
    """How an error workbook names the row of the original file each of its rows is: a digest of
    the file's path (no name, no personal value) and the row number; e.g. ``3f9a0c1d22e7-5``."""
    return f"{hashlib.sha256(file_path.encode()).hexdigest()[:12]}-{row_number}"


def _person_key(table: Table) -> pl.Expr:
    """The person a record names, when its key is one citizen ID: its digest is the person_key."""
    single_id = len(table.keys) == 1 and table.column(table.keys[0]).format == "person_id"
    return pl.col("record_key") if single_id else pl.lit(None, dtype=pl.String)


def _routing(table: Table) -> list[pl.Expr]:
    names = {c.name for c in table.all_columns}
    grid = next((c.name for c in table.all_columns if c.format == "grid_code" or c.codes == "grid"), None)
    community = next((c.name for c in table.all_columns if c.codes == "community"), None)
    street = next((c.name for c in table.all_columns if c.codes == "street"), None)  # a street's package
    address = table.address or ("address" if "address" in names else None)
    return [
        (pl.col(grid) if grid in names else pl.lit(None, dtype=pl.String)).alias("grid_code"),
        _person_key(table).alias("person_key"),
        (pl.col(community) if community else pl.lit(None, dtype=pl.String)).alias("community_name"),
        (pl.col(address) if address else pl.lit(None, dtype=pl.String)).alias("place_address"),
        (pl.col(street).cast(pl.String) if street else pl.lit(None, dtype=pl.String)).alias("street_hint"),
        pl.lit(table.department["code"] if table.department else None, dtype=pl.String).alias("department"),
    ]


# -- detect ----------------------------------------------------------------------------------------
def rejection_findings(home: Home) -> pl.DataFrame:
    """Every row problem ingestion recorded, with the record's key recovered from bronze."""
    problems = lake.read(home, OPS, REJECTIONS)
    if not problems.height:
        return _empty_findings()
    receipts = lake.read(home, OPS, RECEIPTS, columns=["receipt_id", "file_path", "department"])
    problems = problems.join(receipts, on="receipt_id", how="left")
    contracts = load_contracts()
    found = []
    for key, part in problems.group_by("table"):
        table = contracts.tables.get(key[0])
        located = part.select("file_hash", "row_number").unique()
        if table is None:  # records that belong to no table (broken JSON): only their place is known
            keys = located.with_columns(
                record_key=pl.lit(None, dtype=pl.String),
                grid_code=pl.lit(None, pl.String),
                record_hint=pl.lit(None, pl.String),
                person_key=pl.lit(None, pl.String),
                community_name=pl.lit(None, pl.String),
                place_address=pl.lit(None, pl.String),
                street_hint=pl.lit(None, pl.String),
            )
        else:
            bronze = (
                lake.scan(home, "bronze", table.bronze_name)
                .join(
                    located.lazy().rename({"file_hash": "_file_hash", "row_number": "_row_number"}),
                    on=["_file_hash", "_row_number"],
                    how="semi",
                )
                .collect()
            )
            typed = judge(table, bronze, PLACE).rows.with_columns(bronze["_file_hash"])
            keys = typed.with_columns(record_key(table, typed), record_hint(table, typed)).select(
                pl.col("_file_hash").alias("file_hash"),
                pl.col("_row_number").alias("row_number"),
                "record_key",
                "record_hint",
                *[e for e in _routing(table) if e.meta.output_name() != "department"],
            )
        broken = pl.col("record_key").is_null() | (pl.col("severity") == "error") & pl.col("column").is_in(
            list(table.keys) if table else []
        )
        found.append(
            part.join(keys, on=["file_hash", "row_number"], how="left").select(
                pl.lit(INGEST).alias("origin"),
                "source",
                "table",
                "file_path",
                "row_number",
                "column",
                "record_key",
                broken.alias("key_broken"),
                "record_hint",
                "rule",
                "severity",
                "message_zh",
                "grid_code",
                "department",
                pl.col("recorded_at").alias("last_seen"),
                *ROUTING,
            )
        )
    return pl.concat(found, how="diagonal_relaxed")


def _silver_findings(
    table: Table, rows: pl.DataFrame, failing: pl.DataFrame, origin: str, text: pl.Expr
) -> pl.DataFrame:
    """Findings for the rows at ``failing["index"]`` of ``rows`` (current silver with lineage); a
    ``finding_grid`` in ``failing`` routes before the record's own grid."""
    picked = rows.with_row_index("index").with_columns(pl.col("index").cast(pl.Int64)).join(failing, on="index")
    routing = _routing(table)
    if "finding_grid" in picked.columns:
        routing[0] = pl.coalesce("finding_grid", routing[0]).alias("grid_code")
    return picked.with_columns(record_key=pl.col(KEYED)).select(
        pl.lit(origin).alias("origin"),
        pl.lit(table.source).alias("source"),
        pl.lit(table.key).alias("table"),
        pl.col("_source_file").alias("file_path"),
        pl.col("_row_number").alias("row_number"),
        "column",
        "record_key",
        pl.lit(False).alias("key_broken"),
        "rule",
        "severity",
        pl.concat_str(pl.lit("第"), pl.col("_row_number").cast(pl.String), pl.lit("行"), text).alias("message_zh"),
        *routing,
        pl.col("_loaded_at").alias("last_seen"),
    )


def _label_text(table: Table) -> pl.Expr:
    """The suite rule's message with the column's label (the key's labels for a duplicate key)."""
    labels = {c.name: c.label for c in table.all_columns}
    key_label = "、".join(labels[k] for k in table.keys)
    texts = {
        (rule, c): text.format(label=labels.get(c, key_label) if c else key_label)
        for rule, text in RULES_ZH.items()
        for c in [None, *labels]
    }
    return pl.struct("rule", "column").map_elements(lambda r: texts[(r["rule"], r["column"])], return_dtype=pl.String)


def parameters(grids: pl.DataFrame) -> dict[str, list[str]]:
    """The district register's grids and communities, for the suites' ``$PARAMETER`` sets. A ledger
    writes 府右街南 or 府右街南社区 for the same community."""
    names = grids["community_name"].drop_nulls().unique()
    return {
        "grid_codes": grids["grid_code"].drop_nulls().unique().to_list(),
        "community_codes": grids["community_code"].drop_nulls().unique().to_list(),
        "community_names": pl.concat([names, names.str.strip_suffix("社区")]).unique().to_list(),
    }


def current_silver(home: Home, table: Table) -> pl.DataFrame:
    frame = lake.read(home, "silver", table.bronze_name, where=pl.col("_valid_to").is_null())
    return (
        frame
        if frame.height
        else pl.DataFrame(
            schema={**table.schema(), "_source_file": pl.String, "_row_number": pl.Int64, "_loaded_at": UTC}
        )
    )


def silver_findings(
    home: Home, keep: list | None = None, full: bool = True, cost: dict | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Suite and cross-source findings on current silver, and every record they judged
    (``origin, table, record_key``): a judged record without a finding passed. With ``keep``, the
    summarised suite validations are appended to it (for the data docs: only the tables validated
    this run). Unless ``full``, the suites run only on the rows :func:`_to_validate` picks; the
    others keep what they failed last time (``state/quality_suites``). ``cost`` receives, per
    table, the rows validated and the current rows."""
    contracts = load_contracts()
    silver = {t.key: current_silver(home, t) for t in suite_tables()}
    params = parameters(silver["district.grid"])
    memory = None if full else _suite_memory(home, params)
    # each current row versioned and keyed once, for every rule that judges it
    current = {
        t.key: _keyed(t, rows.with_columns(_row_version(t, rows)), memory)
        for t in suite_tables()
        for rows in [silver[t.key]]
    }
    found, judged, remembered = [], [], []
    for table in suite_tables():
        rows = current[table.key]
        if not rows.height:
            continue
        picked = _to_validate(table, rows, memory)
        subset = rows.filter(picked)
        fresh = (
            validate(table, subset.select(table.schema().keys()), params, keep)
            if subset.height
            else pl.DataFrame(schema=FAILURE_SCHEMA)
        )
        failed = _remember(table, subset, fresh)
        if memory is not None and not picked.all():  # the rows not validated keep last run's failures
            kept = memory.filter(pl.col("table") == table.key).join(subset.select(VERSION), on=VERSION, how="anti")
            failed = pl.concat([kept.join(rows.select(VERSION), on=VERSION, how="semi"), failed])
        remembered.append(failed)
        failing = _positions(rows, failed)
        found.append(_silver_findings(table, rows, failing, SUITE, _label_text(table)))
        judged.append(_judged(table, rows, SUITE))
        if cost is not None:
            cost[table.key] = (subset.height, rows.height)
    lake.write(
        home,
        *SUITE_STATE,
        (pl.concat(remembered) if remembered else pl.DataFrame(schema=SUITE_STATE_SCHEMA)).rename(
            {KEYED: "record_key", VERSION: "row_version"}
        ),
        metadata={MEMO: _memo(params)},
    )
    for rule, rows in cross_checks(current).items():
        subject, column, severity, text = CROSS_RULES[rule]
        table = contracts.table(subject)
        failing = (
            rows.with_row_index("index")
            .filter("_fails")
            .select(
                pl.col("index").cast(pl.Int64),
                pl.lit(rule).alias("rule"),
                pl.lit(column).alias("column"),
                pl.lit(severity).alias("severity"),
            )
        )
        found.append(_silver_findings(table, rows, failing, f"{CROSS}:{rule}", pl.lit(text)))
        judged.append(_judged(table, rows, f"{CROSS}:{rule}"))
    addresses = lake.read(home, "mart", "address_issue")  # none before the first mart build: not judged yet
    for source, rows in (address_checks(current, addresses, KEYED) if addresses.width else {}).items():
        table = contracts.table(source)
        column = contracts.addressed[source]
        texts = {rule: text.format(label=table.column(column).label) for rule, text in ADDRESS_RULES.values()}
        failing = (
            rows.with_row_index("index")
            .filter("_fails")
            .select(
                pl.col("index").cast(pl.Int64),
                pl.col("_rule").alias("rule"),
                pl.lit(column).alias("column"),
                pl.lit("warning").alias("severity"),
                pl.col("_grid").alias("finding_grid"),
            )
        )
        found.append(_silver_findings(table, rows, failing, ADDRESS, pl.col("rule").replace_strict(texts)))
        judged.append(_judged(table, rows, ADDRESS))
    return pl.concat(found, how="diagonal_relaxed"), pl.concat(judged).unique()


# -- what the suites need to see again -------------------------------------------------------------
SUITE_STATE = ("state", "quality_suites")  # per current silver row version: the suite rules it failed
VERSION = "_version"  # a silver row version: digest of its contract values and lineage
MEMO = "redwall.suite_memo"  # commit metadata: what the remembered failures were judged against
SUITE_STATE_SCHEMA = pl.Schema(
    {  # as held in memory; in the lake KEYED is "record_key" (schemas/system/state.yaml)
        "table": pl.String,
        VERSION: pl.Int64,
        KEYED: pl.String,
        "rule": pl.String,  # null: the row passed every expectation
        "column": pl.String,
        "severity": pl.String,
    }
)


def _row_version(table: Table, rows: pl.DataFrame) -> pl.Series:
    """Identifies a current row by what the suites judge (its contract values) and where it came
    from: a row that changed in any way, or was delivered again, is another version."""
    columns = [*table.schema(), "_source_file", "_row_number", "_loaded_at"]
    return rows.select(columns).hash_rows(seed=0).reinterpret(signed=True).alias(VERSION)  # Delta has no u64


STATE_FORMAT = 1  # bump when the loop finds otherwise on the same lake and contracts


def _memo(params: dict[str, list[str]]) -> str:
    """What a remembered finding depends on beyond its own row: the loop's rules, the suites
    (committed JSON, derived from the contracts), the district's grids and communities they take as
    parameters, and the row hashing of this polars."""
    suites = {t.key: load_suite(t)["meta"]["fingerprint"] for t in suite_tables()}
    body = {
        "format": STATE_FORMAT,
        "suites": suites,
        "parameters": {k: sorted(v) for k, v in params.items()},
        "polars": pl.__version__,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _suite_memory(home: Home, params: dict[str, list[str]]) -> pl.DataFrame | None:
    """Last run's failures per row version, if they were judged against what holds now."""
    memos = lake.commit_metadata(home, *SUITE_STATE, MEMO)
    if not memos or memos[0] != _memo(params):
        return None
    held = lake.read(home, *SUITE_STATE).rename({"record_key": KEYED, "row_version": VERSION})
    return held.select(SUITE_STATE_SCHEMA.keys()).cast(SUITE_STATE_SCHEMA)


def _keyed(table: Table, rows: pl.DataFrame, memory: pl.DataFrame | None) -> pl.DataFrame:
    """``rows`` (versioned) with their :func:`record_key` as ``KEYED``. A personal key is a digest,
    a million of them at district scale: a row version last run's memory holds keeps the digest it
    had (the same values, the same key), and only the versions new since are digested."""
    if memory is None or not table.personal_key or not rows.height:
        return rows.with_columns(record_key(table, rows).alias(KEYED))
    known = memory.filter(pl.col("table") == table.key).select(VERSION, KEYED).unique(VERSION)
    rows = rows.join(known, on=VERSION, how="left", maintain_order="left")
    new = rows[KEYED].is_null()  # also the rows missing a key part: they stay without a key
    if not new.any():
        return rows
    return rows.with_columns(rows[KEYED].scatter(new.arg_true(), record_key(table, rows.filter(new))))


def _to_validate(table: Table, rows: pl.DataFrame, memory: pl.DataFrame | None) -> pl.Series:
    """The current rows whose suite results may differ from last run's: versions not judged then,
    and every row sharing a business key with a version that appeared or went away (uniqueness is
    judged across rows), and rows missing a key part (they cannot be told apart by key). All rows
    without a memory, or where two rows are one version (the memory could not tell them apart)."""
    before = memory.filter(pl.col("table") == table.key).select(VERSION, KEYED).unique() if memory is not None else None
    if before is None or not before.height or rows[VERSION].is_duplicated().any():
        return pl.Series("picked", [True] * rows.height)
    new = rows.select(VERSION, KEYED).join(before, on=VERSION, how="anti")
    gone = before.join(rows.select(VERSION), on=VERSION, how="anti")
    touched = pl.concat([new[KEYED], gone[KEYED]]).drop_nulls().unique()
    return rows.select(
        (
            ~pl.col(VERSION).is_in(before[VERSION].implode())
            | pl.col(KEYED).is_in(touched.implode())
            | pl.col(KEYED).is_null()
        ).alias("picked")
    ).to_series()


def _remember(table: Table, subset: pl.DataFrame, failing: pl.DataFrame) -> pl.DataFrame:
    """The suite state of the rows just validated: one row per failure, one with no rule for a row
    that passed everything."""
    return (
        subset.select(VERSION, KEYED)
        .with_row_index("index")
        .with_columns(pl.col("index").cast(pl.Int64))
        .join(failing, on="index", how="left")
        .select(pl.lit(table.key).alias("table"), *[c for c in SUITE_STATE_SCHEMA if c != "table"])
        .cast(SUITE_STATE_SCHEMA)
    )


def _positions(rows: pl.DataFrame, failed: pl.DataFrame) -> pl.DataFrame:
    """The failures in ``failed`` (suite state) at their rows' positions in ``rows``, as
    :func:`redwall.quality.suites.validate` reports them."""
    return (
        rows.select(VERSION)
        .with_row_index("index")
        .join(failed.filter(pl.col("rule").is_not_null()), on=VERSION)
        .select(pl.col("index").cast(pl.Int64), "rule", "column", "severity")
    )


def _judged(table: Table, rows: pl.DataFrame, origin: str) -> pl.DataFrame:
    return rows.select(
        pl.lit(origin).alias("origin"), pl.lit(table.key).alias("table"), pl.col(KEYED).alias("record_key")
    )


def _empty_findings() -> pl.DataFrame:
    return pl.DataFrame(schema={c: ISSUE_SCHEMA[c] for c in FINDING} | dict.fromkeys(ROUTING, pl.String))


# -- route -----------------------------------------------------------------------------------------
def route(findings: pl.DataFrame, home: Home) -> pl.DataFrame:
    """Grid, community and street of each finding: its own grid code, else the person's residence,
    else the grid its address resolves to (a row kept out, whose person is unknown), else (a ledger
    naming its community) the community alone. The street is the community's, else the one the
    record names (a street's package), else the one its grid code names
    (:func:`redwall.marts.tables.coded_street`); in a street centre's home (a register of one street)
    what nothing places is still that street's."""
    grids = lake.read(home, "silver", "district_grid", where=pl.col("_valid_to").is_null())
    grids = (
        grids.select("grid_code", "community_code", "community_name", "street_code")
        if grids.height
        else pl.DataFrame(
            schema=dict.fromkeys(("grid_code", "community_code", "community_name", "street_code"), pl.String)
        )
    )
    persons = lake.read(home, "mart", "person", columns=["person_key", "grid_code"])
    if not persons.height:
        persons = pl.DataFrame(schema={"person_key": pl.String, "grid_code": pl.String})
    named = pl.concat(
        [
            grids.select("community_name", "community_code"),
            grids.select(pl.col("community_name").str.strip_suffix("社区"), "community_code"),
        ]
    ).unique()
    buildings, houses = (
        lake.read(home, "silver", name, where=pl.col("_valid_to").is_null())
        for name in ("district_building", "district_house")
    )
    if buildings.height and houses.height:
        placed = locate(
            findings.select(pl.col("place_address").drop_nulls().unique()), "place_address", buildings, houses
        ).join(buildings.select("building_code", place_grid="grid_code"), on="building_code", how="left")
        findings = findings.join(
            placed.select("place_address", pl.coalesce("place_grid", "address_grid").alias("address_grid")),
            on="place_address",
            how="left",
        )
    else:
        findings = findings.with_columns(address_grid=pl.lit(None, pl.String))
    return (
        findings.join(persons.rename({"grid_code": "resident_grid"}), on="person_key", how="left")
        .with_columns(pl.coalesce("grid_code", "resident_grid", "address_grid").alias("grid_code"))
        .join(grids.select("grid_code", "community_code"), on="grid_code", how="left")
        .join(named.rename({"community_code": "named_community"}), on="community_name", how="left")
        .with_columns(pl.coalesce("community_code", "named_community").alias("community_code"))
        .join(grids.select("community_code", "street_code").unique("community_code"), on="community_code", how="left")
        .with_columns(
            pl.coalesce(
                "street_code",
                "street_hint",
                coded_street(pl.col("grid_code"), grids),
                pl.lit(only_street(grids), pl.String),
            ).alias("street_code")
        )
    )


# -- the loop --------------------------------------------------------------------------------------
def issue_id(frame: pl.DataFrame) -> pl.Series:
    """Stable id: source, table, record key (its place where the key is broken) and rule."""
    who = (
        pl.when(pl.col("key_broken"))
        .then(pl.concat_str("file_path", pl.lit("#"), pl.col("row_number").cast(pl.String)))
        .otherwise("record_key")
    )
    text = frame.select(pl.concat_str("source", "table", who.fill_null(""), "rule", separator="|")).to_series()
    return pl.Series("issue_id", [hashlib.sha256(v.encode()).hexdigest()[:16] for v in text], dtype=pl.String)


def run_loop(
    home: Home,
    waivers: Sequence[Waiver] = (),
    now: dt.datetime | None = None,
    full: bool = False,
    cost: dict | None = None,
) -> pl.DataFrame:
    """Detect, route, re-check, close and waive; writes ``quality/issue`` and returns it. Also
    rebuilds the Great Expectations data docs of this run's suite validations
    (``published/quality/data_docs/index.html``, :mod:`redwall.quality.docs`).

    Incremental unless ``full``: the suites validate only the silver rows that changed since the
    last run (and the rows sharing their keys); every other row keeps the failures remembered, so
    the issues are exactly those of a full run. ``cost`` receives, per silver table, rows validated
    and current rows (``(processed, in_lake)``)."""
    now = now or dt.datetime.now(dt.UTC)
    validations: list[tuple] = []
    found, judged = silver_findings(home, validations, full=full, cost=cost)
    findings = route(pl.concat([rejection_findings(home), found], how="diagonal_relaxed"), home)
    # in one order whatever order the findings were gathered in: the latest evidence wins, ties alike
    findings = findings.with_columns(issue_id(findings))
    findings = findings.sort("last_seen", *(c for c in findings.columns if c != "last_seen"), maintain_order=True)
    # one issue per id: the latest evidence describes it, the earliest says since when
    seen = findings.group_by("issue_id").agg(
        pl.col("last_seen").min().alias("first_seen"), pl.all().exclude("first_seen").last()
    )
    previous = lake.read(home, LAYER, ISSUES)
    if not previous.height:
        previous = pl.DataFrame(schema=ISSUE_SCHEMA)
    # issues kept by an earlier release lack the columns added since: they start empty
    previous = previous.with_columns(
        pl.lit(None, dtype).alias(c) for c, dtype in ISSUE_SCHEMA.items() if c not in previous.columns
    )
    issues = _merge(previous.select(ISSUE_SCHEMA.keys()).cast(ISSUE_SCHEMA), seen, now)
    issues = _close_ingest(issues, home)
    issues = _close_returned(issues, findings, home)
    issues = _close_silver(issues, seen, judged, now)
    issues = _waive(issues, waivers, now).select(ISSUE_SCHEMA.keys()).cast(ISSUE_SCHEMA).sort("issue_id")
    if full:
        lake.write(home, LAYER, ISSUES, issues)
    else:
        lake.write_changed(home, LAYER, ISSUES, issues)  # unchanged issues: nothing new to publish
    build_data_docs(home, validations, keep_others=not full)
    return issues


def _merge(previous: pl.DataFrame, seen: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    """Known issues take the newest evidence; an issue failing again after it closed reopens. Where
    an issue goes, and the hint that recognises its record, are derived afresh each run it is seen
    (the registers and residences it is routed by change; an earlier release derived no hint),
    keeping the last known value when none is found now."""
    fresh = seen.select([c for c in ISSUE_SCHEMA if c in seen.columns])
    both = previous.join(fresh, on="issue_id", how="full", coalesce=True, suffix="_new")
    newer = pl.col("last_seen_new").is_not_null() & (
        pl.col("last_seen").is_null() | (pl.col("last_seen_new") > pl.col("last_seen"))
    )
    derived = ("grid_code", "community_code", "street_code", "record_hint")
    updates = [
        pl.when(newer).then(pl.col(f"{c}_new")).otherwise(pl.col(c)).alias(c)
        for c in fresh.columns
        if c not in ("issue_id", "first_seen", *derived)
    ]
    updates += [pl.coalesce(f"{c}_new", c).alias(c) for c in derived if c in fresh.columns]
    reopened = newer & (pl.col("status") == CLOSED) & (pl.col("last_seen_new") > pl.col("closed_at"))
    return both.with_columns(
        *updates,
        pl.min_horizontal("first_seen", "first_seen_new").alias("first_seen"),
        pl.when(pl.col("status").is_null() | reopened).then(pl.lit(OPEN)).otherwise("status").alias("status"),
        pl.when(reopened).then(None).otherwise("closed_at").alias("closed_at"),
    ).select(previous.columns)


def _close_ingest(issues: pl.DataFrame, home: Home) -> pl.DataFrame:
    """An ingestion issue closes when a delivery newer than its last failure loaded the record: by
    key, or, where the key was destroyed, at the same row of a file of the same name or as the
    same person (:func:`record_hint`) in any file."""
    open_ = issues.filter((pl.col("origin") == INGEST) & (pl.col("status") == OPEN))
    hinted = set(open_.filter(pl.col("key_broken") & pl.col("record_hint").is_not_null())["table"])
    # only a version loaded after an issue's last failure closes it: older versions are not read
    since = dict(open_.group_by("table").agg(pl.col("last_seen").min()).iter_rows())
    versions: list[pl.DataFrame] = []
    for table in suite_tables():
        if since.get(table.key) is None:
            continue
        rows = lake.read(home, "silver", table.bronze_name, where=pl.col("_loaded_at") > since[table.key])
        if rows.height:
            hint = record_hint(table, rows) if table.key in hinted else pl.lit(None, pl.String).alias("record_hint")
            versions.append(
                rows.select(
                    pl.lit(table.key).alias("table"),
                    record_key(table, rows),
                    hint,
                    pl.col("_source_file").alias("file_path"),
                    pl.col("_row_number").alias("row_number"),
                    pl.col("_loaded_at").alias("at"),
                )
            )
    if not versions:
        return issues
    loaded = pl.concat(versions)
    by_key = open_.filter(~pl.col("key_broken")).join(
        loaded.select("table", "record_key", "at"), on=["table", "record_key"]
    )
    broken = open_.filter(pl.col("key_broken"))
    by_place = broken.join(
        loaded.select("table", "file_path", "row_number", "at"), on=["table", "file_path", "row_number"]
    )
    by_hint = broken.join(loaded.select("table", "record_hint", "at"), on=["table", "record_hint"])
    fixed = (
        pl.concat([found.select("issue_id", "last_seen", "at") for found in (by_key, by_place, by_hint)])
        .filter(pl.col("at") > pl.col("last_seen"))
        .group_by("issue_id")
        .agg(pl.col("at").min().alias("fixed_at"))
    )
    return _closed(issues, fixed)


def _close_returned(issues: pl.DataFrame, findings: pl.DataFrame, home: Home) -> pl.DataFrame:
    """An issue of a ledger row closes when the row comes back, in a delivery newer than the
    issue's last failure, is taken in and does not fail the same rule. A row comes back in the
    file's error workbook, whose hidden column names the original row (:func:`returned_row`)
    whatever the clerk did to the other rows, or at the same row of a corrected copy of the file
    (:func:`_copies`). Whatever the returned file is called; and also where the correction changed
    the record's key (the original record is then no longer current, and nothing else would judge
    it again) or left nothing else to recognise it by."""
    open_ = issues.filter(
        (pl.col("status") == OPEN)
        & pl.col("source").is_in(list(load_contracts().departmental))
        & pl.col("file_path").is_not_null()
    )
    if not open_.height:
        return issues
    back = []
    for table in load_contracts().ledgers:
        if lake.exists(home, "bronze", table.bronze_name):
            rows = lake.scan(home, "bronze", table.bronze_name)
            if RETURNED_ROW in rows.collect_schema().names():
                back.append(
                    rows.filter(pl.col(RETURNED_ROW).is_not_null())
                    .select(
                        pl.lit(table.key).alias("table"),
                        pl.col(RETURNED_ROW).alias("token"),
                        pl.col("_source_file").alias("back_file"),
                        pl.col("_row_number").alias("back_row"),
                        pl.col("_loaded_at").alias("at"),
                    )
                    .collect()
                )
            back.append(_copies(table, rows, open_.filter(pl.col("table") == table.key)["file_path"].unique()))
    places = open_.select("file_path", "row_number").unique()
    places = places.with_columns(token=pl.Series([returned_row(f, n) for f, n in places.iter_rows()], dtype=pl.String))
    returned = (
        open_.join(places, on=["file_path", "row_number"])
        .join(pl.concat(back), on=["table", "token"])
        .filter(pl.col("at") > pl.col("last_seen"))
    )
    # what the returned row still fails (or failed at all, kept out), in its own delivery or later
    failed = findings.select(
        pl.col("file_path").alias("back_file"),
        pl.col("row_number").alias("back_row"),
        pl.col("rule").alias("failed_rule"),
        pl.col("last_seen").alias("failed_at"),
        ((pl.col("origin") == INGEST) & (pl.col("severity") == "error")).alias("kept_out"),
    )
    failing = returned.join(failed, on=["back_file", "back_row"]).filter(
        (pl.col("failed_at") >= pl.col("at")) & (pl.col("kept_out") | (pl.col("failed_rule") == pl.col("rule")))
    )
    fixed = (
        returned.join(
            failing.select("issue_id", "back_file", "back_row"), on=["issue_id", "back_file", "back_row"], how="anti"
        )
        .group_by("issue_id")
        .agg(pl.col("at").min().alias("fixed_at"))
    )
    return _closed(issues, fixed)


def _copies(table: Table, bronze: pl.LazyFrame, originals: pl.Series) -> pl.DataFrame:
    """The rows of corrected copies of ``originals`` as returned rows (``token``: the original row
    they stand at). A copy is a later file of the same department in which most of the original's
    rows are still at their row, each with most of its cells unchanged: the clerk opened the file,
    corrected some cells and saved it under another name. Only such rows come back: a row that
    differs in most cells is another record."""
    columns = [c.name for c in table.columns]
    rows = bronze.select("_source_file", "_row_number", "_loaded_at", *columns).collect()
    # each file's latest delivery, and the folder (department) it came from
    rows = rows.filter(pl.col("_loaded_at") == pl.col("_loaded_at").max().over("_source_file")).with_columns(
        folder=pl.col("_source_file").str.replace(r"/[^/]*$", "")
    )
    original = rows.filter(pl.col("_source_file").is_in(originals.implode()))
    pairs = original.join(rows, on=["folder", "_row_number"], suffix=".copy").filter(
        (pl.col("_source_file.copy") != pl.col("_source_file")) & (pl.col("_loaded_at.copy") > pl.col("_loaded_at"))
    )
    similar = pairs.filter(
        pl.sum_horizontal(pl.col(c).eq_missing(pl.col(f"{c}.copy")) for c in columns) * 2 >= len(columns)
    )
    size = original.group_by("_source_file").len("size")
    copies = (
        similar.group_by("_source_file", "_source_file.copy")
        .len("same")
        .join(size, on="_source_file")
        .filter(pl.col("same") * 2 >= pl.col("size"))
    )
    found = similar.join(copies, on=["_source_file", "_source_file.copy"], how="semi")  # a row of a copy, like its own
    return pl.DataFrame(
        {
            "table": [table.key] * found.height,
            "token": [returned_row(f, n) for f, n in found.select("_source_file", "_row_number").iter_rows()],
            "back_file": found["_source_file.copy"],
            "back_row": found["_row_number"],
            "at": found["_loaded_at.copy"],
        },
        schema={"table": pl.String, "token": pl.String, "back_file": pl.String, "back_row": pl.Int64, "at": UTC},
    )


def _close_silver(issues: pl.DataFrame, seen: pl.DataFrame, judged: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    """A suite or cross-source issue closes when its record was judged now and did not fail."""
    failing_now = seen.select("issue_id")
    fixed = (
        issues.filter((pl.col("origin") != INGEST) & (pl.col("status") == OPEN))
        .join(judged, on=["origin", "table", "record_key"], how="semi")
        .join(failing_now, on="issue_id", how="anti")
        .select("issue_id", pl.lit(now, dtype=UTC).alias("fixed_at"))
    )
    return _closed(issues, fixed)


def _closed(issues: pl.DataFrame, fixed: pl.DataFrame) -> pl.DataFrame:
    return (
        issues.join(fixed, on="issue_id", how="left")
        .with_columns(
            pl.when(pl.col("fixed_at").is_not_null()).then(pl.lit(CLOSED)).otherwise("status").alias("status"),
            pl.coalesce("fixed_at", "closed_at").alias("closed_at"),
        )
        .drop("fixed_at")
    )


def _waive(issues: pl.DataFrame, waivers: Sequence[Waiver], now: dt.datetime) -> pl.DataFrame:
    """Waivers by an authorised analyst: recorded with reason, author and time; never undone here."""
    if not waivers:
        return issues
    given = pl.DataFrame([{"issue_id": w.issue_id, "w_reason": w.reason, "w_by": w.by} for w in waivers])
    unknown = set(given["issue_id"]) - set(issues["issue_id"])
    if unknown:
        raise ValueError(f"waivers name unknown issues: {sorted(unknown)}")
    hit = pl.col("w_by").is_not_null() & (pl.col("status") != WAIVED)
    return (
        issues.join(given, on="issue_id", how="left")
        .with_columns(
            pl.when(hit).then(pl.lit(WAIVED)).otherwise("status").alias("status"),
            pl.when(hit).then("w_reason").otherwise("waiver_reason").alias("waiver_reason"),
            pl.when(hit).then("w_by").otherwise("waived_by").alias("waived_by"),
            pl.when(hit).then(pl.lit(now, dtype=UTC)).otherwise("waived_at").alias("waived_at"),
        )
        .drop("w_reason", "w_by")
    )


# -- measure ---------------------------------------------------------------------------------------
def loop_metrics(home: Home, issues: pl.DataFrame, run_date: dt.date) -> pl.DataFrame:
    """Per source, grid and rule on ``run_date``: open, fixed and waived issues, the median hours an
    issue took to fix, and the failure rate (open issues per record the source holds now: current
    silver rows plus rows kept out). Replaces that run date's rows in ``quality/loop_metrics``."""
    held: dict[str, int] = {}
    for table in suite_tables():
        if lake.exists(home, "silver", table.bronze_name):
            rows = lake.scan(home, "silver", table.bronze_name).filter(pl.col("_valid_to").is_null())
            held[table.source] = held.get(table.source, 0) + rows.select(pl.len()).collect().item()
    kept_out = (
        issues.filter(pl.col("origin") == INGEST, pl.col("severity") == "error")
        .group_by("source")
        .agg(pl.struct("file_path", "row_number").n_unique().alias("kept_out"))
    )
    records = pl.DataFrame(
        {"source": list(held), "held": list(held.values())}, schema={"source": pl.String, "held": pl.Int64}
    )
    hours = (pl.col("closed_at") - pl.col("first_seen")).dt.total_seconds() / 3600
    metrics = (
        issues.with_columns(pl.col("grid_code").fill_null("未定位"))
        .group_by("source", "grid_code", "rule")
        .agg(
            open_issues=(pl.col("status") == OPEN).sum(),
            fixed_issues=(pl.col("status") == CLOSED).sum(),
            waived_issues=(pl.col("status") == WAIVED).sum(),
            median_hours_to_fix=hours.filter(pl.col("status") == CLOSED).median(),
        )
        .join(records, on="source", how="left")
        .join(kept_out, on="source", how="left")
        .with_columns(
            failure_rate=pl.col("open_issues") / (pl.col("held").fill_null(0) + pl.col("kept_out").fill_null(0))
        )
        .select(
            pl.lit(run_date).alias("run_date"),
            "source",
            "grid_code",
            "rule",
            "failure_rate",
            "open_issues",
            "fixed_issues",
            "waived_issues",
            "median_hours_to_fix",
        )
        .sort("source", "grid_code", "rule")
        .cast(
            pl.Schema(load_contracts().table(f"{LAYER}.{METRICS}").schema())
        )  # counts as the contract's int, not UInt32
    )
    lake.replace(home, LAYER, METRICS, metrics, where=f"run_date = '{run_date}'")
    return metrics


def markdown(metrics: pl.DataFrame) -> str:
    """The metrics summed per source, as a markdown table short enough to read whole (per grid and
    rule they run to hundreds of rows: those are in the warehouse). No personal values."""
    by_source = (
        metrics.group_by("source")
        .agg(
            pl.col("failure_rate").sum(),
            pl.col("open_issues", "fixed_issues", "waived_issues").sum(),
            pl.col("grid_code").n_unique().alias("grids"),
            pl.col("rule").n_unique().alias("rules"),
        )
        .sort("source")
    )
    head = "| 来源 | 失败率 | 待整改 | 已整改 | 已豁免 | 涉及网格 | 涉及规则 |\n|---|---|---|---|---|---|---|\n"
    return head + "".join(
        f"| {r['source']} | {r['failure_rate'] or 0:.2%} | {r['open_issues']} | {r['fixed_issues']} | "
        f"{r['waived_issues']} | {r['grids']} | {r['rules']} |\n"
        for r in by_source.iter_rows(named=True)
    )
