"""Streets are a dimension, and the upward leg of 市区街居: two street centres' homes (small scale,
other seeds, other streets) each build their marts, run the quality loop and export their package;
a district's home takes both packages in as the street_package feed and publishes mart.street."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil

import dagster as dg
import duckdb
import polars as pl
import pytest

from redwall import lake
from redwall.assets.resources import PseudonymKey, RedwallHome
from redwall.assets.streets import STREET, register_streets, street_assets
from redwall.generator import generate
from redwall.home import Home
from redwall.ingest import holds, process_source, release
from redwall.marts import build_marts
from redwall.marts.tables import with_street
from redwall.package import SOURCE, export_package, package_folder, streets
from redwall.quality.loop import ISSUE_SCHEMA, route, run_loop
from redwall.quality.outbox import UNPLACED_STREET, rectification_folder, write_outbox
from redwall.schemas import HERE as CONTRACTS
from redwall.schemas import ContractError, load_contracts
from redwall.warehouse import extract_street, k_anonymity, publish, street_extract_path

STREET_HOMES = {"110102001": 11, "110102003": 5}  # street code → generator seed
DAY = dt.date(2026, 11, 21)


@pytest.fixture(scope="module")
def keyed():
    saved = os.environ.get("REDWALL_PSEUDONYM_KEY")
    os.environ["REDWALL_PSEUDONYM_KEY"] = "streets-test-key"
    yield
    if saved is None:
        os.environ.pop("REDWALL_PSEUDONYM_KEY")
    else:
        os.environ["REDWALL_PSEUDONYM_KEY"] = saved


@pytest.fixture(scope="module")
def street_homes(tmp_path_factory, keyed) -> dict[str, Home]:
    """Each street centre: generated, taken in, marts built, quality loop run, package exported."""
    homes = {}
    for street, seed in STREET_HOMES.items():
        home = Home.at(tmp_path_factory.mktemp(f"street{street}")).ensure()
        generate(home, scale="small", seed=seed, days=2, street=street)
        for source in load_contracts().sources:
            process_source(home, source)
        for receipt_id in holds.pending(home)["receipt_id"]:
            release(home, receipt_id, "analyst01", "已核对，有效行先行应用")
        build_marts(home)
        run_loop(home)
        export_package(home, street, on=DAY)
        homes[street] = home
    return homes


@pytest.fixture(scope="module")
def district(tmp_path_factory, street_homes) -> Home:
    """The district's home: nothing but its streets' packages, taken in, rolled up and published."""
    home = Home.at(tmp_path_factory.mktemp("district")).ensure()
    inbox = home.inbox(SOURCE)
    inbox.mkdir(parents=True, exist_ok=True)
    for street, street_home in street_homes.items():
        for path in package_folder(street_home, street).iterdir():
            shutil.copy(path, inbox / path.name)
    receipts = process_source(home, SOURCE)
    assert {r.status for r in receipts} == {"accepted"}, [r.reasons_zh for r in receipts]
    build_marts(home)
    run_loop(home)
    publish(home)
    return home


def test_every_mart_row_and_issue_knows_its_street(street_homes):
    for street, home in street_homes.items():
        assert streets(home) == [street]
        for mart in load_contracts().marts:
            if "street_code" in mart.schema() and mart.name != "street":
                frame = lake.read(home, "mart", mart.name, columns=["street_code"])
                assert frame["street_code"].to_list() == [street] * frame.height, mart.key
                assert frame.height > 0 or mart.name == "address_issue", mart.key  # two days may resolve every address
        issues = lake.read(home, "quality", "issue")
        # a street centre's home: what no grid places is still the street's own
        assert issues.height > 0 and (issues["street_code"] == street).all()


def test_a_record_its_register_does_not_place_still_knows_its_street(tmp_path):
    """Where neither grid nor community is in the register: the street the record names (a
    street's package), else the street its grid code names, if the register (or, without one, the
    national list) knows it; in a street centre's home, what nothing places is still its street."""
    home = Home.at(tmp_path).ensure()
    findings = pl.DataFrame(
        {
            "table": ["street_package.quality", "grid_app.event", "grid_app.event", "police.population"],
            "grid_code": [None, "110102003004002", "110102999004002", None],
            "street_hint": ["110102001", None, None, None],
        }
    ).with_columns(
        pl.lit(None, pl.String).alias(c) for c in ("person_key", "community_name", "place_address", "department")
    )
    # a district home holding only its streets' packages: no register
    assert route(findings, home)["street_code"].to_list() == ["110102001", "110102003", None, None]
    grids = pl.DataFrame(
        {"grid_code": ["110102001001001"], "community_code": ["110102001001"], "street_code": ["110102001"]}
    )
    assert with_street(findings.select("grid_code"), grids)["street_code"].to_list() == ["110102001"] * 4


def test_rectification_lists_go_to_their_street(street_homes, tmp_path):
    street, home = next(iter(street_homes.items()))
    issues = lake.read(home, "quality", "issue")
    files = write_outbox(home, issues)
    root = home.outbox / "rectification"
    # a street centre's home: one folder, its street's, holding every list
    assert [p.name for p in root.iterdir()] == [street] and files["streets"] == 1
    lists = sorted(rectification_folder(home, street).glob("*.xlsx"))
    assert len(lists) == files["grid"] + files["department"] + files["unlocated"] > 0
    assert all(set(pl.read_excel(p)["街道编码"]) == {street} for p in lists[:3])
    # a district's issues: one folder per street, those no street places apart; a street whose
    # issues all closed has its folder removed
    other, open_ = "110102003", issues.filter(pl.col("status") == "open")
    moved = pl.concat(
        [
            open_.head(5).with_columns(street_code=pl.lit(other)),
            open_.slice(5, 2).with_columns(street_code=pl.lit(None, pl.String)),
            open_.slice(7),
        ]
    ).cast(ISSUE_SCHEMA)
    district = Home.at(tmp_path / "district").ensure()
    write_outbox(district, moved)
    assert sorted(p.name for p in (district.outbox / "rectification").iterdir()) == sorted(
        [street, other, UNPLACED_STREET]
    )
    write_outbox(district, moved.filter(pl.col("street_code") != other))
    assert sorted(p.name for p in (district.outbox / "rectification").iterdir()) == sorted([street])


def test_a_package_is_the_exchange_form_with_only_what_may_leave_the_street(street_homes):
    street, home = next(iter(street_homes.items()))
    folder = package_folder(home, street)
    names = sorted(p.name for p in folder.iterdir())
    tables = [t.name for t in load_contracts().source_tables(SOURCE)]
    assert names == sorted(
        f"{t}_{street}_{DAY:%Y%m%d}{suffix}" for t in tables for suffix in (".parquet", ".dict.json")
    )
    event = pl.read_parquet(folder / f"event_{street}_{DAY:%Y%m%d}.parquet")
    mart = load_contracts().table("mart.event")
    # no address, coordinates or description: only the public columns of a mart shared without condition
    assert set(event.columns) == {c.name for c in mart.columns if c.sensitivity == "public" and not c.free_text}
    assert {"address", "lon", "lat", "description"}.isdisjoint(event.columns)
    assert event.height == lake.read(home, "mart", "event").height
    dictionary = json.loads((folder / f"grid_{street}_{DAY:%Y%m%d}.dict.json").read_text(encoding="utf-8"))
    assert dictionary["residents"] == {"name": "现住人口", "type": "int"}
    assert dictionary["street_code"]["codes"][street].endswith("街道")


def test_only_a_mart_shared_without_condition_leaves_its_street(tmp_path):
    root = tmp_path / "schemas"
    shutil.copytree(CONTRACTS, root)
    text = (root / "feeds" / "street_package.yaml").read_text(encoding="utf-8")
    (root / "feeds" / "street_package.yaml").write_text(text.replace("shares: mart.event", "shares: mart.person"))
    with pytest.raises(ContractError, match="有条件共享"):
        load_contracts(root)


def test_the_district_rolls_its_streets_up(street_homes, district):
    with duckdb.connect(str(district.warehouse), read_only=True) as con:
        rolled = con.sql("SELECT * FROM mart.street ORDER BY street_code").pl()
    assert rolled["street_code"].to_list() == sorted(STREET_HOMES)
    assert rolled["street_name"].to_list() == ["西长安街街道", "新街口街道"]
    for row in rolled.iter_rows(named=True):
        home = street_homes[row["street_code"]]
        grids, events = lake.read(home, "mart", "grid"), lake.read(home, "mart", "event")
        issues = lake.read(home, "quality", "issue")
        # care-group counts too small to share are withheld in the package: the roll-up sums what was shared
        shared = pl.read_parquet(
            package_folder(home, row["street_code"]) / f"grid_{row['street_code']}_{DAY:%Y%m%d}.parquet"
        )
        assert not shared.select(pl.any_horizontal(pl.col("living_alone", "dibao").is_between(1, 9)).any()).item()
        assert (row["grids"], row["residents"], row["living_alone"], row["dibao"]) == (
            grids.height,
            grids["residents"].sum(),
            shared["living_alone"].sum(),
            shared["dibao"].sum(),
        )
        # residents by type, and those neither register lists (未登记), add up in the roll-up too
        by_type = ["registered_residents", "floating_residents", "foreign_residents", "unregistered_residents"]
        assert [row[c] for c in by_type] == [grids[c].sum() for c in by_type]
        assert row["residents"] == sum(row[c] for c in by_type)
        judged = events.filter(pl.col("on_time").is_not_null())
        assert (row["events"], row["events_judged"], row["events_on_time"]) == (
            events.height,
            judged.height,
            judged["on_time"].sum(),
        )
        assert row["on_time_rate"] == pytest.approx(judged["on_time"].mean())
        assert (row["issues_open"], row["issues_closed"]) == (
            (issues["status"] == "open").sum(),
            (issues["status"] == "closed").sum(),
        )
        assert row["package_on"] == DAY


def test_a_newer_package_is_the_truth_for_its_own_street_only(street_homes, district):
    street, home = "110102003", street_homes["110102003"]
    later = DAY + dt.timedelta(days=1)
    folder = package_folder(home, street)
    export_package(home, street, on=later)
    grid = folder / f"grid_{street}_{later:%Y%m%d}.parquet"
    pl.read_parquet(grid).head(3).write_parquet(grid)  # the street's register shrank to three grids
    for path in folder.iterdir():
        shutil.copy(path, district.inbox(SOURCE) / path.name)
    # the events and issues did not change: the same content again is a duplicate
    taken = {r.file_name: r.status for r in process_source(district, SOURCE)}
    assert taken[grid.name] == "accepted" and set(taken.values()) <= {"accepted", "duplicate"}
    build_marts(district)
    rolled = {r["street_code"]: r for r in lake.read(district, "mart", "street").iter_rows(named=True)}
    assert rolled[street]["grids"] == 3 and rolled[street]["package_on"] == later
    assert rolled["110102001"]["grids"] == lake.read(street_homes["110102001"], "mart", "grid").height


def test_streets_are_partitions_and_one_street_is_packaged_alone(street_homes, tmp_path):
    street, home = "110102003", street_homes["110102003"]
    (asset,) = [a for a in street_assets() if a.key == dg.AssetKey(["outbox", "street_package"])]
    with dg.DagsterInstance.ephemeral() as instance:
        assert register_streets(instance, home) == [street]
        assert register_streets(instance, home) == []  # known already
        assert instance.get_dynamic_partitions(STREET) == [street]
        shutil.rmtree(package_folder(home, street))
        result = dg.materialize(
            [asset],
            partition_key=street,
            instance=instance,
            resources={"redwall": RedwallHome(root=str(home.root)), "pseudonym_key": PseudonymKey()},
        )
        assert result.success
        metadata = result.asset_materializations_for_node(asset.op.name)[0].metadata
        assert metadata["rows/grid"].value == lake.read(home, "mart", "grid").height
        assert sorted(p.suffix for p in package_folder(home, street).iterdir()) == [".json"] * 3 + [".parquet"] * 3


def test_a_street_extract_is_its_part_of_the_shared_warehouse(street_homes, district):
    street, home = "110102001", street_homes["110102001"]
    with pytest.raises(FileNotFoundError):
        extract_street(home, street)  # nothing published yet
    publish(home)
    assets = {a.key: a for a in street_assets()}
    with dg.DagsterInstance.ephemeral() as instance:
        register_streets(instance, home)
        result = dg.materialize(
            [assets[dg.AssetKey(["warehouse", "street"])], assets[dg.AssetKey(["outbox", "rectification"])]],
            partition_key=street,
            instance=instance,
            resources={"redwall": RedwallHome(root=str(home.root))},
        )
        assert result.success
    extract = street_extract_path(home, street)
    assert extract.stat().st_mode & 0o777 == 0o644  # like the shared warehouse it comes from
    with (
        duckdb.connect(str(home.warehouse), read_only=True) as shared,
        duckdb.connect(str(extract), read_only=True) as mine,
    ):
        for table in ("mart.person", "mart.person_link", "mart.care_visit", "quality.issue", "mart.grid"):
            query = f"SELECT * FROM {table} WHERE street_code = '{street}' ORDER BY ALL"
            assert mine.sql(query).pl().equals(shared.sql(query).pl()), table  # masked as shared, nothing else
            assert mine.sql(f"SELECT count(*) FROM {table}").fetchone()[0] > 0
        # the comments and the views came along
        assert mine.sql("SELECT comment FROM duckdb_tables() WHERE table_name = 'person'").fetchone()[0]
        assert mine.sql("SELECT count(*) FROM mart.community").fetchone()[0] > 0
    assert not any(f["rows"] and f["k"] < f["min_k"] for f in k_anonymity(extract).values())
    # a district's extract of one street: that street's roll-up row only
    extract_street(district, "110102003")
    with duckdb.connect(str(street_extract_path(district, "110102003")), read_only=True) as con:
        assert con.sql("SELECT street_code FROM mart.street").fetchall() == [("110102003",)]
