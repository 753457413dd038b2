"""An incremental build gives exactly what a full rebuild gives.

One generated street is taken in delivery by delivery (the last day's files held back and then
delivered in three batches, with a clerk's corrected ledger among them). After each batch two
homes holding the very same ingested lake build on: one incrementally (the default), one with
``full=True`` at every stage. Every mart, the issue table and the published warehouse must be the
same row for row, while the incremental home validated only the rows that changed."""

import datetime as dt
import re
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from redwall import lake
from redwall.generator import generate
from redwall.home import Home
from redwall.ingest import holds, process_source, release
from redwall.marts import build_marts
from redwall.privacy import mark_demo
from redwall.quality.loop import run_loop
from redwall.quality.outbox import write_outbox
from redwall.schemas import load_contracts
from redwall.warehouse import publish

INGESTED = ("bronze", "silver", "ops")  # what ingestion writes: shared by both homes
START = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)


def _batches(home: Home) -> list[list[tuple[Path, Path]]]:
    """Hold back the files of the last day, in three batches: the hourly grid-app files, then the
    police snapshot with the district's files, then everything else."""
    inbox = home.root / "inbox"
    dated = [
        (m.group(1), p) for p in inbox.rglob("*") if p.is_file() and (m := re.search(r"_(\d{8})\d{0,2}\.", p.name))
    ]
    last = max(day for day, _ in dated)
    batches: list[list[tuple[Path, Path]]] = [[], [], []]
    for day, path in dated:
        if day == last:
            held = home.root / "held" / path.relative_to(inbox)
            held.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, held)
            source = path.relative_to(inbox).parts[0]
            batches[0 if source == "grid_app" else 1 if source in ("police", "district") else 2].append((held, path))
    return [b for b in batches if b]


def _ingest(home: Home) -> None:
    for source in load_contracts().sources:
        process_source(home, source)
    for receipt_id in holds.pending(home)["receipt_id"]:
        release(home, receipt_id, "analyst01", "已核对，有效行先行应用")


def _share_ingested(source: Home, target: Home) -> None:
    for layer in INGESTED:
        shutil.rmtree(Path(target.table_uri(layer, "")), ignore_errors=True)
        shutil.copytree(Path(source.table_uri(layer, "")), Path(target.table_uri(layer, "")), symlinks=True)


def _build(home: Home, at: dt.datetime, full: bool) -> tuple[dict, dict, dict]:
    """Marts, quality loop, outbox and publish; returns what the loop, the publish and the marts
    processed."""
    cost: dict = {}
    computed: dict = {}
    build_marts(home, as_of=at, full=full, cost=computed)
    issues = run_loop(home, now=at, full=full, cost=cost)
    write_outbox(home, issues, full=full)
    published: dict = {}
    publish(home, full=full, cost=published)
    return cost, published, computed


def _equal(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    return a.columns == b.columns and a.sort(a.columns, nulls_last=True).equals(b.sort(b.columns, nulls_last=True))


def _same(a: pl.DataFrame, b: pl.DataFrame, what: str) -> None:
    assert a.columns == b.columns, what
    order = a.columns
    assert a.height == b.height, f"{what}: {a.height} rows against {b.height}"
    assert a.sort(order, nulls_last=True).equals(b.sort(order, nulls_last=True)), f"{what} differs"


def _warehouse(home: Home) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        names = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name NOT IN ('ref') ORDER BY 1, 2"
        ).fetchall()
        return {f"{s}.{t}": con.execute(f'SELECT * FROM "{s}"."{t}"').pl() for s, t in names}


@pytest.fixture(scope="module")
def built_both_ways(tmp_path_factory):
    incremental = Home.at(tmp_path_factory.mktemp("incremental")).ensure()
    full = Home.at(tmp_path_factory.mktemp("full")).ensure()
    generate(incremental, scale="small", seed=5, days=3)
    mark_demo(incremental)
    batches = _batches(incremental)
    shutil.copy(incremental.demo_record, full.demo_record)
    steps, differing = [], []
    # START is a Saturday: the last batch comes on the Monday after, in working hours (the day
    # moved: ages, care tags by date, days since a visit; and the moment: open events' working
    # time, overdue counts), then a build that takes in nothing an hour later: only the moment
    # moved, so the marts judged at it follow while the person marts stand
    monday = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
    ats = [START + dt.timedelta(hours=step) for step in range(len(batches))] + [monday, monday + dt.timedelta(hours=1)]
    for step, (batch, at) in enumerate(zip([[], *batches, []], ats, strict=True)):
        for held, original in batch:
            shutil.move(held, original)
        _ingest(incremental)
        _share_ingested(incremental, full)
        steps.append((_build(incremental, at, full=False), _build(full, at, full=True)))
        differing += [
            (step, t.name)
            for t in load_contracts().marts
            if not _equal(lake.read(incremental, "mart", t.name), lake.read(full, "mart", t.name))
        ]
    return incremental, full, steps, differing


def test_every_mart_and_the_issue_table_match_a_full_rebuild(built_both_ways):
    incremental, full, *_ = built_both_ways
    for table in load_contracts().marts:
        _same(lake.read(incremental, "mart", table.name), lake.read(full, "mart", table.name), table.key)
    _same(lake.read(incremental, "quality", "issue"), lake.read(full, "quality", "issue"), "quality.issue")


def test_the_outbox_matches_a_full_rebuild(built_both_ways):
    incremental, full, *_ = built_both_ways
    files = {
        home: sorted(p.relative_to(home.outbox) for p in home.outbox.rglob("*.xlsx")) for home in (incremental, full)
    }
    assert files[incremental] == files[full] and files[full]
    for name in files[full]:
        if name.parts[0] == "rectification":
            _same(pl.read_excel(incremental.outbox / name), pl.read_excel(full.outbox / name), str(name))


def test_the_published_warehouse_matches_a_full_rebuild(built_both_ways):
    incremental, full, *_ = built_both_ways
    mine, theirs = _warehouse(incremental), _warehouse(full)
    assert mine.keys() == theirs.keys()
    for name in mine:
        _same(mine[name], theirs[name], name)


def test_an_increment_judges_only_what_changed_and_keeps_unchanged_tables(built_both_ways):
    _, _, steps, _ = built_both_ways
    for (judged, published, _), (judged_full, published_full, _) in steps[1:]:
        processed = sum(done for done, _ in judged.values())
        held = sum(rows for _, rows in judged.values())
        assert sum(rows for _, rows in judged_full.values()) == held
        assert sum(done for done, _ in judged_full.values()) == held  # a full build judges every row
        assert processed < held / 2, f"an increment re-judged {processed} of {held} rows"
        assert all(made for made, _ in published_full.values())
        assert 0 < sum(made for made, _ in published.values()) < len(published)  # some tables kept as they were


def test_every_mart_matches_a_full_rebuild_after_every_build(built_both_ways):
    *_, differing = built_both_ways
    assert not differing, f"(build, mart) differing from a full rebuild: {differing}"


def test_an_increment_computes_only_the_marts_whose_inputs_or_moment_changed(built_both_ways):
    _, _, steps, _ = built_both_ways
    for (_, _, computed), (_, _, computed_full) in steps[1:]:
        assert all(done == rows for done, rows in computed_full.values())  # a full build computes every mart
        assert {name for name, (done, rows) in computed.items() if rows and not done}, "every mart computed again"
    (_, _, grid_app), _ = steps[1]  # the hourly grid-app files: visits are person records, events move
    assert grid_app["person"][0] and grid_app["event"][0] and not grid_app["organization"][0]
    (_, _, next_day), _ = steps[-2]  # days later: every mart judged by the day
    assert all(next_day[name][0] for name in ("person", "care_visit", "event", "object", "grid"))
    (_, _, next_hour), _ = steps[-1]  # nothing delivered, an hour later
    kept = {name for name, (done, _) in next_hour.items() if not done}
    assert {"person", "person_link", "care_visit", "object", "organization"} <= kept
    assert next_hour["event"][0] and next_hour["grid"][0]  # judged at the new moment
