"""Publishing to DuckDB: atomic for readers in other processes, commented, and leaking no ID or
phone number into the shared warehouse. Uses the hand-built street of test_marts."""

from __future__ import annotations

import dataclasses
import hmac
import json
import queue
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
import time

import duckdb
import polars as pl
import pytest
from test_marts import ADDRESS, AS_OF, H1, P, citizen_id, police, silver, street_silver, write_silver

from redwall import lake
from redwall.catalog import publish_catalog
from redwall.home import Home
from redwall.identifiers import PHONE_PATTERN, is_valid_citizen_id
from redwall.ingest.inbox import inbox_files
from redwall.ingest.receipts import (
    OPS,
    RECEIPT_SCHEMA,
    RECEIPTS,
    REGISTRY,
    REGISTRY_SCHEMA,
    REJECTION_SCHEMA,
    REJECTIONS,
)
from redwall.marts import build_marts
from redwall.marts.resolution.records import person_digest
from redwall.privacy import DEMO_KEY, KEY_ENV, MissingKeyError, mark_demo, pseudonyms, shared_columns, shared_issues
from redwall.quality.loop import ISSUE_SCHEMA, ISSUES, loop_metrics
from redwall.quality.loop import LAYER as QUALITY
from redwall.schemas import load_contracts
from redwall.warehouse import k_anonymity, publish, restricted_path, too_rare

NUMBER = re.compile(r"\d+[Xx]?")  # a whole run: a 20-digit house code holds no 18-digit ID
SECRET = "test-secret-not-the-demo-key"

READER = textwrap.dedent("""
    import json, os, sys, time
    import duckdb
    path, stop, mode = sys.argv[1:4]
    query = "SELECT (SELECT sum(residents) FROM mart.grid), (SELECT count(*) FROM mart.grid)"
    held = duckdb.connect(path, read_only=True) if mode == "held" else None
    last = None
    while not os.path.exists(stop):
        if held:
            seen = held.execute(query).fetchone()
        else:
            with duckdb.connect(path, read_only=True) as con:
                seen = con.execute(query).fetchone()
        if seen != last:  # one line per change of what the reader sees
            print(json.dumps(seen), flush=True)
            last = seen
        time.sleep(0.02)
""")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Home:
    """The hand-built street's marts and a receipt, not yet published: each test copies it."""
    home = Home.at(tmp_path_factory.mktemp("built") / "home")
    write_silver(home, street_silver())
    build_marts(home, as_of=AS_OF)
    lake.write(
        home,
        "ops",
        "file_receipt",
        pl.DataFrame(
            {
                "source": ["police"],
                "file_name": ["实有人口_20261116.csv"],
                "file_hash": ["0" * 64],
                "rows_read": [13],
                "status": ["loaded"],
            }
        ),
    )
    return home


@pytest.fixture()
def home(built, tmp_path, monkeypatch) -> Home:
    """A home of its own for each test (tests publish, kill publishes and plant files in it)."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    shutil.copytree(built.root, tmp_path / "home", symlinks=True)
    return Home.at(tmp_path / "home")


def personal_numbers(text: str) -> list[str]:
    """The valid citizen IDs and mobile numbers written in ``text``."""
    return [n for n in NUMBER.findall(text) if is_valid_citizen_id(n) or re.fullmatch(PHONE_PATTERN, n)]


def strings(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str, str], list[str]]:
    """Every text value of every table, by (schema, table, column), plus the comments."""
    columns = con.execute(
        "SELECT schema_name, table_name, column_name FROM duckdb_columns() WHERE data_type = 'VARCHAR' AND NOT internal"
    ).fetchall()
    values = {
        (s, t, c): [v for (v,) in con.execute(f'SELECT "{c}" FROM "{s}"."{t}" WHERE "{c}" IS NOT NULL').fetchall()]
        for s, t, c in columns
    }
    values[("meta", "comments", "")] = [
        v
        for (v,) in con.execute(
            "SELECT comment FROM duckdb_tables() UNION ALL SELECT comment FROM duckdb_columns() WHERE comment IS NOT NULL"
        ).fetchall()
        if v
    ]
    return values


def test_shared_warehouse_holds_no_id_or_phone_number(home):
    counts = publish(home)
    with duckdb.connect(str(restricted_path(home)), read_only=True) as con:
        clear = strings(con)
    raw = {v for (_, t, c), vs in clear.items() if c in ("id_number", "phone") for v in vs}
    assert any(is_valid_citizen_id(v) for v in raw) and any(re.fullmatch(PHONE_PATTERN, v) for v in raw)
    assert {P[1], "E12345678", "13912340001"} <= raw  # the check can fail: the data had them

    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        shared = strings(con)
        assert con.execute("SELECT count(*) FROM mart.person").fetchone() == (counts["mart.person"],)
    assert 0 < counts["mart.person"] <= 14  # persons too rare to share even blanked are left out
    for (schema, table, column), values in shared.items():
        if column.endswith("_key"):  # pseudonyms: 16 hex digits, never an 18-character ID
            assert all(re.fullmatch(r"[0-9a-f]{16}", v) for v in values), (schema, table, column)
            continue
        for v in values:
            assert not personal_numbers(v), (schema, table, column, v)
            assert not any(r in v for r in raw), (schema, table, column, v)


def test_shared_view_masks_pseudonymises_and_leaves_out_sensitive_columns(home):
    publish(home)
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        person = con.execute("SELECT * FROM mart.person").pl()
        care = con.execute("SELECT * FROM mart.care_visit").pl()
    with duckdb.connect(str(restricted_path(home)), read_only=True) as con:
        clear = con.execute("SELECT * FROM mart.person").pl()
    assert {"ethnicity", "is_disabled", "is_dibao", "is_living_alone"}.isdisjoint(person.columns)
    assert {"id_number_key", "phone_key", "is_very_old"} <= set(person.columns)
    assert "care_types" in care.columns  # opted in by the care_visit contract
    # no display mask beside a pseudonym (the mask plus the age would let a key holder try every candidate)
    assert {"id_number", "phone", "name", "house_code", "birth_date", "birth_year", "age"}.isdisjoint(person.columns)
    assert {"id_number", "phone", "name", "house_code"}.isdisjoint(care.columns)
    one = clear.filter(pl.col("id_number") == P[1]).row(0, named=True)
    shared = person.filter(pl.col("id_number_key") == pseudonyms(pl.Series([P[1]]), SECRET.encode())[0]).row(
        0, named=True
    )
    assert shared["person_key"] == pseudonyms(pl.Series([one["person_key"]]), SECRET.encode())[0]
    assert shared["phone_key"] == pseudonyms(pl.Series([one["phone"]]), SECRET.encode())[0]
    assert set(person["age_band"].drop_nulls()) <= {f"{low}-{low + 4}岁" for low in range(0, 80, 5)} | {"80岁及以上"}


def test_shared_marts_do_not_join_back_to_what_they_leave_out(home):
    publish(home)
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        person = con.execute("SELECT * FROM mart.person").pl()
    with duckdb.connect(str(restricted_path(home)), read_only=True) as con:
        clear = con.execute("SELECT * FROM mart.person").pl()
        # the house register's unit and room would undo the address cut: no shared person table has a house
        assert con.execute("SELECT count(*) FROM mart.person JOIN mart.place USING (house_code)").fetchone()[0] > 0
    # no shared row says a person holds a disability certificate, minimum income or lives alone
    listed = {t.key for t in load_contracts().tables.values() if t.sensitive_listing}
    assert clear["sources"].str.split(",").explode().is_in(list(listed)).any()  # the check can fail
    assert not person["sources"].str.split(",").explode().is_in(list(listed)).any()
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        assert con.execute(
            "SELECT count(*) FROM mart.person_link WHERE list_contains(?, source)", [sorted(listed)]
        ).fetchone() == (0,)
    with duckdb.connect(str(restricted_path(home)), read_only=True) as con:
        assert (
            con.execute(
                "SELECT count(*) FROM mart.person_link WHERE list_contains(?, source)", [sorted(listed)]
            ).fetchone()[0]
            > 0
        )


def test_shared_person_tables_join_on_no_pseudonym_and_small_counts_go_out_as_null(home):
    publish(home)
    tables = ["person_history", "care_visit", "person_link"]
    with duckdb.connect(str(restricted_path(home)), read_only=True) as con:
        joined = {
            t: con.execute(f"SELECT count(*) FROM mart.person JOIN mart.{t} USING (person_key)").fetchone()[0]
            for t in tables
        }
        grid = con.execute("SELECT * FROM mart.grid ORDER BY grid_code").pl()
    assert all(joined.values()), joined  # in the restricted warehouse every one joins its persons
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        for (
            t
        ) in tables:  # shared, each keeps a pseudonym of its own: joined, they would combine their quasi-identifiers
            assert con.execute(f"SELECT count(*) FROM mart.person JOIN mart.{t} USING (person_key)").fetchone() == (0,)
        shared_grid = con.execute("SELECT * FROM mart.grid ORDER BY grid_code").pl()
        place = con.execute(
            "SELECT registered_residents, floating_residents, foreign_residents, unregistered_residents FROM mart.place"
        ).pl()
    counts = ["living_alone", "very_old", "disabled", "dibao"]
    assert grid.select(pl.any_horizontal(pl.col(c).is_between(1, 9) for c in counts)).to_series().any()  # can fail
    for c in counts:  # 无条件共享: a count from 1 to 9 is shared as null, the others as they are
        small = grid[c].is_between(1, 9)
        assert shared_grid.filter(small)[c].is_null().all() and shared_grid.filter(~small)[c].equals(
            grid.filter(~small)[c]
        )
    assert shared_grid["residents"].equals(grid["residents"])
    # a house's residents by type go out together or not at all, never one from 1 to 4
    assert not place.select(pl.any_horizontal(pl.all().is_between(1, 4))).to_series().any()
    figures = k_anonymity(home.warehouse)
    assert figures["join/person_key"]["rows"] == 0  # no person found in two shared tables
    assert figures["mart.grid"]["min_k"] == 10 and figures["mart.place"]["min_k"] == 5
    assert not any(map(too_rare, figures.values()))


def test_shared_issues_keep_no_enumerable_digest_and_no_sensitive_listing():
    digest = person_digest(pl.Series([P[1]]))[0]  # an issue's record key for a citizen-ID key
    issues = pl.DataFrame(
        {
            "table": ["police.population", "ledgers.elderly_alone", "district.building", "police.population"],
            "record_key": [digest, digest, "B1", None],
        }
    )
    shared = shared_issues(issues, SECRET.encode())["record_key"].to_list()
    # keyed as the shared person_key is, so an issue still finds its person; never the digest itself
    assert shared == [pseudonyms(pl.Series([digest]), SECRET.encode())[0], None, "B1", None]


def test_pseudonyms_are_hmac_sha256_and_opting_in_needs_a_sensitive_column():
    for key in (SECRET.encode(), b"k" * 100):  # a key longer than SHA-256's block is hashed first
        assert pseudonyms(pl.Series([P[1], None]), key).to_list() == [
            hmac.new(key, P[1].encode(), "sha256").hexdigest()[:16],
            None,
        ]
    care = load_contracts().table("mart.care_visit")
    wrong = dataclasses.replace(care, catalogue={**care.catalogue, "share_sensitive": ["name"]})
    with pytest.raises(ValueError, match="share_sensitive"):
        shared_columns(wrong)


def test_comments_come_from_the_contracts(home):
    publish(home)
    person = load_contracts().table("mart.person")
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        (table_comment,) = con.execute(
            "SELECT comment FROM duckdb_tables() WHERE schema_name = 'mart' AND table_name = 'person'"
        ).fetchone()
        comments = dict(
            con.execute(
                "SELECT column_name, comment FROM duckdb_columns() WHERE schema_name = 'mart' AND table_name = 'person'"
            ).fetchall()
        )
        schemas = {s for (s,) in con.execute("SELECT DISTINCT schema_name FROM duckdb_tables()").fetchall()}
        tables = {
            t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'ref'").fetchall()
        }
    assert table_comment.startswith(person.title)
    assert comments["sex"] == "性别" and comments["age_band"] == "年龄段"
    assert comments["id_number_key"] == "证件号码（假名）"
    assert all(comments.values())
    assert schemas == {"mart", "ops", "ref"}
    assert {"calendar", "event_class", "component_class", "codes"} <= tables


def test_every_table_and_column_has_a_chinese_comment(home):
    """Dashboards and notebooks read every published table, not only the marts: ops, quality,
    catalog and ref carry Chinese comments too."""
    for layer, name, schema in (
        (OPS, RECEIPTS, RECEIPT_SCHEMA),
        (OPS, REJECTIONS, REJECTION_SCHEMA),
        (OPS, REGISTRY, REGISTRY_SCHEMA),
        (QUALITY, ISSUES, ISSUE_SCHEMA),
    ):
        lake.write(home, layer, name, pl.DataFrame(schema=schema))
    loop_metrics(home, pl.DataFrame(schema=ISSUE_SCHEMA), AS_OF)
    publish_catalog(home)
    shared = publish(home)
    assert {
        "ops.file_receipt",
        "ops.rejection",
        "ops.file_registry",
        "quality.issue",
        "quality.loop_metrics",
        "catalog.item",
        "ref.calendar",
        "ref.codes",
    } <= set(shared)
    chinese = re.compile(r"[\u4e00-\u9fff]")
    for path in (home.warehouse, restricted_path(home)):
        with duckdb.connect(str(path), read_only=True) as con:
            tables = con.execute("SELECT schema_name, table_name, comment FROM duckdb_tables()").fetchall()
            columns = con.execute(
                "SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() WHERE NOT internal"
            ).fetchall()
        assert tables and len(columns) > len(tables)
        bare = [(path.name, *where) for *where, comment in tables + columns if not chinese.search(comment or "")]
        assert not bare


def test_restricted_warehouse_is_for_the_owner_only(home):
    publish(home)
    path = restricted_path(home)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.resolve().parent.stat().st_mode) == 0o700  # also inside its version
    assert stat.S_IMODE(path.resolve().stat().st_mode) == 0o600
    assert sorted(p.name for p in home.warehouse.parent.iterdir()) == [
        ".publish.lock",
        "current",
        "redwall.duckdb",
        "restricted",
        "versions",
    ]


def test_publishing_needs_the_key_outside_demo(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    home = Home.at(tmp_path / "home").ensure()
    home.inbox("police").mkdir()
    (home.inbox("police") / "实有人口_20261116.csv").write_bytes("公民身份号码,姓名\n".encode("gb18030"))
    mark_demo(home)  # what `redwall demo` does once it has generated the feeds
    generated = inbox_files(home, "police")[0].sha256
    write_silver(home, street_silver())
    build_marts(home, as_of=AS_OF)

    def answered(*hashes: str) -> None:  # the receipts ingestion writes, one per file it answered
        lake.write(home, "ops", "file_receipt", pl.DataFrame({"file_hash": list(hashes), "status": "accepted"}))

    answered(generated)
    publish(home)  # every file this home took in was generated here: the demo key may publish
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        demo_keys = set(con.execute("SELECT id_number_key FROM mart.person").pl()["id_number_key"])
    assert demo_keys and demo_keys <= set(pseudonyms(lake.read(home, "mart", "person")["id_number"], DEMO_KEY))

    answered(generated, "9" * 64)  # then one file from a real source
    with pytest.raises(MissingKeyError, match="did not generate"):
        publish(home)
    with pytest.raises(ValueError, match="cannot become a demo home"):
        mark_demo(home)  # nor can the home be made a demo home again
    monkeypatch.setenv(KEY_ENV, SECRET)
    publish(home)
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        keys = set(con.execute("SELECT id_number_key FROM mart.person").pl()["id_number_key"])
    assert keys.isdisjoint(demo_keys)


def test_a_planted_marker_or_a_copied_demo_record_does_not_unlock_the_demo_key(home, monkeypatch, tmp_path):
    monkeypatch.delenv(KEY_ENV)
    (home.root / "DEMO").write_text("synthetic\n", encoding="utf-8")  # what once switched a home to demo
    demo = Home.at(tmp_path / "demo").ensure()
    demo.inbox("police").mkdir()
    (demo.inbox("police") / "实有人口_20261116.csv").write_bytes(b"generated")
    mark_demo(demo)
    shutil.copy(demo.demo_record, home.demo_record)
    with pytest.raises(MissingKeyError):
        publish(home)
    assert not home.warehouse.exists()


def residents(home: Home) -> tuple[int, int]:
    """What a reader of the published street should count: residents and grids of ``mart.grid``."""
    grid = lake.read(home, "mart", "grid")
    return grid["residents"].sum(), grid.height


def test_readers_in_other_processes_never_see_a_half_published_warehouse(home, tmp_path):
    # Two versions of the street, published alternately: 14 residents, then 15.
    grown = street_silver()
    grown["police.population"] = pl.concat(
        [
            grown["police.population"],
            silver("police.population", [police(1, ADDRESS[H1]) | {"id_number": citizen_id("20000101", "001")}]),
        ]
    )
    publish(home)
    published = [residents(home)]
    stop = tmp_path / "stop"
    fresh, held = (
        subprocess.Popen(
            [sys.executable, "-c", READER, str(home.warehouse), str(stop), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in ("fresh", "held")
    )
    seen = queue.Queue()
    threading.Thread(target=lambda: [seen.put(tuple(json.loads(line))) for line in fresh.stdout], daemon=True).start()
    try:
        for version in (grown, street_silver(), grown, street_silver()):
            assert seen.get(timeout=30) == published[-1]  # the reader has seen the last publish
            write_silver(home, version)
            build_marts(home, as_of=AS_OF)
            publish(home)
            published.append(residents(home))
        assert seen.get(timeout=30) == published[-1]
    finally:
        stop.touch()
        held_out, held_err = held.communicate(timeout=60)
        fresh.wait(timeout=60)
        fresh_err = fresh.stderr.read()
    assert fresh.returncode == 0, fresh_err
    assert held.returncode == 0, held_err
    assert [p[0] - published[0][0] for p in published] == [0, 1, 0, 1, 0]
    assert seen.empty()  # only whole versions, each seen once, in order
    assert [tuple(json.loads(line)) for line in held_out.splitlines()] == [published[0]]  # its snapshot stays
    publish(home)  # the held version is free now; the one before the current stays a publish longer
    assert len(list((home.warehouse.parent / "versions").iterdir())) == 2
    assert not [p for p in home.warehouse.parent.rglob("*") if p.name.endswith((".new", ".wal"))]


RECONNECTING = textwrap.dedent("""
    import json, sys
    import duckdb
    path = sys.argv[1]
    query = "SELECT sum(residents) FROM mart.grid"
    held = duckdb.connect(path, read_only=True)  # kept open for the life of the process
    for command in sys.stdin:
        with duckdb.connect(path, read_only=True) as con:  # the documented pattern: a new connection
            print(json.dumps([held.execute(query).fetchone()[0], con.execute(query).fetchone()[0]]), flush=True)
""")


def test_a_long_lived_reader_sees_every_new_publish_on_reconnecting(home):
    """DuckDB hands a process the database it already holds for a path; the stable path is a
    link through ``current``, so a new connection opens the new version all the same."""
    publish(home)
    reader = subprocess.Popen(
        [sys.executable, "-c", RECONNECTING, str(home.warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def ask() -> list[int]:
        reader.stdin.write("?\n")
        reader.stdin.flush()
        return json.loads(reader.stdout.readline())

    try:
        street = residents(home)[0]
        assert ask() == [street, street]
        grown = street_silver()
        grown["police.population"] = pl.concat(
            [
                grown["police.population"],
                silver("police.population", [police(1, ADDRESS[H1]) | {"id_number": citizen_id("20000101", "001")}]),
            ]
        )
        write_silver(home, grown)
        build_marts(home, as_of=AS_OF)
        publish(home)
        assert ask() == [street, street + 1]  # the held connection keeps its snapshot, a new one sees the publish
        versions = home.warehouse.parent / "versions"
        assert len(list(versions.iterdir())) == 2
        write_silver(home, street_silver())
        build_marts(home, as_of=AS_OF)
        publish(home)
        assert ask() == [street, street]
        publish(home)
        # kept: the held one, the one before the current (a reader may be opening it) and the current
        assert len(list(versions.iterdir())) == 3
    finally:
        reader.stdin.close()
        assert reader.wait(timeout=60) == 0, reader.stderr.read()
    publish(home)
    assert len(list(versions.iterdir())) == 2


KILLED_PUBLISHER = textwrap.dedent("""
    import sys
    from redwall.home import Home
    from redwall.warehouse import publish
    home = Home.at(sys.argv[1])
    print("started", flush=True)
    while True:
        publish(home)
""")


def in_step(home: Home) -> bool:
    """Whether the shared and the restricted warehouse readers open come from one publish."""
    return home.warehouse.resolve().parent == restricted_path(home).resolve().parent.parent


def test_a_killed_publish_leaves_both_warehouses_in_step_and_its_leftovers_are_cleaned(home, monkeypatch):
    publish(home)
    before = home.warehouse.resolve()
    # killed between the shared and the restricted build: nothing switched
    import redwall.warehouse as warehouse

    built = warehouse._build

    def killed_after_shared(path, tables, mode, *kept_from):
        built(path, tables, mode, *kept_from)
        if path.name == "redwall.duckdb":
            raise KeyboardInterrupt  # no cleanup runs after a kill, nor after this

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(warehouse, "_build", killed_after_shared)
        publish(home)
    assert home.warehouse.resolve() == before and in_step(home)
    assert len(list((home.warehouse.parent / "versions").iterdir())) == 2  # the half-built one

    # and killed for real, at whatever point a few publishes in a row had reached
    publisher = subprocess.Popen(
        [sys.executable, "-c", KILLED_PUBLISHER, str(home.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert publisher.stdout.readline() == "started\n"
    time.sleep(2.5)
    publisher.kill()
    publisher.wait(timeout=30)
    assert in_step(home)
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        assert con.execute("SELECT sum(residents) FROM mart.grid").fetchone() == (residents(home)[0],)
    publish(home)
    assert in_step(home)
    assert len(list((home.warehouse.parent / "versions").iterdir())) == 2  # the current and the one before
    assert not [p for p in home.warehouse.parent.rglob("*") if p.name.endswith((".new", ".wal"))]


def test_a_shared_mart_is_made_again_when_the_names_masked_in_it_change_not_whenever_a_name_is_learned(
    home, monkeypatch
):
    """A day's police snapshot brings thousands of names the lake did not know; a shared mart
    depends on them only through the names masked in its own free text."""
    import redwall.warehouse as warehouse

    learned = list(warehouse.known_names(home))
    publish(home)

    def made(new: list[str]) -> set[str]:
        monkeypatch.setattr(warehouse, "known_names", lambda _: [*learned, *new])
        cost: dict = {}
        publish(home, cost=cost)
        return {table for table, (again, _) in cost.items() if again}

    assert made(["欧阳从未见"]) == set()  # in no mart's text: nothing made again
    remade = made(["欧阳从未见", "府右"])  # stands in the events' address 西城区府右街12号
    assert "redwall.duckdb:mart.event" in remade
    assert not remade & {"redwall.duckdb:mart.grid", "redwall.duckdb:mart.person_link"}  # no free text there
    assert not any(table.startswith("restricted") for table in remade)  # names are masked in the shared file only
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        addresses = {a for (a,) in con.execute('SELECT DISTINCT address FROM mart."event"').fetchall()}
    assert addresses and all("府右" not in a and "[姓名已隐去]" in a for a in addresses if a)


def test_persons_found_in_two_shared_tables_are_measured_together(home, tmp_path):
    """The join's k is measured over the persons whose pseudonym stands in two shared person
    tables: none when the tables key their persons apart, and each such person when a key leaks."""
    publish(home)
    assert k_anonymity(home.warehouse)["join/person_key"]["rows"] == 0
    leaked = tmp_path / "leaked.duckdb"
    shutil.copyfile(home.warehouse, leaked)
    with duckdb.connect(str(leaked)) as con:  # one residence's person under mart.person's pseudonym
        con.execute(
            "UPDATE mart.person_history SET person_key = (SELECT min(person_key) FROM mart.person)"
            " WHERE rowid = (SELECT min(rowid) FROM mart.person_history)"
        )
    joined = k_anonymity(leaked)["join/person_key"]
    assert joined["rows"] == 1 and joined["k"] == 1 and too_rare(joined)
