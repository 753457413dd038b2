"""The synthetic feed generator: every feed parses, matches its contract, carries its planted flaws
exactly where defects.parquet says, and the ground truth is consistent with the world."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from redwall import identifiers as ids
from redwall.generator import SCALES, generate
from redwall.home import Home
from redwall.package import SOURCE as PACKAGE_SOURCE
from redwall.schemas import load_contracts, reference

SCALE = "small"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Home:
    home = Home.at(tmp_path_factory.mktemp("gen"))
    generate(home, scale=SCALE, seed=7)
    return home


@pytest.fixture(scope="module")
def truth(home) -> dict[str, pl.DataFrame]:
    return {p.stem: pl.read_parquet(p) for p in home.truth.glob("*.parquet")}


def _police(path: Path) -> pl.DataFrame:
    return pl.read_csv(io.StringIO(path.read_bytes().decode("gb18030")), infer_schema=False)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _defects(truth, **where) -> pl.DataFrame:
    d = truth["defects"]
    for k, v in where.items():
        d = d.filter(pl.col(k) == v)
    return d


def _workbook(path: Path) -> openpyxl.Workbook:
    """Open by content: clerks' workbooks may carry an .xls name."""
    return openpyxl.load_workbook(io.BytesIO(path.read_bytes()))


def _column_index(ws, header_row: int, header: str) -> int:
    return [c.value for c in ws[header_row]].index(header) + 1


# -- files exist, parse and match the contracts ---------------------------------------------------
def test_every_source_delivers_files(home):
    # every source of a street centre: street packages are what a street sends its district
    for source in set(load_contracts().sources) - {PACKAGE_SOURCE}:
        assert any(home.inbox(source).rglob("*.*")), source
    assert (home.truth / "persons.parquet").exists()
    assert not list(home.root.joinpath("inbox").rglob("persons.parquet")), "truth must stay out of the inbox"


def test_police_snapshots_are_gb18030_with_contract_header(home):
    files = sorted(home.inbox("police").glob("实有人口_*.csv"))
    assert len(files) >= 2
    labels = [c.label for c in load_contracts().table("police.population").columns]
    for f in files:
        with pytest.raises(UnicodeDecodeError):
            f.read_bytes().decode("utf-8")
        frame = _police(f)
        assert frame.columns == labels
        assert set(frame["性别"].unique()) <= {"男", "女"}
        assert set(frame["人员类型"].unique()) <= {"户籍人口", "流动人口", "境外人员"}
        assert "汉族" in set(frame["民族"].drop_nulls())


def test_police_snapshots_show_departures_and_deaths(home, truth):
    old, new = (_police(f) for f in sorted(home.inbox("police").glob("实有人口_*.csv"))[-2:])
    persons = truth["persons"]
    gone = set(old["公民身份号码"]) - set(new["公民身份号码"])
    assert gone, "a newer snapshot drops people who left"
    left = persons.filter(pl.col("id_number").is_in(list(gone)))
    assert set(left["status"]) == {"moved_out"}
    dead = new.filter(pl.col("注销原因") == "死亡")
    assert dead.height and set(persons.filter(pl.col("id_number").is_in(dead["公民身份号码"].to_list()))["status"]) == {
        "deceased"
    }
    assert new.filter(pl.col("注销日期").is_null())["注销原因"].null_count() == new["注销日期"].null_count()
    # Foreigners appear with a passport or permit number in place of a citizen ID.
    assert new.filter(pl.col("人员类型") == "境外人员")["公民身份号码"].str.contains(r"^[A-Z]").any()


def test_mz_death_knows_deaths_the_police_have_not_deregistered_yet(home, truth):
    deaths = pl.concat([pl.read_parquet(f) for f in home.inbox("municipal").glob("mz_death_*.parquet")])
    latest = _police(sorted(home.inbox("police").glob("实有人口_*.csv"))[-1])
    active = set(latest.filter(pl.col("注销日期").is_null())["公民身份号码"])
    persons = truth["persons"].filter(pl.col("id_number").is_in(deaths["SFZH"].str.to_uppercase().to_list()))
    assert set(persons["status"]) == {"deceased"}
    assert set(deaths["SFZH"].str.to_uppercase()) & active, "some deaths reach mz_death before the police"


def test_floating_workbooks_have_title_header_and_data_from_row_3(home):
    labels = [c.label for c in load_contracts().table("floating.registration").columns]
    files = sorted(home.inbox("floating").glob("流动人口登记_*.xlsx"))
    assert len(files) == 14
    rows = 0
    for f in files:
        ws = openpyxl.load_workbook(f).active
        assert ws["A1"].value == "西长安街街道流动人口登记表"
        assert any(str(r).startswith("A1:") for r in ws.merged_cells.ranges)
        assert [c.value for c in ws[2]] == labels
        rows += ws.max_row - 2
    first = pl.read_excel(files[0], engine="calamine", read_options={"header_row": 1})
    assert first.height > 100, "the first day carries the backlog"


def test_grid_app_lines_carry_envelope_and_contract_payload(home):
    contracts = load_contracts()
    seen_types = set()
    for f in sorted(home.inbox("grid_app").glob("grid_app_*.jsonl")):
        for record in _jsonl(f):
            assert set(record) == {"record_id", "type", "recorded_at", "worker_id", "grid_code", "payload"}
            assert record["recorded_at"].endswith("+08:00")
            dt.datetime.fromisoformat(record["recorded_at"])
            assert len(record["grid_code"]) == 15 and record["grid_code"].isdigit()
            table = contracts.table(f"grid_app.{record['type']}")
            assert set(record["payload"]) == {c.name for c in table.columns}
            seen_types.add(record["type"])
    assert seen_types == {"event", "event_status", "visit", "inspection"}


def test_municipal_snapshots_use_field_codes_with_a_dictionary(home):
    contracts = load_contracts()
    for name in ("mz_dibao", "cl_disability", "mz_death", "rs_elderly_allowance"):
        fields = [c.field for c in contracts.table(f"municipal.{name}").columns]
        [data] = [p for p in home.inbox("municipal").glob(f"{name}_*.*") if not p.name.endswith(".dict.json")]
        frame = pl.read_parquet(data) if data.suffix == ".parquet" else pl.read_csv(data, infer_schema=False)
        assert frame.columns == fields and frame.height > 0, name
        dictionary = json.loads(data.with_name(data.name.split(".")[0] + ".dict.json").read_text(encoding="utf-8"))
        assert list(dictionary) == fields
        assert all({"name", "type"} <= set(v) for v in dictionary.values())
    cl = pl.read_csv(next(home.inbox("municipal").glob("cl_disability_*.csv")), infer_schema=False)
    assert set(cl["CJLB"]) <= set("1234567")


def test_district_snapshots_follow_the_contract_and_the_code_rules(home):
    contracts = load_contracts()
    for table in ("grid", "building", "house", "organization", "component"):
        files = sorted(home.inbox("district").glob(f"{table}_*.parquet"))
        assert files, table
        for f in files:
            assert pl.read_parquet(f).columns == [c.name for c in contracts.table(f"district.{table}").columns]
    grids = pl.read_parquet(next(home.inbox("district").glob("grid_*.parquet")))
    assert grids.height == 12 and grids["grid_code"].str.contains(r"^110102001\d{6}$").all()
    assert (grids["grid_code"].str.slice(0, 12) == grids["community_code"]).all()
    orgs = pl.read_parquet(next(home.inbox("district").glob("organization_*.parquet")))
    assert all(ids.is_valid_uscc(u) for u in orgs["uscc"])
    assert orgs["address"].n_unique() > orgs.height * 0.5
    assert orgs["address"].str.contains("十|室|北京市").any(), "addresses come in several spellings"
    components = pl.read_parquet(next(home.inbox("district").glob("component_*.parquet")))
    classes = set(zip(reference("component_class")["major"], reference("component_class")["minor"], strict=True))
    assert components["object_id"].str.contains(r"^110102\d{10}$").all()
    assert set(zip(components["major_code"], components["minor_code"], strict=True)) <= classes
    assert (components["object_id"].str.slice(6, 4) == components["major_code"] + components["minor_code"]).all()
    houses = pl.read_parquet(next(home.inbox("district").glob("house_*.parquet")))
    assert set(houses["use"]) <= {"自住", "出租", "空置", "商用", "办公"}


def test_ledger_headers_are_labels_aliases_or_recorded_extra_columns(home, truth):
    contracts = load_contracts()
    files = truth["files"].filter(pl.col("source") == "ledgers")
    # every department but the centre, whose holiday schedule comes once a year from the State Council
    departments = {t.department["code"] for t in contracts.ledgers if t.name in set(files["table"])}
    assert {p.name for p in home.inbox("ledgers").iterdir()} == departments
    assert set(files["table"]) == {"elderly_alone", "hardship_aid", "storefront_duty", "fire_hazard"}
    for file, table in files.select("file", "table").iter_rows():
        path = home.inbox("ledgers") / file
        if path.suffix == ".csv":
            lines = path.read_bytes().decode("gbk").splitlines()
            header = lines[1].split(",")
        else:
            header = [c.value for c in _workbook(path).worksheets[0][2]]
        allowed = {h for c in contracts.table(f"ledgers.{table}").columns for h in c.headers}
        extras = set(_defects(truth, source="ledgers", file=file, kind="extra_column")["column"])
        assert set(header) <= allowed | extras, file
        assert len(set(header) - extras) == len(contracts.table(f"ledgers.{table}").columns)


# -- determinism ---------------------------------------------------------------------------------
def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_other_data(home, tmp_path):
    again = Home.at(tmp_path / "again")
    generate(again, scale=SCALE, seed=7)
    assert _digest(again.root / "inbox") == _digest(home.root / "inbox")
    assert _digest(again.truth) == _digest(home.truth)
    other = Home.at(tmp_path / "other")
    generate(other, scale=SCALE, seed=8)
    assert _digest(other.root / "inbox") != _digest(home.root / "inbox")


def test_scales_are_declared():
    assert {"small", "street", "district"} <= set(SCALES)
    assert SCALES["street"].persons == 50_000 and SCALES["street"].home_grids == 71
    assert SCALES["district"].streets == 15


# -- the planted flaws are where the truth says ------------------------------------------------------
def _floating_cell(home, file: str, row: int, header: str):
    ws = openpyxl.load_workbook(home.inbox("floating") / file).active
    return ws.cell(row=row, column=_column_index(ws, 2, header))


def test_floating_flaws_are_in_the_cells(home, truth):
    d = _defects(truth, source="floating")
    kinds = set(d["kind"])
    assert {"excel_rounded_id", "lowercase_x", "text_date", "excel_date", "note_row", "name_variant"} <= kinds
    for kind, check in {
        "excel_rounded_id": lambda c, v: c.data_type == "n" and c.value == float(v) == float(f"{c.value:.15g}"),
        "fullwidth_digits": lambda c, v: isinstance(c.value, str) and any("０" <= ch <= "９" for ch in c.value),
        "lowercase_x": lambda c, v: c.value.endswith("x"),
        "padded_spaces": lambda c, v: c.value != c.value.strip(),
        "text_date": lambda c, v: isinstance(c.value, str) and c.value[4:5] != "-",
        "excel_date": lambda c, v: isinstance(c.value, dt.datetime),
        "serial_date": lambda c, v: c.data_type == "n" and not c.is_date and 1 < c.value < 60000,
    }.items():
        for file, row, column, value in (
            d.filter(pl.col("kind") == kind).head(5).select("file", "row", "column", "value").iter_rows()
        ):
            cell = _floating_cell(home, file, row, column)
            assert check(cell, value), (kind, file, row, column, cell.value)
    for file, row in d.filter(pl.col("kind") == "note_row").select("file", "row").iter_rows():
        ws = openpyxl.load_workbook(home.inbox("floating") / file).active
        assert ws.cell(row=row, column=1).value.startswith("制表人：") and row == ws.max_row


def test_floating_reregistration_repeats_a_person_with_a_new_address(home, truth):
    again = _defects(truth, source="floating", kind="reregistered_new_address")
    assert again.height > 0
    records = truth["records"].filter((pl.col("source") == "floating") & (pl.col("role") == "subject"))
    for person in again["person_id"].head(3):
        mine = records.filter(pl.col("person_id") == person)
        assert mine.height >= 2
        addresses = {_floating_cell(home, f, r, "现住地址").value for f, r in mine.select("file", "row").iter_rows()}
        assert len(addresses) >= 2


def test_grid_app_sequence_flaws_are_where_the_truth_says(home, truth):
    files = sorted(home.inbox("grid_app").glob("grid_app_*.jsonl"))
    lines = {(f.name, i + 1): r for f in files for i, r in enumerate(_jsonl(f))}
    order = {key: n for n, key in enumerate(sorted(lines, key=lambda k: (k[0], k[1])))}
    d = _defects(truth, source="grid_app")
    assert {
        "duplicate_upload",
        "status_before_event",
        "status_out_of_order",
        "duplicate_status",
        "missing_id",
        "name_variant",
    } <= set(d["kind"])
    for file, row in d.filter(pl.col("kind") == "duplicate_upload").select("file", "row").iter_rows():
        rid = lines[(file, row)]["record_id"]
        earlier = [k for k, r in lines.items() if r["record_id"] == rid and order[k] < order[(file, row)]]
        assert earlier and lines[earlier[0]] == lines[(file, row)]
    event_at = {}
    for k, r in lines.items():
        if r["type"] == "event":
            event_at.setdefault(r["payload"]["event_id"], order[k])
    for file, row in d.filter(pl.col("kind") == "status_before_event").select("file", "row").iter_rows():
        status = lines[(file, row)]
        assert status["type"] == "event_status"
        assert event_at.get(status["payload"]["event_id"], 10**9) > order[(file, row)]
    for file, row in d.filter(pl.col("kind") == "duplicate_status").select("file", "row").iter_rows():
        status = lines[(file, row)]["payload"]
        same = [
            r
            for r in lines.values()
            if r["type"] == "event_status"
            and r["payload"]["event_id"] == status["event_id"]
            and r["payload"]["status"] == status["status"]
        ]
        assert len({r["record_id"] for r in same}) >= 2
    for file, row, column in d.filter(pl.col("kind") == "missing_id").select("file", "row", "column").iter_rows():
        item = int(column.split("[")[1].split("]")[0])
        assert lines[(file, row)]["payload"]["persons"][item]["id_number"] is None


def test_name_variants_differ_from_the_true_name(truth):
    persons = truth["persons"].select("person_id", "name")
    variants = _defects(truth, kind="name_variant").join(persons, on="person_id")
    assert variants.height > 10
    assert (variants["value"] != variants["name"]).all()
    assert {"homophone", "traditional", "inner_space"} <= set(variants["detail"])


def test_ledger_habits_are_in_the_workbooks(home, truth):
    d = _defects(truth, source="ledgers")
    assert {
        "extra_column",
        "renamed_sheet",
        "header_alias",
        "csv_export",
        "merged_cells",
        "formula_cell",
        "half_filled_row",
        "excel_rounded_id",
        "note_row",
    } <= set(d["kind"])
    contracts = load_contracts()
    for file, table, value in d.filter(pl.col("kind") == "renamed_sheet").select("file", "table", "value").iter_rows():
        names = _workbook(home.inbox("ledgers") / file).sheetnames
        assert names == [value] != [contracts.table(f"ledgers.{table}").template["sheet"]]
    for file, row, column in d.filter(pl.col("kind") == "merged_cells").select("file", "row", "column").iter_rows():
        ws = _workbook(home.inbox("ledgers") / file).active
        col = _column_index(ws, 2, column)
        assert any(r.min_row == row and r.min_col == col and r.max_row > row for r in ws.merged_cells.ranges)
    for file, row, column in d.filter(pl.col("kind") == "formula_cell").select("file", "row", "column").iter_rows():
        ws = _workbook(home.inbox("ledgers") / file).active
        assert ws.cell(row=row, column=_column_index(ws, 2, column)).data_type == "f"
    for file in d.filter(pl.col("kind") == "csv_export")["file"]:
        text = (home.inbox("ledgers") / file).read_bytes().decode("gbk")
        assert text.splitlines()[0].split(",")[0].endswith(("台账", "记录"))
    rounded = d.filter((pl.col("kind") == "excel_rounded_id") & pl.col("file").str.ends_with(".xlsx")).head(5)
    for file, row, column in rounded.select("file", "row", "column").iter_rows():
        ws = _workbook(home.inbox("ledgers") / file).active
        assert ws.cell(row=row, column=_column_index(ws, 2, column)).data_type == "n"


# -- ground truth ---------------------------------------------------------------------------------
def test_persons_carry_valid_ids_agreeing_with_birth_date_and_sex(truth):
    p = truth["persons"]
    assert 1_800 <= p.height <= 2_000
    citizens = p.filter(pl.col("doc_type") == "居民身份证")
    for id_number, birth, sex in citizens.select("id_number", "birth_date", "sex").iter_rows():
        assert ids.is_valid_citizen_id(id_number)
        assert ids.id_birth_date(id_number) == birth and ids.id_sex_code(id_number) == sex
    assert p["id_number"].n_unique() == p.height
    assert {"active", "moved_out", "deceased"} == set(p["status"])
    share = (p["person_type"] == "流动人口").mean()
    assert 0.2 < share < 0.4
    assert set(p.filter(pl.col("person_type") == "户籍人口")["id_number"].str.slice(0, 6)) >= {"110102", "110104"}
    assert (p.filter(pl.col("status") != "active")["status_on"].is_not_null()).all()


def test_elderly_alone_ledgers_list_old_people_living_alone(truth):
    listed = truth["records"].filter((pl.col("table") == "elderly_alone") & (pl.col("role") == "subject"))
    persons = truth["persons"].filter(pl.col("person_id").is_in(listed["person_id"].to_list()))
    assert persons.height > 10
    assert (persons["age"] >= 60).all()
    assert (persons["living_situation"] == "独居").mean() > 0.8
    alone = truth["persons"].filter(pl.col("living_situation") == "独居")
    assert set(alone["household_id"]).isdisjoint(
        truth["persons"].filter(pl.col("living_situation") == "空巢")["household_id"]
    )


def test_records_point_at_rows_holding_the_person(home, truth):
    records = truth["records"].filter(pl.col("source") == "police")
    snapshot = sorted(records["file"].unique())[-1]
    frame = _police(home.inbox("police") / snapshot).with_row_index("row", offset=2)  # under the header line
    mine = records.filter(pl.col("file") == snapshot).join(
        truth["persons"].select("person_id", "id_number"), on="person_id"
    )
    joined = mine.join(frame.select(pl.col("row").cast(pl.Int64), pl.col("公民身份号码").alias("delivered")), on="row")
    flawed = set(_defects(truth, source="police", file=snapshot, column="公民身份号码")["row"])
    clean = joined.filter(~pl.col("row").is_in(list(flawed)))
    assert clean.height == mine.height - len(flawed)
    assert (clean["delivered"] == clean["id_number"]).all()
    legacy = _defects(truth, source="police", kind="legacy_id")
    assert (legacy["value"].str.len_chars() == 15).all()


def test_events_run_the_seven_step_loop_mostly_on_time(home, truth):
    events = truth["events"]
    decided = events.filter(pl.col("on_time").is_not_null())
    assert 0.7 < decided["on_time"].mean() < 0.98
    assert events["rejected"].any() and (events["last_status"] == "结案").mean() > 0.5
    assert set(events["class_kind"]) == {"event", "component"}
    assert events.filter(pl.col("class_kind") == "component")["object_id"].is_not_null().all()
    steps = [
        r["payload"]
        for f in sorted(home.inbox("grid_app").glob("*.jsonl"))
        for r in _jsonl(f)
        if r["type"] == "event_status"
    ]
    closed = events.filter(pl.col("last_status") == "结案")["event_id"][0]
    mine = {s["status"] for s in steps if s["event_id"] == closed}
    assert {"上报", "立案", "派遣", "处置", "反馈", "核查", "结案"} <= mine
    assert (
        events.filter(pl.col("closed_at").is_not_null())
        .select((pl.col("closed_at") > pl.col("dispatched_at")).all())
        .item()
    )


def test_addresses_map_spellings_to_places(truth):
    addresses = truth["addresses"]
    assert addresses["variant"].n_unique() >= 8
    assert addresses.filter(pl.col("level") == "house")["house_code"].is_not_null().all()
    assert addresses["building_code"].is_not_null().all()


def test_short_periods_still_have_two_police_snapshots(tmp_path):
    home = Home.at(tmp_path)
    generate(home, scale=SCALE, seed=3, days=2)
    assert len(list(home.inbox("police").glob("实有人口_*.csv"))) == 2
    with pytest.raises(ValueError):
        generate(home, scale=SCALE, days=1)


def test_a_period_too_short_for_some_ledger_rows_still_writes_every_ledger(tmp_path):
    """Seed 7 over 3 days draws no fire hazard in any grid: the ledger is then a template with no
    rows, not a crash (it was a type mismatch on the empty grid column)."""
    home = Home.at(tmp_path)
    generate(home, scale=SCALE, seed=7, days=3)
    assert [p.name for p in home.inbox("ledgers").glob("safety/*")] == ["西长安街街道消防隐患排查台账（11月）.xls"]
    with pytest.raises(ValueError):
        generate(home, scale="city")
