"""A destructive delivery is held, not applied: an empty police snapshot, one with half the persons
and a ledger whose IDs a spreadsheet wrecked, each followed by a good delivery; held deliveries
released and discarded through the Dagster job and through the CLI, with who and why recorded.

Real Delta tables and real files throughout; assertions compare counts and flags, never print
personal values."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import json
import shutil

import dagster as dg
import polars as pl
import pytest
from test_ingest import (  # the ingestion tests' file makers
    balanced,
    cid,
    csv_bytes,
    drop,
    elderly_ledger,
    police_row,
    police_snapshot,
    silver,
    valid_on,
)

from redwall import lake
from redwall.assets import keys
from redwall.assets.holds import NO_DELIVERY_HELD, held_check
from redwall.cli import main
from redwall.generator import generate
from redwall.home import Home
from redwall.ingest import holds, process_source
from redwall.marts import build_marts
from redwall.pipelines.definitions import defs
from redwall.schemas import Contracts, load_contracts

D1, D2, D3 = dt.date(2024, 5, 1), dt.date(2024, 5, 8), dt.date(2024, 5, 15)
PERSONS = [cid("19700101", f"{i:03d}") for i in range(1, 41)]
POLICE = load_contracts().table("police.population")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Home:
    """A data home the Dagster definitions and the CLI work on (environment restored afterwards)."""
    home = Home.at(tmp_path / "home").ensure()
    monkeypatch.setenv("REDWALL_HOME", str(home.root))
    monkeypatch.setenv("DAGSTER_HOME", str(home.dagster_home))
    return home


def register(persons: list[str]) -> bytes:
    return police_snapshot([police_row(p, "张三", "西城区府右街12号院3号楼2单元501") for p in persons])


def current(home: Home, name: str = "police_population") -> pl.DataFrame:
    return silver(home, name, current=True)


def decide_in_dagster(receipt_id: str, decision: str, by: str, reason: str) -> dg.ExecuteInProcessResult:
    """The analyst's one action in the UI: the release_delivery job with its config."""
    config = {"receipt_id": receipt_id, "decision": decision, "by": by, "reason": reason}
    return defs.resolve_job_def("release_delivery").execute_in_process(
        run_config={"ops": {"decide_held_delivery": {"config": config}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def cli(home: Home, *args: str) -> tuple[int, str]:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        code = main(["--home", str(home.root), *args])
    return code, printed.getvalue()


def receipt_json(home: Home, receipt) -> dict:
    kept = home.root / receipt.stored_as
    return json.loads((kept.parent / f"{kept.name}.receipt.json").read_text(encoding="utf-8"))


def test_the_limits_are_the_contracts():
    tables = load_contracts().tables
    assert (POLICE.hold.closing, POLICE.hold.refused, POLICE.hold.at_least) == (0.2, 0.5, 10)
    assert tables["ledgers.elderly_alone"].hold == tables["municipal.mz_dibao"].hold  # the defaults, written out
    assert tables["floating.registration"].hold is None and tables["ledgers.hardship_aid"].hold is None  # no snapshot


# -- police -----------------------------------------------------------------------------------------
def test_an_empty_police_snapshot_is_refused_and_never_counts(home):
    drop(home, "police", "实有人口_20240501.csv", register(PERSONS))
    drop(home, "police", "实有人口_20240508.csv", register([]))  # the header only
    _, empty = process_source(home, "police")
    balanced(home, empty)
    assert (empty.status, empty.refusal, empty.rows_read) == ("rejected", "no_data", 0)
    assert holds.pending(home).is_empty()
    assert lake.read(home, "ops", "file_registry")["as_of"].to_list() == [D1]  # no snapshot of 8 May
    assert current(home).height == 40

    drop(home, "police", "实有人口_20240515.csv", register(PERSONS[:-1]))  # a good week: one person left
    (good,) = process_source(home, "police")
    assert good.status == "accepted" and "已置为失效1条" in good.reasons_zh
    assert current(home).height == 39
    check = held_check(home, POLICE)
    assert check.passed and check.metadata["held"].value == 0


def test_half_a_police_snapshot_is_held_later_ones_flow_and_a_late_release_overrides_nothing(home):
    drop(home, "police", "实有人口_20240501.csv", register(PERSONS))
    process_source(home, "police")
    before = silver(home, "police_population")

    drop(home, "police", "实有人口_20240508.csv", register(PERSONS[:20]))  # an export cut off half-way
    (held,) = process_source(home, "police")
    balanced(home, held)  # read = accepted (passed the checks, waiting in bronze) + rejected
    assert (held.status, held.refusal, held.rows_read, held.rows_accepted) == ("held", "closes_too_many", 20, 20)
    assert silver(home, "police_population").equals(before)  # silver untouched, not even reversibly
    sent = receipt_json(home, held)
    assert sent["status_zh"] == "待确认（暂未应用）"
    assert "现有40条记录中的20条（50.0%）置为失效，超过本表20%的上限" in sent["reasons_zh"]
    entry = holds.pending(home).row(0, named=True)
    assert (
        entry["receipt_id"],
        entry["records_current"],
        entry["records_closing"],
        entry["closing_share"],
        entry["closing_limit"],
    ) == (held.receipt_id, 40, 20, 0.5, 0.2)
    check = held_check(home, POLICE)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["records_closing"].value == 20 and held.receipt_id in check.metadata["held_deliveries"].value

    # The same file sent again waits with the first; nothing is held twice.
    shutil.copy(home.root / held.stored_as, home.inbox("police") / "实有人口_20240508(重发).csv")
    (again,) = process_source(home, "police")
    assert again.status == "duplicate" and "正等待大数据中心确认" in again.reasons_zh
    assert holds.pending(home).height == 1

    # Next week's snapshot flows as usual, against the state the held file left alone.
    drop(home, "police", "实有人口_20240515.csv", register(PERSONS[1:]))
    (good,) = process_source(home, "police")
    balanced(home, good)
    assert good.status == "accepted" and "已置为失效1条" in good.reasons_zh
    after_good = silver(home, "police_population")
    assert valid_on(after_good, D2).height == 40  # nobody was absent in the week of the held file

    # Released now, the 8 May snapshot is older than the applied 15 May one: it overrides nothing.
    result = decide_in_dagster(held.receipt_id, "release", "王分析", "公安确认该期导出完整")
    assert result.success
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == NO_DELIVERY_HELD)
    assert evaluation.passed and evaluation.asset_key == dg.AssetKey(["lake", "silver", "police_population"])
    # silver did not change; the receipt did, for the warehouse to publish
    assert {e.asset_key for e in result.get_asset_materialization_events()} == {keys.receipts("police")}
    assert silver(home, "police_population").equals(after_good)
    released = receipt_json(home, held)
    assert released["status"] == "accepted" and "早于已加载的2024-05-15快照" in released["reasons_zh"]
    assert "经大数据中心（王分析）确认应用本文件，理由：公安确认该期导出完整" in released["reasons_zh"]
    entry = holds.listing(home).row(0, named=True)
    assert (entry["status"], entry["decided_by"], entry["decision_reason"]) == (
        "released",
        "王分析",
        "公安确认该期导出完整",
    )
    assert not decide_in_dagster(held.receipt_id, "discard", "李分析", "再次操作").success  # decided once


def test_a_released_snapshot_is_applied_as_an_ordinary_load_would_have(home, tmp_path):
    drop(home, "police", "实有人口_20240501.csv", register(PERSONS))
    process_source(home, "police")
    drop(home, "police", "实有人口_20240508.csv", register(PERSONS[:20]))  # half the street really moved out
    (held,) = process_source(home, "police")
    code, listed = cli(home, "held")
    assert code == 0 and held.receipt_id in listed
    assert "would close 20 of 40 current records (50.0%, limit 20%)" in listed

    code, told = cli(home, "release", held.receipt_id, "--by", "王分析", "--why", "拆迁腾退，人员确已迁出")
    assert code == 0 and "released by 王分析" in told
    assert cli(home, "held")[1].startswith("no delivery is held")
    assert "released by 王分析" in cli(home, "held", "--all")[1]
    released = receipt_json(home, held)
    assert released["status"] == "accepted" and "不在本次名单中、已置为失效20条" in released["reasons_zh"]

    # The same files loaded in a home whose contract holds nothing: the same silver.
    unheld = Home.at(tmp_path / "unheld").ensure()
    contracts = load_contracts()
    lenient = Contracts(
        contracts.tables | {POLICE.key: dataclasses.replace(POLICE, hold=dataclasses.replace(POLICE.hold, closing=1.0))}
    )
    for name in ("实有人口_20240501.csv", "实有人口_20240508.csv"):
        drop(unheld, "police", name, (home.archive("police") / name).read_bytes())
        process_source(unheld, "police", lenient)

    def versions(h: Home) -> pl.DataFrame:
        kept = silver(h, "police_population").drop("_load_id", "_loaded_at", "_source_file")
        return kept.sort("id_number", "_valid_from")

    assert versions(home).equals(versions(unheld))
    assert current(home).height == 20

    # Sent again, the released content is a duplicate of a loaded file.
    shutil.copy(home.archive("police") / "实有人口_20240508.csv", home.inbox("police") / "重发.csv")
    (again,) = process_source(home, "police")
    assert again.status == "duplicate" and "已加载的" in again.reasons_zh


# -- a whole-list ledger --------------------------------------------------------------------------
ELDERS = [cid("19400101", f"{i:03d}") for i in range(1, 31)]
ELDERLY_CSV_HEADER = [
    "姓名",
    "身份证号码",
    "所属社区",
    "居住地址",
    "联系电话",
    "居住情况",
    "紧急联系人",
    "紧急联系人电话",
    "最近走访日期",
    "走访干部",
]


def community_list(ids: list[str], community: str = "府右街南社区") -> bytes:
    return elderly_ledger(
        [
            [
                "张秀英",
                pid,
                community,
                "西城区府右街12号院3号楼2单元501",
                None,
                "独居",
                None,
                None,
                "2024-05-03",
                "李红",
                None,
            ]
            for pid in ids
        ]
    )


def wrecked(ids: list[str]) -> bytes:
    """The list saved from a spreadsheet that took the IDs for numbers (the CSV keeps its rounding)."""
    rows = [["府右街南社区独居老人台账（2024年6月）"] + [""] * 9, ELDERLY_CSV_HEADER]
    rows += [
        [
            "张秀英",
            pid if i < 3 else f"{int(pid[:15]) / 10**14:.14f}".rstrip("0") + "E+017",
            "府右街南社区",
            "西城区府右街12号院3号楼2单元501",
            "",
            "独居",
            "",
            "",
            "2024/6/3",
            "李红",
        ]
        for i, pid in enumerate(ids)
    ]
    return csv_bytes(rows, "gbk")


def test_a_ledger_whose_ids_a_spreadsheet_wrecked_is_held_then_discarded(home):
    drop(home, "ledgers", "府右街南_5月.xlsx", community_list(ELDERS), department="civil_affairs")
    process_source(home, "ledgers")
    before = silver(home, "ledgers_elderly_alone")

    drop(home, "ledgers", "府右街南_6月.csv", wrecked(ELDERS), department="civil_affairs")
    others = [cid("19410101", f"{i:03d}") for i in range(1, 13)]
    drop(home, "ledgers", "西交民巷_6月.xlsx", community_list(others, "西交民巷社区"), department="civil_affairs")
    taken = {r.file_name: r for r in process_source(home, "ledgers")}
    held, other = taken["府右街南_6月.csv"], taken["西交民巷_6月.xlsx"]
    for receipt in (held, other):
        balanced(home, receipt)
    assert (held.status, held.rows_read, held.rows_accepted, held.rows_rejected) == ("held", 30, 3, 27)
    assert other.status == "accepted"  # another community's list flows beside the held one
    kept = home.root / held.stored_as
    text = (kept.parent / f"{kept.name}.回执.txt").read_text(encoding="utf-8")
    assert "处理结果：待确认（暂未应用）" in text
    assert "应用本文件将使「府右街南」社区现有30条记录中的27条（90.0%）置为失效" in text
    assert "读取的30行中有27行被拒收（90.0%），超过本表50%的上限" in text
    assert "「身份证号码」被Excel按数字保存" in text and "大数据中心确认后才会按本文件更新" in text
    now = current(home, "ledgers_elderly_alone")
    assert now.filter(pl.col("community") == "府右街南社区").height == 30  # the care list keeps its 30
    assert before.filter(pl.col("_valid_to").is_not_null()).is_empty()

    result = decide_in_dagster(held.receipt_id, "discard", "赵分析", "身份证号被表格软件改坏，已请社区重报")
    assert result.success
    assert next(e for e in result.get_asset_check_evaluations() if e.check_name == NO_DELIVERY_HELD).passed
    text = (kept.parent / f"{kept.name}.回执.txt").read_text(encoding="utf-8")
    assert "处理结果：经确认不予应用（文件已存档）" in text and "赵分析" in text and "本文件不予应用" in text
    assert kept.exists() and current(home, "ledgers_elderly_alone").height == 42
    entry = holds.listing(home).row(0, named=True)
    assert (entry["status"], entry["decided_by"]) == ("discarded", "赵分析")
    answered = lake.read(home, "ops", "file_receipt", where=pl.col("receipt_id") == held.receipt_id)
    assert answered["status"].to_list() == ["discarded"]

    # The wrecked file sent again is judged afresh (held again, not lost as a duplicate); the
    # corrected list flows.
    drop(home, "ledgers", "府右街南_6月(再发).csv", wrecked(ELDERS), department="civil_affairs")
    drop(home, "ledgers", "府右街南_6月(更正).xlsx", community_list(ELDERS[1:]), department="civil_affairs")
    taken = {r.file_name: r for r in process_source(home, "ledgers")}
    assert taken["府右街南_6月(再发).csv"].status == "held"
    corrected = balanced(home, taken["府右街南_6月(更正).xlsx"])
    assert corrected.status == "accepted" and "已置为失效1条" in corrected.reasons_zh
    code, told = cli(home, "discard", taken["府右街南_6月(再发).csv"].receipt_id, "--why", "重复的错误文件")
    assert code == 0 and "discarded by" in told
    assert cli(home, "discard", taken["府右街南_6月(再发).csv"].receipt_id, "--why", "again")[0] == 2


# -- on a generated street: the marts never see a held file ----------------------------------------
def test_person_history_shows_no_one_absent_because_of_a_held_snapshot(home):
    generate(home, scale="small", seed=5, days=8)  # two police snapshots, a week apart
    first, last = sorted(home.inbox("police").glob("实有人口_*.csv"))
    aside = home.root / last.name
    shutil.move(last, aside)
    for source in load_contracts().sources:
        process_source(home, source)
    start = dt.datetime.strptime(first.stem.split("_")[1], "%Y%m%d").date()
    cut, day = start + dt.timedelta(days=3), f"{start + dt.timedelta(days=3):%Y%m%d}"
    lines = (home.archive("police") / first.name).read_bytes().splitlines(keepends=True)
    drop(home, "police", f"实有人口_{day}.csv", b"".join(lines[: len(lines) // 2]))  # half the register
    (held,) = process_source(home, "police")
    assert held.status == "held"
    shutil.move(aside, home.inbox("police") / last.name)
    (good,) = process_source(home, "police")
    assert good.status in ("accepted", "partially_accepted")
    build_marts(home)

    def residents(on: dt.date) -> int:
        history = lake.read(home, "mart", "person_history")
        return history.filter(
            (pl.col("valid_from") <= on) & (pl.col("valid_to").is_null() | (pl.col("valid_to") > on))
        )["person_key"].n_unique()

    police = silver(home, "police_population")
    assert police.filter(pl.col("_valid_to") == cut).is_empty() and not (police["_file_hash"] == held.file_hash).any()
    assert residents(cut) >= 0.97 * residents(cut - dt.timedelta(days=1))  # the held file would remove half

    code, _ = cli(home, "release", held.receipt_id, "--why", "核对后确认")  # older than the applied one
    assert code == 0 and silver(home, "police_population").equals(police)
