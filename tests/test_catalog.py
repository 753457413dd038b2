"""The resource catalogue: derived from the contracts, stable codes, change tracking, live facts,
the departments' view, and the Dagster assets that publish it with the templates."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import dagster as dg
import openpyxl
import polars as pl
import pytest

from redwall import lake
from redwall.assets.directory import directory_assets
from redwall.assets.keys import CATALOG, TEMPLATES
from redwall.assets.resources import RedwallHome
from redwall.catalog import (
    DCAT,
    DEPARTMENT_FIELDS,
    ITEM_FIELDS,
    RECEIVES,
    RECORD,
    RESOURCE_FIELDS,
    WORKBOOK,
    build_catalog,
    department_view,
    publish_catalog,
    resource_code,
)
from redwall.home import Home
from redwall.ingest.receipts import RECEIPT_SCHEMA, REJECTION_SCHEMA
from redwall.schemas import HERE, load_contracts


def _record(home: Home) -> dict:
    return json.loads((home.published / "catalog" / RECORD).read_text(encoding="utf-8"))


def _by_key(home: Home) -> dict[str, dict]:
    return {e["table_key"]: e for e in _record(home)["resources"]}


def _edited_contracts(tmp_path: Path, edits: dict[str, tuple[str, str]], extra: dict[str, str] | None = None):
    """A copy of the contracts with text replaced in some files and new files added."""
    root = tmp_path / "schemas"
    if not root.exists():
        shutil.copytree(HERE, root, ignore=shutil.ignore_patterns("__pycache__"))
    for name, (old, new) in edits.items():
        path = root / name
        text = path.read_text(encoding="utf-8")
        assert old in text, (name, old)
        path.write_text(text.replace(old, new), encoding="utf-8")
    for name, text in (extra or {}).items():
        (root / name).write_text(text, encoding="utf-8")
    return load_contracts(root)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Home:
    return Home.at(tmp_path_factory.mktemp("home")).ensure()


@pytest.fixture(scope="module")
def published(home) -> dict:
    return publish_catalog(home)


def test_one_entry_per_contract_table(home, published):
    contracts = load_contracts()
    entries = _record(home)["resources"]
    assert sorted(e["table_key"] for e in entries) == sorted(contracts.tables)
    assert published["resources"] == len(entries) == len({e["code"] for e in entries})
    for e in entries:
        table = contracts.table(e["table_key"])
        assert e["code"][0] == {"基础": "1", "主题": "2", "部门": "3"}[table.catalogue["category"]]
        assert len(e["code"]) == 10 and e["code"].isdigit()
        assert [i["name"] for i in e["items"]] == [c.name for c in table.all_columns]
        assert (e["version"], e["change_note"]) == (1, "首次发布")
    assert lake.read(home, "catalog", "resource").height == len(entries)
    assert lake.read(home, "catalog", "item").height == published["items"] == sum(len(e["items"]) for e in entries)


def test_the_catalogue_lists_the_system_tables(home, published):
    """The tables redwall keeps itself, which the warehouse publishes, are resources too: receipts,
    rejections, rectification issues, loop metrics, the catalogue's own tables, reference data."""
    entries = _by_key(home)
    system = load_contracts().system
    assert {"ops.file_receipt", "ops.rejection", "quality.issue", "quality.loop_metrics", "catalog.item"} <= {
        t.key for t in system
    }
    for t in system:
        entry = entries[t.key]
        assert (entry["kind"], entry["provider"]) == ("系统表", "西长安街街道大数据中心"), t.key
        assert [(i["name"], i["label"]) for i in entry["items"]] == [(c.name, c.label) for c in t.columns]
        assert entry["format"] == (
            "电子表格（CSV，UTF-8编码）" if t.source == "ref" else "数据库（Delta Lake，发布至共享数据仓库）"
        )
    receipts = entries["ops.file_receipt"]
    assert (receipts["sharing"], receipts["update_cycle"]) == ("有条件共享", "实时")
    status = next(i for i in receipts["items"] if i["name"] == "status")
    assert "全部接收" in status["values"] and status["data_type"] == "字符型C"  # its codes, as ref.codes names them
    received = next(i for i in receipts["items"] if i["name"] == "received_at")
    assert received["data_type"] == "日期时间型T"


def test_catalogue_fields_come_from_the_contract(home, published):
    entries = _by_key(home)
    police = entries["police.population"]
    assert (police["provider"], police["provider_code"]) == ("西城公安分局", "11010200000")
    assert police["format"] == "电子表格（CSV，GB18030编码）"
    assert (police["sharing"], police["sharing_condition"], police["open"]) == (
        "有条件共享",
        "仅限街道网格化管理及社区服务使用",
        False,
    )
    id_number = next(i for i in police["items"] if i["name"] == "id_number")
    assert (id_number["label"], id_number["data_type"], id_number["sensitivity"]) == (
        "公民身份号码",
        "字符型C",
        "直接标识符",
    )
    assert entries["ledgers.elderly_alone"]["format"].endswith("中心下发模板第1版）")
    assert entries["mart.person"]["format"] == "数据库（Delta Lake，发布至共享数据仓库）"


def test_related_codes_link_marts_and_their_sources(home, published):
    contracts = load_contracts()
    entries = _by_key(home)
    for mart in contracts.marts:
        assert {entries[k]["code"] for k in mart.related} <= set(entries[mart.key]["related_codes"])
        for source in mart.related:
            assert entries[mart.key]["code"] in entries[source]["related_codes"]


def test_codes_are_stable_across_runs_and_releases(home, published, tmp_path):
    first = {e["table_key"]: e["code"] for e in _record(home)["resources"]}
    assert {e["table_key"]: e["code"] for e in build_catalog(home)} == first
    # Pinned: the scheme is a promise to everyone who stored a code.
    assert resource_code(load_contracts().table("police.population")) == first["police.population"] == "1569286581"
    new_ledger = (
        (HERE / "ledgers" / "fire_hazard.yaml")
        .read_text(encoding="utf-8")
        .replace("table: fire_hazard", "table: gas_check")
        .replace("title: 消防隐患排查台账", "title: 燃气安全检查台账")
    )
    grown = _edited_contracts(tmp_path, {}, {"ledgers/gas_check.yaml": new_ledger})
    codes = {e["table_key"]: e["code"] for e in build_catalog(home, grown)}
    assert {k: codes[k] for k in first} == first
    assert codes["ledgers.gas_check"] not in first.values()


def test_a_changed_contract_bumps_its_entry_and_says_what_changed(tmp_path):
    home = Home.at(tmp_path / "home").ensure()
    publish_catalog(home)
    changed = _edited_contracts(
        tmp_path,
        {
            "feeds/police.yaml": (
                "      - {name: registered_on,",
                "      - {name: religion, label: 宗教信仰, type: string, sensitivity: sensitive}\n"
                "      - {name: registered_on,",
            ),
            "ledgers/storefront_duty.yaml": (
                "sharing: 无条件共享, method",
                "sharing: 有条件共享, condition: 仅限城市管理使用, method",
            ),
        },
    )
    result = publish_catalog(home, changed)
    entries = _by_key(home)
    police, shops = entries["police.population"], entries["ledgers.storefront_duty"]
    assert sorted(result["changed"]) == sorted((police["code"], shops["code"]))
    assert police["version"] == 2 and "新增信息项「宗教信仰」" in police["change_note"]
    assert shops["version"] == 2 and "共享类型：无条件共享→有条件共享" in shops["change_note"]
    assert shops["sharing_condition"] == "仅限城市管理使用"
    assert entries["mart.person"]["version"] == 1
    assert police["published_on"] <= police["version_on"]
    # Publishing the same contracts again changes nothing.
    assert publish_catalog(home, changed)["changed"] == []
    assert _by_key(home)["police.population"]["version"] == 2


def test_dcat_json_ld(home, published):
    doc = json.loads((home.published / "catalog" / DCAT).read_text(encoding="utf-8"))
    assert doc["@type"] == "dcat:Catalog" and "dcat" in doc["@context"]
    datasets = {d["dct:identifier"]: d for d in doc["dcat:dataset"]}
    entries = _by_key(home)
    assert set(datasets) == {e["code"] for e in entries.values()}
    assert all(d["@type"] == "dcat:Dataset" for d in datasets.values())
    police = datasets[entries["police.population"]["code"]]
    assert police["dct:accrualPeriodicity"] == {"@id": "freq:weekly"}
    assert police["dct:publisher"]["foaf:name"] == "西城公安分局"
    (distribution,) = police["dcat:distribution"]
    assert distribution["@type"] == "dcat:Distribution" and distribution["dcat:mediaType"] == "text/csv"


def test_workbook_for_catalogue_clerks(home, published):
    workbook = openpyxl.load_workbook(home.published / "catalog" / WORKBOOK)
    for name, fields, rows in (
        ("信息资源", RESOURCE_FIELDS, published["resources"]),
        ("信息项", ITEM_FIELDS, published["items"]),
    ):
        sheet = workbook[name]
        assert [c.value for c in sheet[1]] == [f.label for f in fields]
        assert sheet.max_row == rows + 1 and sheet.freeze_panes == "B2"
    assert [c.value for c in workbook["部门视图"][1]] == [f.label for f in DEPARTMENT_FIELDS]


def test_live_facts_and_the_departments_view(tmp_path):
    home = Home.at(tmp_path).ensure()
    day = dt.date(2026, 11, 7)
    lake.write(
        home,
        "silver",
        "police_population",
        pl.DataFrame(
            {"id_number": ["A", "B", "C"], "_valid_from": [day] * 3, "_valid_to": [None, None, day]},
            schema_overrides={"_valid_to": pl.Date},
        ),
    )
    lake.write(home, "mart", "care_visit", pl.DataFrame({"person_key": ["k1", "k2"]}))
    received = dt.datetime(2026, 11, 8, 1, 30, tzinfo=dt.UTC)
    later = received + dt.timedelta(days=1)
    receipts = [
        ("r1", "police", None, ["police.population"], 10, 8, received, "partially_accepted"),
        ("r2", "ledgers", "civil_affairs", ["ledgers.elderly_alone"], 5, 3, received, "partially_accepted"),
        ("r3", "ledgers", "civil_affairs", ["ledgers.elderly_alone"], 4, 4, later, "accepted"),
        ("r4", "ledgers", "civil_affairs", [], 0, 0, later + dt.timedelta(days=1), "rejected"),  # unreadable
    ]
    names = ["receipt_id", "source", "department", "tables", "rows_read", "rows_accepted", "received_at", "status"]
    lake.write(
        home,
        "ops",
        "file_receipt",
        pl.DataFrame(
            [dict(zip(names, r, strict=True)) for r in receipts], schema={n: RECEIPT_SCHEMA[n] for n in names}
        ),
    )
    # Two problems on row 4 and one on row 6 of r2: two rows refused; a warning refuses nothing.
    problems = [("r2", 4, "error"), ("r2", 4, "error"), ("r2", 6, "error"), ("r2", 7, "warning")]
    lake.write(
        home,
        "ops",
        "rejection",
        pl.DataFrame(
            [
                {"receipt_id": r, "table": "ledgers.elderly_alone", "sheet": "台账", "row_number": n, "severity": s}
                for r, n, s in problems
            ],
            schema={n: REJECTION_SCHEMA[n] for n in ("receipt_id", "table", "sheet", "row_number", "severity")},
        ),
    )

    issues = [
        ("civil_affairs", "ledgers.elderly_alone", "open"),
        ("civil_affairs", "ledgers.elderly_alone", "open"),
        ("civil_affairs", "ledgers.elderly_alone", "closed"),
        (None, "police.population", "open"),
    ]
    lake.write(home, "quality", "issue", pl.DataFrame(issues, schema=["department", "table", "status"], orient="row"))

    publish_catalog(home)
    entries = {r["table_key"]: r for r in lake.read(home, "catalog", "resource").to_dicts()}
    police = entries["police.population"]
    assert (police["rows"], police["quality_pass_rate"]) == (2, 0.8)
    assert police["last_updated_at"] is not None
    assert entries["mart.care_visit"]["rows"] == 2 and entries["mart.care_visit"]["quality_pass_rate"] is None
    assert entries["ledgers.elderly_alone"]["quality_pass_rate"] == round(7 / 9, 4)
    assert entries["district.grid"]["rows"] is None  # never delivered: no fact, no guess

    view = lake.read(home, "catalog", "department").filter(pl.col("department_code") == "civil_affairs")
    alone = view.filter(pl.col("table_key") == "ledgers.elderly_alone").row(0, named=True)
    assert (alone["files_received"], alone["last_status"], alone["rows_rejected"]) == (2, "全部接收", 2)
    assert alone["last_received_at"] == later
    assert (alone["delivery"], alone["open_issues"]) == ("按期", 2)  # the closed and the police issue not
    aid = view.filter(pl.col("table_key") == "ledgers.hardship_aid").row(0, named=True)
    assert (aid["files_received"], aid["delivery"], aid["open_issues"]) == (0, "从未报送", 0)
    # a monthly ledger last delivered on 9 November is overdue by Christmas
    entries = build_catalog(home)
    late = department_view(home, entries, now=dt.datetime(2026, 12, 25, tzinfo=dt.UTC))
    assert next(r for r in late if r["table_key"] == "ledgers.elderly_alone")["delivery"] == "逾期未报"
    contracts = load_contracts()
    fed = {m.key for m in contracts.marts if set(m.related) & {"ledgers.elderly_alone", "ledgers.hardship_aid"}}
    assert fed <= set(view.filter(pl.col("relation") == RECEIVES)["table_key"])


def test_directory_assets_publish_catalogue_and_templates(tmp_path):
    definitions = directory_assets()
    result = dg.materialize(definitions, resources={"redwall": RedwallHome(root=str(tmp_path))})
    assert result.success
    catalog = result.asset_materializations_for_node(CATALOG.to_python_identifier())[0].metadata
    assert catalog["resources"].value == len(load_contracts().tables)
    templates = result.asset_materializations_for_node(TEMPLATES.to_python_identifier())[0].metadata
    assert {k.removeprefix("version/") for k in templates if k.startswith("version/")} == {
        t.key for t in load_contracts().ledgers
    }
    by_key = {a.key: a for a in definitions}
    assert set(by_key[TEMPLATES].dependency_keys) == {dg.AssetKey(["lake", "silver", "district_grid"])}
    # The catalogue follows every table it describes (their live facts).
    assert dg.AssetKey(["lake", "silver", "police_population"]) in by_key[CATALOG].dependency_keys
    assert dg.AssetKey(["lake", "mart", "person"]) in by_key[CATALOG].dependency_keys
    assert {a.group_names_by_key[k] for k, a in by_key.items()} == {"directory"}
