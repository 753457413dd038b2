"""Ingestion on files as the feeds really come, flaws included, written by hand in each test.

Every test checks the accounting of every receipt it produces (:func:`balanced`): rows read =
accepted + rejected, every row read is in bronze, every rejected row has an error in ops/rejection.
Assertion messages never carry personal values: they compare counts, row numbers and flags.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import shutil
import time
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from msoffcrypto.format.ooxml import OOXMLFile

from redwall import lake
from redwall.home import Home
from redwall.identifiers import (
    excel_rounded_id_expr,
    id_check_char,
    is_valid_citizen_id,
    is_valid_uscc,
    upgrade_legacy_id,
    upgrade_legacy_id_expr,
    uscc_check_char,
    uscc_check_expr,
)
from redwall.ingest import (
    Receipt,
    history,
    inbox_files,
    is_ready,
    load,
    process_file,
    process_files,
    process_source,
    receipts,
)

D1, D2, D3 = dt.date(2024, 5, 1), dt.date(2024, 5, 8), dt.date(2024, 5, 15)


def cid(birth: str, seq: str, area: str = "110102") -> str:
    first17 = area + birth + seq
    return first17 + id_check_char(first17)


def uscc(body: str) -> str:
    return body + uscc_check_char(body)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home.at(tmp_path / "home").ensure()


def drop(home: Home, source: str, name: str, data: bytes, department: str | None = None) -> Path:
    folder = home.inbox(source, department)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def workbook(
    rows: list[list],
    *,
    title: str | None = None,
    notes: tuple[str, ...] = (),
    sheet: str = "Sheet1",
    merges: tuple[str, ...] = (),
    extra_sheets: dict[str, list[list]] | None = None,
) -> bytes:
    """An xlsx as clerks make them: cells keep their Python type (str → text, number → numeric
    cell, date → date cell), an optional merged title row, notes under the data."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    if title:
        ws.append([title])
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(rows[0]))
    for row in rows:
        ws.append(row)
    for note in notes:
        ws.append([note])
    for ref in merges:
        ws.merge_cells(ref)
    for name, extra in (extra_sheets or {}).items():
        other = wb.create_sheet(name)
        for row in extra:
            other.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def csv_bytes(rows: list[list[str]], encoding: str) -> bytes:
    """CSV as Excel saves it: CRLF, quotes only around values holding a comma."""
    quoted = ([f'"{v}"' if "," in v else v for v in row] for row in rows)
    return ("\r\n".join(",".join(r) for r in quoted) + "\r\n").encode(encoding)


def parquet_bytes(columns: dict[str, pa.Array | list]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def silver(home: Home, name: str, current: bool = False) -> pl.DataFrame:
    frame = lake.read(home, "silver", name)
    return frame.filter(pl.col("_valid_to").is_null()) if current and frame.height else frame


def valid_on(versions: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """The versions valid on ``day``: ``_valid_from <= day < _valid_to`` (open while null)."""
    return versions.filter(
        (pl.col("_valid_from") <= day) & (pl.col("_valid_to").is_null() | (pl.col("_valid_to") > day))
    )


def rejections(home: Home, receipt: Receipt) -> pl.DataFrame:
    if not lake.exists(home, "ops", "rejection"):  # written once a file had a problem
        return pl.DataFrame(schema=receipts.REJECTION_SCHEMA)
    return lake.read(home, "ops", "rejection", where=pl.col("receipt_id") == receipt.receipt_id)


def balanced(home: Home, receipt: Receipt) -> Receipt:
    """The accounting invariant of one receipt, checked against the lake itself."""
    __tracebackhide__ = True
    assert receipt.rows_read == receipt.rows_accepted + receipt.rows_rejected, receipt.status
    bronze_rows = sum(
        lake.read(home, "bronze", key.replace(".", "_", 1), where=pl.col("_file_hash") == receipt.file_hash).height
        for key in receipt.tables
    )
    assert bronze_rows == receipt.rows_read, "every row read is in bronze, once"
    silver_rows = sum(
        lake.read(home, "silver", key.replace(".", "_", 1), where=pl.col("_file_hash") == receipt.file_hash).height
        for key in receipt.tables
        if not key.endswith(".unrouted")
    )
    assert silver_rows <= receipt.rows_accepted, "silver holds at most the accepted rows"
    problems = rejections(home, receipt)
    if receipt.rows_rejected:
        errors = problems.filter(pl.col("severity") == "error").select("table", "sheet", "row_number").unique()
        assert errors.height == receipt.rows_rejected, "every rejected row has an error in ops/rejection"
    else:
        assert problems.filter(pl.col("severity") == "error").is_empty()
    stored = home.root / receipt.stored_as
    assert stored.exists(), "the delivered file is kept"
    ledger = receipt.source == "ledgers"
    beside = stored.parent / (stored.name + (".回执.txt" if ledger else ".receipt.json"))
    assert beside.exists(), "a receipt lies beside the kept copy"
    return receipt


def same(actual, expected, what: str) -> None:
    """Assert two value lists are equal without letting pytest print them (names, IDs, phones)."""
    __tracebackhide__ = True  # pytest would show this frame's arguments
    actual, expected = list(actual), list(expected)
    differing = [i for i, (a, e) in enumerate(zip(actual, expected, strict=False)) if a != e]
    sizes = (len(actual), len(expected))
    ok = sizes[0] == sizes[1] and not differing
    assert ok, f"{what}: {sizes[0]} values for {sizes[1]} expected, differing at positions {differing}"


def no_personal_values(texts: list[str], values: list[str]) -> None:
    """Reasons name rows and columns, never the values (checked without printing them)."""
    __tracebackhide__ = True
    leaked = sum(1 for t in texts for v in values if v and v in t)
    assert leaked == 0, f"{leaked} message(s) repeat a personal value"
    assert not any(re.search(r"\d{15,}", t) for t in texts), "a message carries an ID-length number"


# -- police: GB18030 CSV, weekly full snapshots ---------------------------------------------------
POLICE_HEADER = [
    "公民身份号码",
    "姓名",
    "性别",
    "民族",
    "出生日期",
    "户籍地址",
    "居住地址",
    "人户一致标识",
    "人员类型",
    "联系电话",
    "登记日期",
    "注销日期",
    "注销原因",
]
P1, P2, P3 = cid("19400312", "002"), cid("19850601", "011"), cid("19700203", "021")


def police_row(ident: str, name: str, address: str, *, kind: str = "户籍人口", sex: str = "男") -> list[str]:
    return [
        ident,
        name,
        sex,
        "汉族",
        ident[6:14] if kind != "境外人员" else "19900101",
        "北京市西城区",
        address,
        "01",
        kind,
        "13812345678",
        "2020-01-01",
        "",
        "",
    ]


def police_snapshot(rows: list[list[str]], encoding: str = "gb18030") -> bytes:
    return csv_bytes([POLICE_HEADER, *rows], encoding)


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig", "utf-8"])
def test_police_csv_read_whatever_its_encoding(home, encoding):
    drop(
        home,
        "police",
        "实有人口_20240501.csv",
        police_snapshot(
            [
                police_row(P1, "张秀英", "西城区府右街12号院3号楼2单元501", sex="女"),
                police_row("E12345678", "SMITH JOHN", "西城区西交民巷5号", kind="境外人员"),
            ],
            encoding,
        ),
    )
    (receipt,) = process_source(home, "police")
    balanced(home, receipt)
    assert (receipt.status, receipt.rows_read, receipt.rows_accepted) == ("accepted", 2, 2)
    assert ("GB18030" if encoding == "gb18030" else "UTF-8") in receipt.reasons_zh
    rows = silver(home, "police_population").sort("id_number")
    same(rows["name"], ["张秀英", "SMITH JOHN"], "name")  # decoded, not mojibake
    assert rows["sex"].to_list() == ["2", "1"] and rows["ethnicity"].to_list() == ["01", "01"]
    assert rows["person_type"].to_list() == ["1", "3"]  # names mapped to codes; a passport is no citizen ID
    same(rows["birth_date"], [dt.date(1940, 3, 12), dt.date(1990, 1, 1)], "birth_date")


def test_police_snapshots_deregister_and_version(home):
    moved = "西城区西交民巷5号院1号楼1单元302"
    drop(
        home,
        "police",
        "实有人口_20240501.csv",
        police_snapshot(
            [
                police_row(P1, "张秀英", "西城区府右街12号院3号楼2单元501"),
                police_row(P2, "王建国", "西城区府右街12号院3号楼1单元101"),
                police_row(P3, "李红", "西城区钟声胡同5号"),
            ]
        ),
    )
    drop(
        home,
        "police",
        "实有人口_20240508.csv",
        police_snapshot(
            [
                police_row(P1, "张秀英", moved),  # moved within the street
                police_row(P2, "王建国", "西城区府右街12号院3号楼1单元101"),  # unchanged; P3 left the register
            ]
        ),
    )
    first, second = (balanced(home, r) for r in process_source(home, "police"))
    assert first.as_of == D1 and second.as_of == D2
    rows = silver(home, "police_population")
    versions = {
        (r["id_number"] == P1, r["id_number"] == P3, r["_valid_from"], r["_valid_to"])
        for r in rows.iter_rows(named=True)
    }
    assert versions == {
        (True, False, D1, D2),
        (True, False, D2, None),  # P1: closed, and current
        (False, False, D1, None),  # P2: untouched
        (False, True, D1, D2),
    }  # P3: deregistered by absence
    same(
        valid_on(rows, D1).filter(pl.col("id_number") == P1)["residence_address"],
        ["西城区府右街12号院3号楼2单元501"],
        "before the move",
    )
    same(valid_on(rows, D3).filter(pl.col("id_number") == P1)["residence_address"], [moved], "after the move")
    assert valid_on(rows, D3).height == 2
    assert "不在本次名单中、已置为失效0条" in first.reasons_zh
    assert "不在本次名单中、已置为失效1条" in second.reasons_zh

    # A late, older snapshot is kept in bronze but does not rewrite the truth.
    drop(home, "police", "实有人口_20240424.csv", police_snapshot([police_row(P3, "李红", "西城区钟声胡同5号")]))
    (late,) = process_source(home, "police")
    balanced(home, late)
    assert late.status == "accepted" and "早于" in late.reasons_zh
    unchanged = silver(home, "police_population").equals(rows)
    assert unchanged


def test_a_snapshot_with_no_usable_row_deregisters_nobody(home):
    drop(home, "police", "实有人口_20240501.csv", police_snapshot([police_row(P1, "张秀英", "西城区钟声胡同5号")]))
    process_source(home, "police")
    before = silver(home, "police_population")
    broken = P2[:17] + ("0" if P2[17] != "0" else "1")  # every row fails the checksum
    drop(home, "police", "实有人口_20240508.csv", police_snapshot([police_row(broken, "王建国", "西城区钟声胡同5号")]))
    (receipt,) = process_source(home, "police")
    balanced(home, receipt)
    assert receipt.rows_rejected == receipt.rows_read == 1
    assert "未应用" in receipt.reasons_zh
    assert silver(home, "police_population").equals(before)  # P1 still registered


# -- floating: daily xlsx increments, title row, notes, Excel habits --------------------------------
FLOATING_HEADER = [
    "序号",
    "姓名",
    "证件类型",
    "身份证号",
    "性别",
    "出生日期",
    "户籍地",
    "现住地址",
    "来京日期",
    "流入原因",
    "居住证号",
    "居住证有效期至",
    "住所类型",
    "房主姓名",
    "房主电话",
    "登记人",
    "登记日期",
    "备注",
]  # 身份证号: an alias of 证件号码; 备注: a column the template does not have
F_ID = cid("19900501", "123")
F_X = next(c for n in range(1000) if (c := cid("19880808", f"{n:03d}")).endswith("X"))
F_LEGACY = "110102850615123"  # 15 digits, born 1985-06-15
F_ROUNDED = cid("19920715", "032")


def floating_row(
    seq, name, ident, birth, address, registered, *, phone="13912345678", arrived="2023/3/5", note=None
) -> list:
    return [
        seq,
        name,
        "居民身份证",
        ident,
        "男",
        birth,
        "河北省保定市",
        address,
        arrived,
        "务工",
        None,
        None,
        "租赁",
        "赵房东",
        phone,
        "孙管理",
        registered,
        note,
    ]


def test_floating_xlsx_as_exported(home):
    rows = [
        FLOATING_HEADER,
        floating_row(1, "刘 洋", F_X.lower(), dt.datetime(1988, 8, 8), "西城区府右街12号院3号楼2单元501", 45413),
        floating_row(
            2,
            " 陈静 ",
            "　" + "".join(chr(ord(c) + 0xFEE0) for c in F_ID) + " ",
            "1990年5月1日",
            "西城区府右街１２号院",
            "2024/5/1",
        ),
        floating_row(3, "周杰", float(F_ROUNDED[:15] + "000"), "19920715", "西城区西交民巷5号", "2024-05-01"),
        floating_row(
            4, "吴敏", F_ID[:-1] + ("0" if F_ID[-1] != "0" else "1"), "1990-05-01", "西城区钟声胡同5号", "2024-05-01"
        ),
        floating_row(
            5,
            "郑伟",
            F_LEGACY,
            "1985.6.15",
            "西城区北新华街18号",
            "2024-05-01",
            phone="12345",
            arrived="去年",
            note="临时",
        ),
        [6, "王芳", None, None, None, None, None, None, None, None, None, None, None, None, None, None, None, None],
    ]
    drop(
        home,
        "floating",
        "流动人口登记_20240501.xlsx",
        workbook(
            rows, title="西长安街街道流动人口登记表", notes=("制表人：孙管理    日期：2024年5月1日",), sheet="流动人口"
        ),
    )
    (receipt,) = process_source(home, "floating")
    balanced(home, receipt)
    assert (receipt.rows_read, receipt.rows_accepted, receipt.rows_rejected) == (6, 3, 3)
    assert (receipt.rows_warned, receipt.rows_skipped) == (1, 1)
    assert receipt.status == "partially_accepted"
    assert "备注" in receipt.reasons_zh and "签名或日期行1行（第9行）" in receipt.reasons_zh

    problems = rejections(home, receipt)
    errors = {
        (r["row_number"], r["column"], r["rule"])
        for r in problems.filter(pl.col("severity") == "error").iter_rows(named=True)
    }
    assert (5, "id_number", "id_excel_number") in errors  # Excel rows: title 1, header 2, data from 3
    assert (6, "id_number", "id_checksum") in errors
    assert {
        (8, c, "required_missing") for c in ("doc_type", "id_number", "residence_address", "registered_on")
    } <= errors
    assert {r for r, _, _ in errors} == {5, 6, 8}
    warnings = {
        (r["row_number"], r["column"]) for r in problems.filter(pl.col("severity") == "warning").iter_rows(named=True)
    }
    assert warnings == {(7, "arrived_on"), (7, "landlord_phone")}
    message = problems.filter(pl.col("rule") == "id_excel_number")["message_zh"].item()
    assert message == "第5行「身份证号」被Excel按数字保存，末几位已丢失，请将该列设为文本后重新填写"
    no_personal_values(
        [*problems["message_zh"].to_list(), receipt.reasons_zh],
        [F_ID, F_X, F_ROUNDED[:15], F_LEGACY, "周杰", "吴敏", "王芳"],
    )

    typed = silver(home, "floating_registration").sort("_row_number")
    assert typed["_row_number"].to_list() == [3, 4, 7]
    same(typed["id_number"], [F_X, F_ID, upgrade_legacy_id(F_LEGACY)], "id_number")  # X upper, half-width, 18
    same(typed["name"], ["刘洋", "陈静", "郑伟"], "name")
    same(typed["residence_address"][1:2], ["西城区府右街12号院"], "residence_address")
    same(typed["birth_date"], [dt.date(1988, 8, 8), dt.date(1990, 5, 1), dt.date(1985, 6, 15)], "birth_date")
    assert typed["registered_on"].to_list() == [dt.date(2024, 5, 1)] * 3  # serial 45413, 2024/5/1, ISO
    assert typed["doc_type"].unique().to_list() == ["111"] and typed["sex"].unique().to_list() == ["1"]
    assert typed["arrived_on"].to_list() == [dt.date(2023, 3, 5), dt.date(2023, 3, 5), None]
    same(typed["landlord_phone"], ["13912345678", "13912345678", None], "landlord_phone")
    assert set(typed.columns) == set(history.silver_schema(load.load_contracts().table("floating.registration")))

    raw = lake.read(home, "bronze", "floating_registration").sort("_row_number")
    assert raw["_row_number"].to_list() == [3, 4, 5, 6, 7, 8] and set(raw["_sheet"]) == {"流动人口"}
    assert raw.schema["id_number"] == pl.String and "备注" in raw.columns
    same(
        raw["id_number"][:2],
        [F_X.lower(), "　" + "".join(chr(ord(c) + 0xFEE0) for c in F_ID) + " "],
        "bronze id_number",
    )  # as delivered: lower-case x, full-width digits, spaces and all


def floating_file(rows: list[list]) -> bytes:
    return workbook([FLOATING_HEADER, *rows], title="西长安街街道流动人口登记表")


def test_floating_increments_keep_residence_history(home):
    first, second, third = "西城区府右街12号院3号楼2单元501", "西城区西交民巷5号院1号楼1单元302", "西城区钟声胡同5号"
    other = cid("19990101", "082")
    drop(
        home,
        "floating",
        "流动人口登记_20240501.xlsx",
        floating_file(
            [
                floating_row(1, "刘洋", F_ID, "1990-05-01", first, "2024-05-01"),
                floating_row(2, "陈静", other, "1999-01-01", third, "2024-05-01"),
            ]
        ),
    )
    drop(
        home,
        "floating",
        "流动人口登记_20240508.xlsx",
        floating_file([floating_row(1, "刘洋", F_ID, "1990-05-01", second, "2024-05-08")]),
    )  # registered again: moved
    for receipt in process_source(home, "floating"):
        balanced(home, receipt)
    rows = silver(home, "floating_registration")
    assert rows.height == 3
    lived = [
        valid_on(rows, day).filter(pl.col("id_number") == F_ID)["residence_address"].item() for day in (D1, D2, D3)
    ]
    same(lived, [first, second, second], "residence on D1, D2, D3")
    assert silver(home, "floating_registration", current=True).height == 2  # nobody closed by absence

    # A late export of an older day does not replace the newer registration.
    drop(
        home,
        "floating",
        "流动人口登记_20240503.xlsx",
        floating_file([floating_row(1, "刘洋", F_ID, "1990-05-01", third, "2024-05-03")]),
    )
    (late,) = process_source(home, "floating")
    balanced(home, late)
    unchanged = silver(home, "floating_registration").equals(rows)
    assert "早于" in late.reasons_zh and unchanged


def test_an_empty_daily_increment_is_a_day_with_nothing_new(home):
    drop(home, "floating", "流动人口登记_20240502.xlsx", floating_file([]))
    (receipt,) = process_source(home, "floating")
    assert (receipt.status, receipt.rows_read) == ("accepted", 0)
    assert "没有新增" in receipt.reasons_zh
    assert (home.archive("floating") / "流动人口登记_20240502.xlsx").exists()


# -- grid_app: hourly JSON Lines, one table per record type ----------------------------------------
GRID = "110102001001001"


def record(record_id: str, kind: str, payload: dict, *, at: str = "2024-05-01T08:15:00+08:00", grid=GRID) -> str:
    return json.dumps(
        {
            "record_id": record_id,
            "type": kind,
            "recorded_at": at,
            "worker_id": "W0107",
            "grid_code": grid,
            "payload": payload,
        },
        ensure_ascii=False,
    )


EVENT = {
    "event_id": "E1",
    "source": "网格员巡查",
    "major_code": "01",
    "minor_code": "02",
    "address": "府右街12号",
    "lon": 116.381,
    "lat": 39.905,
    "description": "暴露垃圾",
    "photo_count": 2,
}


def test_grid_app_jsonl_routes_records_and_deduplicates_retries(home):
    visit = {
        "house_code": "11010200100100010001",
        "persons": [{"name": "张秀英", "id_number": P1, "phone": "13812345678"}],
        "care_notes": ["独居", "行动不便"],
        "next_visit_on": "2024-06-01",
    }
    lines = [
        record("r1", "event", EVENT),
        record(
            "r2",
            "event_status",
            {"event_id": "E1", "status": "立案", "department": "城管执法队", "at": "2024-05-01T08:40:00+08:00"},
        ),
        record("r3", "visit", visit),
        record("r4", "inspection", {"object_id": "1101020101000001", "status": "破损", "note": "井盖裂缝"}),
        record("r1", "event", EVENT),  # the same upload retried within the hour
        record("r5", "inspection", {"object_id": "1101020101000002", "status": "冒烟"}),  # no such status
        record("r6", "photo", {"url": "x"}),  # a record type the centre does not take
        record("r7", "event", EVENT, grid=110102001001001)[:60],  # cut off: the upload broke here
    ]
    drop(home, "grid_app", "grid_app_2024050108.jsonl", ("\n".join(lines) + "\n").encode())
    drop(
        home,
        "grid_app",
        "grid_app_2024050109.jsonl",
        (record("r1", "event", EVENT) + "\n" + record("r8", "event", EVENT | {"event_id": "E2"}) + "\n").encode(),
    )
    first, second = (balanced(home, r) for r in process_source(home, "grid_app"))

    assert (first.rows_read, first.rows_rejected, first.rows_deduplicated) == (8, 3, 1)
    assert set(first.tables) == {
        "grid_app.event",
        "grid_app.event_status",
        "grid_app.visit",
        "grid_app.inspection",
        "grid_app.unrouted",
    }
    rules = dict(rejections(home, first).filter(pl.col("severity") == "error").select("row_number", "rule").iter_rows())
    assert rules == {6: "code_unknown", 7: "record_type_unknown", 8: "record_unreadable"}
    assert lake.read(home, "bronze", "grid_app_unrouted")["_row_number"].sort().to_list() == [7, 8]

    assert (second.rows_read, second.rows_accepted, second.rows_deduplicated) == (2, 2, 1)  # r1 again
    events = silver(home, "grid_app_event").sort("record_id")
    assert events["record_id"].to_list() == ["r1", "r8"]
    assert events["source"].to_list() == ["1", "1"] and events["photo_count"].to_list() == [2, 2]
    assert events["recorded_at"][0] == dt.datetime(2024, 5, 1, 8, 15, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert silver(home, "grid_app_event_status")["status"].to_list() == ["02"]  # 立案
    persons = json.loads(silver(home, "grid_app_visit")["persons"].item())
    same([persons[0]["id_number"]], [P1], "visit persons")  # nested values kept as delivered JSON
    assert silver(home, "grid_app_inspection")["status"].to_list() == ["2"]  # 破损


# -- municipal: exchange field codes with a data dictionary beside -----------------------------------
def test_municipal_exchange_files_with_their_dictionary(home):
    drop(
        home,
        "municipal",
        "mz_dibao_202405.parquet",
        parquet_bytes(
            {
                "JTBH": ["H001", "H001", "H002"],
                "CYSFZH": [P1, P2, cid("19500606", "102")],
                "CYXM": ["张秀英", "王建国", "赵敏"],
                "HZSFZH": [P1, P1, None],
                "JTRKS": [2, 2, 1],
                "BZKSRQ": pa.array([dt.date(2023, 1, 1)] * 3),
                "BZJSRQ": pa.array([None, None, dt.date(2024, 4, 30)]),
            }
        ),
    )
    drop(
        home,
        "municipal",
        "mz_dibao_202405.dict.json",
        json.dumps(
            {"JTBH": {"name": "家庭编号", "type": "string"}, "CYSFZH": {"name": "成员身份证号", "type": "string"}},
            ensure_ascii=False,
        ).encode(),
    )
    # The exchange renamed a field code; its dictionary (one per dataset) still says what it is.
    drop(
        home,
        "municipal",
        "cl_disability.dict.json",
        json.dumps({"CJLB_V2": {"name": "残疾类别", "type": "code"}}, ensure_ascii=False).encode(),
    )
    drop(
        home,
        "municipal",
        "cl_disability_202405.csv",
        csv_bytes(
            [
                ["SFZH", "XM", "CJZH", "CJLB_V2", "CJDJ", "YXQZ"],
                [P3, "李红", P3 + "41", "肢体", "二级", "2028-12-31"],
                [P2, "王建国", P2 + "11", "视力", "5", "20281231"],  # there is no level 5
            ],
            "utf-8",
        ),
    )
    waiting = inbox_files(home, "municipal")  # dictionaries are metadata, not deliveries
    assert sorted(f.name for f in waiting) == ["cl_disability_202405.csv", "mz_dibao_202405.parquet"]
    assert {f.as_of for f in waiting} == {dt.date(2024, 5, 31)}  # a month's state: its last day
    by_name = {r.file_name: balanced(home, r) for r in process_source(home, "municipal")}
    disability, dibao = by_name["cl_disability_202405.csv"], by_name["mz_dibao_202405.parquet"]

    assert (dibao.status, dibao.rows_accepted) == ("accepted", 3)
    rows = silver(home, "municipal_mz_dibao").sort("id_number")
    assert rows["household_size"].dtype == pl.Int64 and rows["end_on"].null_count() == 2
    assert (disability.rows_accepted, disability.rows_rejected) == (1, 1)
    assert silver(home, "municipal_cl_disability")["category"].to_list() == ["4"]  # 肢体, via the dictionary
    message = rejections(home, disability)["message_zh"].item()
    assert message.startswith("第3行「残疾等级」")  # line 3, under the header; the field in Chinese, not CJDJ
    archive = home.archive("municipal")
    assert (archive / "mz_dibao_202405.dict.json").exists()  # the file's own dictionary moved with it
    assert (archive / "cl_disability_202405.dict.json").exists()  # the dataset's copied beside it...
    assert (home.inbox("municipal") / "cl_disability.dict.json").exists()  # ...and kept for next month


# -- district: Parquet snapshots on irregular dates ------------------------------------------------
def building_snapshot(codes: list[str], floors: list[int]) -> bytes:
    return parquet_bytes(
        {
            "building_code": codes,
            "community_code": ["110102001001"] * len(codes),
            "grid_code": [GRID] * len(codes),
            "address": [f"西城区府右街12号院{c[1:]}号楼" for c in codes],
            "floors_above": floors,
            "floors_below": [1] * len(codes),
            "units": [2] * len(codes),
            "households": [24] * len(codes),
            "lon": [116.38] * len(codes),
            "lat": [39.9] * len(codes),
            "building_type": ["住宅"] * len(codes),
        }
    )


def test_district_snapshots(home):
    drop(home, "district", "building_20240501.parquet", building_snapshot(["B1", "B2", "B3", "B4"], [6, 6, 18, 6]))
    drop(home, "district", "building_20240501.parquet.ready", b"")  # the platform's "copy complete" marker
    drop(home, "district", "building_20240515.parquet", building_snapshot(["B1", "B3"], [7, 18]))
    first, second = sorted(process_source(home, "district"), key=lambda r: r.as_of)
    for receipt in (first, second):
        assert balanced(home, receipt).status == "accepted"
    assert (home.archive("district") / "building_20240501.parquet.ready").exists()
    assert not any(home.inbox("district").iterdir())
    current = silver(home, "district_building", current=True).sort("building_code")
    assert current["building_code"].to_list() == ["B1", "B3"] and current["floors_above"].to_list() == [7, 18]
    assert current["building_type"].unique().to_list() == ["1"]
    closed = silver(home, "district_building").filter(pl.col("_valid_to").is_not_null())
    assert sorted(closed.select("building_code", "_valid_to").rows()) == [("B1", D3), ("B2", D3), ("B4", D3)]
    # the receipts count what each snapshot closed: none at first, then B2 and B4
    assert "新增4条，变更0条，不在本次名单中、已置为失效0条。" in first.reasons_zh
    assert "新增0条，变更1条，不在本次名单中、已置为失效2条。" in second.reasons_zh
    assert "注意" not in second.reasons_zh  # as many sent as closed: no sign of a partial list
    assert lake.read(home, "bronze", "district_building")["floors_above"].dtype == pl.String  # text as delivered


# -- ledgers: department workbooks as clerks fill them ---------------------------------------------
ELDERLY_HEADER = [
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
    "备注",
]
E1, E2, E3 = cid("19400312", "002"), cid("19380101", "041"), cid("19450909", "052")


def elderly_ledger(rows: list[list], **kwargs) -> bytes:
    return workbook(
        [ELDERLY_HEADER, *rows],
        title="府右街南社区独居老人台账（2024年5月）",
        notes=("填表人：李红", "填表日期：2024年5月6日"),
        **kwargs,
    )


def test_ledger_workbook_as_a_clerk_fills_it(home):
    data = elderly_ledger(
        [
            [
                "张秀英",
                E1,
                "府右街南社区",
                "西城区府右街12号院3号楼2单元501",
                13812345678,
                "独居",
                "王建国",
                "13912345678",
                dt.datetime(2024, 5, 3),
                "李红",
                "子女在外地",
            ],
            [
                "刘桂兰",
                float(E2[:15] + "000"),
                None,
                "西城区府右街12号院3号楼1单元101",
                None,
                "独居",
                None,
                None,
                "2024/5/3",
                "李红",
                None,
            ],
            ["陈淑珍", E3, None, "西城区西交民巷5号", "66012345", "空巢", None, None, "2024年5月4日", "李红", None],
            ["孙爷爷", None, None, None, None, None, None, None, None, None, None],  # started, never finished
        ],
        sheet="Sheet1",
        merges=("C3:C5",),
        extra_sheets={"说明": [["本表每月5日前报送"]]},
    )
    # A .xls name on an xlsx workbook: the content decides, not the name.
    drop(home, "ledgers", "5月独居老人台账.xls", data, department="civil_affairs")
    (receipt,) = process_source(home, "ledgers")
    balanced(home, receipt)
    assert (receipt.department, receipt.tables) == ("civil_affairs", ("ledgers.elderly_alone",))
    assert (receipt.rows_read, receipt.rows_accepted, receipt.rows_rejected, receipt.rows_skipped) == (4, 2, 2, 2)
    typed = silver(home, "ledgers_elderly_alone").sort("_row_number")
    assert typed["_row_number"].to_list() == [3, 5]
    assert typed["community"].to_list() == ["府右街南社区"] * 2  # a merged cell belongs to every row it spans
    same(typed["phone"], ["13812345678", "66012345"], "phone")  # a numeric cell; a fixed line
    assert typed["living_situation"].to_list() == ["1", "2"]
    assert typed["last_visit_on"].to_list() == [dt.date(2024, 5, 3), dt.date(2024, 5, 4)]
    assert "备注" in lake.read(home, "bronze", "ledgers_elderly_alone").columns

    kept = home.archive("ledgers") / "civil_affairs" / "5月独居老人台账.xls"
    text = (kept.parent / (kept.name + ".回执.txt")).read_text(encoding="utf-8")
    assert "处理结果：部分接收" in text and "民生保障办公室（民政）" in text
    assert "第4行「身份证号码」被Excel按数字保存，末几位已丢失，请将该列设为文本后重新填写" in text
    assert "第6行「身份证号码」为空" in text and "「说明」" in text and "签名或日期行2行" in text
    no_personal_values([text], [E1, E2[:15], E3, "13812345678", "刘桂兰", "孙爷爷", "张秀英"])

    # Another community's clerk sends that community's ledger: it closes nobody of 府右街南.
    other = cid("19360606", "062")
    drop(
        home,
        "ledgers",
        "西交民巷社区独居老人.xlsx",
        elderly_ledger(
            [
                [
                    "马秀兰",
                    other,
                    "西交民巷社区",
                    "西城区西交民巷5号",
                    None,
                    "独居",
                    None,
                    None,
                    "2024-05-05",
                    "周立",
                    None,
                ]
            ]
        ),
        department="civil_affairs",
    )
    # Next month 府右街南's ledger no longer lists 陈淑珍: a community's ledger is its truth.
    drop(
        home,
        "ledgers",
        "6月独居老人台账.xlsx",
        elderly_ledger(
            [
                [
                    "张秀英",
                    E1,
                    "府右街南社区",
                    "西城区府右街12号院3号楼2单元501",
                    "13812345678",
                    "独居",
                    "王建国",
                    "13912345678",
                    "2024-06-03",
                    "李红",
                    None,
                ]
            ]
        ),
        department="civil_affairs",
    )
    for later in process_source(home, "ledgers"):
        balanced(home, later)
    current = silver(home, "ledgers_elderly_alone", current=True)
    same(sorted(current["id_number"]), sorted([E1, other]), "current")
    same(silver(home, "ledgers_elderly_alone").filter(pl.col("_valid_to").is_not_null())["id_number"], [E3], "closed")
    june = (kept.parent / "6月独居老人台账.xlsx.回执.txt").read_text(encoding="utf-8")
    assert "已置为失效1条" in june and "请按以上说明更正后重新报送完整的名单" in june
    assert "无需重复报送" not in june  # a partial re-send would close the rest of the community

    # A clerk sends only two newcomers as a "supplement": the one resident listed is closed, and
    # the receipt says so plainly.
    newcomers = [cid("19390303", "072"), cid("19410404", "082")]
    drop(
        home,
        "ledgers",
        "独居老人补报.xlsx",
        elderly_ledger(
            [
                [name, pid, "西交民巷社区", "西城区西交民巷7号", None, "独居", None, None, "2024-06-05", "周立", None]
                for name, pid in zip(("王淑芬", "赵桂英"), newcomers, strict=True)
            ]
        ),
        department="civil_affairs",
    )
    (supplement,) = process_source(home, "ledgers")
    assert "已置为失效1条" in supplement.reasons_zh and "注意" not in supplement.reasons_zh
    # One more newcomer alone closes both: more closed than sent, so the receipt warns.
    drop(
        home,
        "ledgers",
        "独居老人再补报.xlsx",
        elderly_ledger(
            [
                [
                    "李凤兰",
                    cid("19420505", "092"),
                    "西交民巷社区",
                    "西城区西交民巷9号",
                    None,
                    "独居",
                    None,
                    None,
                    "2024-06-06",
                    "周立",
                    None,
                ]
            ]
        ),
        department="civil_affairs",
    )
    (again,) = process_source(home, "ledgers")
    assert "新增1条，变更0条，不在本次名单中、已置为失效2条。注意" in again.reasons_zh
    assert "如果只是补报部分记录，请重新报送完整的名单" in again.reasons_zh


def test_ledger_csv_saved_from_excel_in_gbk(home):
    drop(
        home,
        "ledgers",
        "帮扶台账.csv",
        csv_bytes(
            [
                ["困难群众帮扶台账（2024年5月）", "", "", "", "", "", ""],
                ["户主姓名", "身份证号", "所属社区", "帮扶类型", "帮扶金额", "帮扶日期", "经办人"],
                ["刘志强", cid("19650715", "001"), "西交民巷社区", "临时救助", "800", "2024/5/10", "赵敏"],
                ["马丽", "1.10102E+17", "西交民巷社区", "物资帮扶", "1,200", "20240511", "赵敏"],
                [
                    "刘志强",
                    cid("19650715", "001"),
                    "西交民巷社区",
                    "临时救助",
                    "800",
                    "2024/5/10",
                    "赵敏",
                ],  # pasted twice
            ],
            "gbk",
        ),
        department="civil_affairs",
    )
    (receipt,) = process_source(home, "ledgers")
    balanced(home, receipt)
    assert receipt.tables == ("ledgers.hardship_aid",)  # told apart from the elderly ledger by its header
    assert (receipt.rows_read, receipt.rows_rejected, receipt.rows_deduplicated) == (3, 1, 1)
    assert "GB18030" in receipt.reasons_zh
    problem = rejections(home, receipt).row(0, named=True)
    assert (problem["row_number"], problem["rule"]) == (
        4,
        "id_excel_number",
    )  # the row Excel shows: title, header, data
    assert silver(home, "ledgers_hardship_aid")["amount"].to_list() == [800.0]


def test_ledger_append_keeps_one_row_per_key_with_the_latest_values(home):
    header = ["场所名称", "场所地址", "网格编码", "隐患类型", "发现日期", "整改期限", "整改日期", "排查人"]
    found = ["钟声社区自行车棚", "西城区钟声胡同5号", GRID, "电动车违规充电", "2024-05-03", "2024-05-10"]
    drop(home, "ledgers", "消防隐患_第1周.xlsx", workbook([header, [*found, None, "孙立"]]), department="safety")
    (first,) = process_source(home, "ledgers")
    drop(
        home,
        "ledgers",
        "消防隐患_第2周.xlsx",
        workbook(
            [
                header,
                [*found, "2024-05-08", "孙立"],
                [
                    "西单北大街商铺",
                    "西城区西单北大街1号",
                    "1101020011",
                    "消防通道堵塞",
                    "2024-05-09",
                    None,
                    None,
                    "孙立",
                ],
            ]
        ),
        department="safety",
    )
    (second,) = process_source(home, "ledgers")
    for receipt in (first, second):
        balanced(home, receipt)
    rows = silver(home, "ledgers_fire_hazard").sort("found_on")
    assert rows["rectified_on"].to_list() == [dt.date(2024, 5, 8), None]  # the rectification arrived
    assert rows["grid_code"].to_list() == [GRID, None]  # a malformed grid code: warned, set null
    assert (
        second.rows_warned == 1
        and "「网格编码」不符合单元网格编码的规则" in rejections(home, second)["message_zh"].item()
    )


def test_storefront_ledger_checks_credit_codes(home):
    good, bad = uscc("91110102MA01ABCD1"), "91110102MA01ABCD1X"
    bad = bad if not is_valid_uscc(bad) else bad[:-1] + "Y"
    header = ["商户名称", "信用代码", "经营地址", "责任人", "联系电话", "检查日期", "检查结果", "问题描述"]
    drop(
        home,
        "ledgers",
        "门前三包.xlsx",
        workbook(
            [
                header,
                [
                    "西单便民超市",
                    good.lower(),
                    "西城区北新华街18号",
                    "陈伟",
                    "13698765432",
                    "2024-05-10",
                    "不合格",
                    "门前堆放杂物",
                ],
                ["错码商店", bad, "西城区北新华街20号", "李强", "13698765433", "2024-05-10", "合格", None],
            ],
            sheet="三包检查",
        ),
        department="city_management",
    )
    (receipt,) = process_source(home, "ledgers")
    balanced(home, receipt)
    assert rejections(home, receipt).select("row_number", "rule").rows() == [(3, "uscc_invalid")]
    assert silver(home, "ledgers_storefront_duty").select("uscc", "result").rows() == [(good, "2")]


# -- files that cannot be read are kept and answered ------------------------------------------------
def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def encrypted(data: bytes) -> bytes:
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(data)).encrypt("mima1234", out)
    return out.getvalue()


def without_id_column() -> bytes:
    row = floating_row(1, "刘洋", F_ID, "1990-05-01", "西城区府右街12号", "2024-05-01")
    kept = [i for i, h in enumerate(FLOATING_HEADER) if h != "身份证号"]
    return workbook([[FLOATING_HEADER[i] for i in kept], [row[i] for i in kept]], title="西长安街街道流动人口登记表")


UNREADABLE = {  # case (the receipt's refusal): (source, file name, its content, what the receipt must say)
    "empty_file": ("police", "实有人口_20240501.csv", lambda: b"", "空文件"),
    "corrupt": (
        "floating",
        "流动人口登记_20240501.xlsx",
        lambda: half(floating_file([floating_row(1, "刘洋", F_ID, "1990-05-01", "西城区府右街12号", "2024-05-01")])),
        "损坏",
    ),
    "encrypted": ("ledgers", "独居老人台账.xlsx", lambda: encrypted(elderly_ledger([])), "密码"),
    "wrong_format": ("ledgers", "照片.xlsx", lambda: b"\x89PNG\r\n\x1a\n" + bytes(200), "无法识别格式"),
    # a copy broken off mid-line (and mid-character): a snapshot so cut must not deregister anyone
    "incomplete": (
        "police",
        "实有人口_20240501.csv",
        lambda: police_snapshot([police_row(P1, "张秀英", "府右街12号"), police_row(P2, "王建国", "钟声胡同5号")])[
            :-30
        ],
        "最后一行不完整",
    ),
    "header_unrecognised": (
        "police",
        "实有人口_20240501.csv",
        lambda: "名称,数量\n苹果,3\n".encode("gb18030"),
        "找不到可识别的表头",
    ),
    "required_column_missing": ("floating", "流动人口登记_20240501.xlsx", without_id_column, "缺少必填列「证件号码」"),
    "no_data": ("police", "实有人口_20240501.csv", lambda: police_snapshot([]), "没有数据行"),
}


@pytest.mark.parametrize("case", UNREADABLE)
def test_unreadable_files_are_kept_with_a_reason(home, case):
    source, name, make, reason = UNREADABLE[case]
    data = make()
    drop(home, source, name, data, department="civil_affairs" if source == "ledgers" else None)
    (receipt,) = process_source(home, source)
    # a file refused whole names the table its system's file name says it is (a ledger's name says none)
    named = {"police": ("police.population",), "floating": ("floating.registration",), "ledgers": ()}[source]
    assert (receipt.status, receipt.refusal, receipt.rows_read, receipt.tables) == ("rejected", case, 0, named)
    assert reason in receipt.reasons_zh
    assert not re.search(r"[a-z]+_[a-z]+", receipt.reasons_zh)  # never an internal column name (id_number)
    kept = home.root / receipt.stored_as
    intact = kept.read_bytes() == data
    assert intact and kept.is_relative_to(home.rejected(source))
    receipt_file = kept.parent / (kept.name + (".回执.txt" if source == "ledgers" else ".receipt.json"))
    assert reason in receipt_file.read_text(encoding="utf-8")
    assert not inbox_files(home, source) and not lake.exists(home, "silver", "police_population")
    recorded = lake.read(home, "ops", "file_receipt")
    assert recorded.select("status", "reasons_zh").rows() == [("rejected", receipt.reasons_zh)]
    assert not lake.exists(home, "ops", "file_registry")  # a rejected file may be sent again, corrected


def test_the_same_content_is_loaded_once(home):
    data = police_snapshot([police_row(P1, "张秀英", "西城区府右街12号院3号楼2单元501")])
    drop(home, "police", "实有人口_20240501.csv", data)
    loaded = process_file(home, "police", "实有人口_20240501.csv")  # a path inside the source's inbox
    drop(home, "police", "实有人口_20240501(1).csv", data)  # a renamed copy
    (renamed,) = process_source(home, "police")
    drop(home, "police", "实有人口_20240501.csv", data)  # the very same file, sent again
    (again,) = process_source(home, "police")
    balanced(home, loaded)
    for receipt in (renamed, again):
        assert (receipt.status, receipt.refusal, receipt.rows_read) == ("duplicate", "duplicate", 0)
        assert "重复文件" in receipt.reasons_zh and "实有人口_20240501.csv" in receipt.reasons_zh
    assert lake.read(home, "bronze", "police_population").height == 1
    assert lake.read(home, "ops", "file_registry").height == 1
    assert lake.read(home, "ops", "file_receipt")["status"].sort().to_list() == ["accepted", "duplicate", "duplicate"]
    kept = sorted(p.name for p in home.archive("police").iterdir() if p.suffix == ".csv")
    assert len(kept) == 3 and "实有人口_20240501.csv" in kept  # nothing overwritten, nothing deleted


def test_a_duplicate_from_another_department_does_not_name_its_file(home):
    ledger = elderly_ledger(
        [
            [
                "张秀英",
                E1,
                "府右街南社区",
                "西城区府右街12号院3号楼2单元501",
                None,
                "独居",
                None,
                None,
                "2024-05-03",
                "李红",
                None,
            ]
        ]
    )
    drop(home, "ledgers", "府右街南社区独居老人台账.xlsx", ledger, department="civil_affairs")
    process_source(home, "ledgers")
    drop(home, "ledgers", "台账.xlsx", ledger, department="safety")  # the same workbook, another office
    (copy,) = process_source(home, "ledgers")
    assert copy.status == "duplicate" and "另一报送单位的文件" in copy.reasons_zh
    assert "独居" not in copy.reasons_zh


# -- batches: the files of a source share one commit per table, with the result of one by one ------
def deliver(homes: list[Home], source: str, files: dict[str, bytes], department: str | None = None) -> None:
    """Drop the same files into every home, one after another a second apart: the same names,
    contents and modification times, so the same deliveries (and receipt ids) in each."""
    written = time.time_ns()
    for i, (name, data) in enumerate(files.items()):
        for h in homes:
            os.utime(drop(h, source, name, data, department), ns=(written + i * 10**9,) * 2)


def lines(*records: str) -> bytes:
    return ("\n".join(records) + "\n").encode()


def one_by_one(home: Home, source: str) -> list[Receipt]:
    """The files waiting, each taken in as a batch of its own."""
    return [process_file(home, source, f.path) for f in inbox_files(home, source)]


def same_result(batched: Home, alone: Home, source: str, by_batch: list[Receipt], by_file: list[Receipt]) -> None:
    """Both homes hold the same silver tables and rejections, and answered each file alike, up to
    what differs between two runs (load ids and times)."""
    __tracebackhide__ = True

    def answers(taken: list[Receipt]) -> list[tuple]:
        return [
            (
                r.file_path,
                r.status,
                r.tables,
                r.rows_read,
                r.rows_accepted,
                r.rows_rejected,
                r.rows_warned,
                r.rows_deduplicated,
                r.rows_skipped,
                r.stored_as,
                re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "", r.reasons_zh),
            )
            for r in taken
        ]

    def kept(frame: pl.DataFrame) -> pl.DataFrame:
        frame = frame.drop("_load_id", "_loaded_at", "load_id", "recorded_at", strict=False)
        return frame.sort(frame.columns) if frame.width else frame

    assert answers(by_batch) == answers(by_file)
    for table in load.load_contracts().source_tables(source):
        identical = kept(silver(batched, table.bronze_name)).equals(kept(silver(alone, table.bronze_name)))
        assert identical, table.key  # compared aside: pytest would print the rows
    problems = [kept(lake.read(h, "ops", "rejection", where=pl.col("source") == source)) for h in (batched, alone)]
    identical = problems[0].equals(problems[1])
    assert identical, "rejections"


def test_a_batch_of_increments_loads_as_one_by_one(home, tmp_path):
    """Rows older than silver, a re-export of the same day, a change and a change back, a key twice in
    a file: taken in one batch, they leave the history and the receipts that one by one leaves."""
    alone = Home.at(tmp_path / "alone").ensure()
    a5, a6, a7 = "西城区府右街12号院3号楼2单元501", "西城区西交民巷5号院1号楼1单元302", "西城区钟声胡同5号"
    c1, c2 = "西城区北新华街18号", "西城区北新华街20号"
    C, D = cid("19990101", "082"), cid("19950505", "113")

    def person(ident: str, address: str, day: str) -> list:
        return floating_row(1, "刘洋", ident, f"{ident[6:10]}-{ident[10:12]}-{ident[12:14]}", address, day)

    deliver([home, alone], "floating", {"流动人口登记_20240505.xlsx": floating_file([person(F_ID, a5, "2024-05-05")])})
    for h in (home, alone):
        process_source(h, "floating")
    deliver(
        [home, alone],
        "floating",
        {
            "流动人口登记_20240503.xlsx": floating_file([person(F_ID, a7, "2024-05-03"), person(C, c1, "2024-05-03")]),
            "流动人口登记_20240506.xlsx": floating_file(
                [
                    person(F_ID, a6, "2024-05-06"),
                    person(C, c1, "2024-05-03"),
                    person(D, c1, "2024-05-06"),
                    person(D, c2, "2024-05-06"),
                ]
            ),
            "流动人口登记_20240506(补报).xlsx": floating_file([person(F_ID, a7, "2024-05-06")]),
            "流动人口登记_20240508.xlsx": floating_file([person(F_ID, a5, "2024-05-08"), person(C, c2, "2024-05-08")]),
        },
    )
    by_batch, by_file = process_source(home, "floating"), one_by_one(alone, "floating")
    for receipt in by_batch:
        balanced(home, receipt)
    same_result(home, alone, "floating", by_batch, by_file)
    assert lake.open_table(home, "silver", "floating_registration").version() == 1  # one commit for four files

    versions = silver(home, "floating_registration").filter(pl.col("id_number") == F_ID).sort("_valid_from")
    same(versions["residence_address"], [a5, a7, a5], "A's residences")  # 5-6's first export replaced that day
    may = [dt.date(2024, 5, day) for day in (5, 6, 8)]
    assert versions.select("_valid_from", "_valid_to").rows() == [(may[0], may[1]), (may[1], may[2]), (may[2], None)]
    late, day, again, last = by_batch
    assert "1条早于已有登记" in late.reasons_zh and "新增1条" in late.reasons_zh
    assert day.rows_deduplicated == 1 and "新增1条，变更1条" in day.reasons_zh  # D twice; C unchanged
    assert "变更1条" in again.reasons_zh and "变更2条" in last.reasons_zh


def test_a_batch_of_appends_loads_as_one_by_one(home, tmp_path):
    """A record uploaded again with other values, and back; a retry in the same file and a later one."""
    alone = Home.at(tmp_path / "alone").ensure()
    moved, second, third = EVENT | {"address": "府右街14号"}, EVENT | {"event_id": "E2"}, EVENT | {"event_id": "E3"}
    deliver([home, alone], "grid_app", {"grid_app_2024050108.jsonl": lines(record("r1", "event", EVENT))})
    for h in (home, alone):
        process_source(h, "grid_app")
    deliver(
        [home, alone],
        "grid_app",
        {
            "grid_app_2024050109.jsonl": lines(record("r1", "event", moved), record("r2", "event", second)),
            "grid_app_2024050110.jsonl": lines(
                record("r1", "event", EVENT),
                record("r2", "event", second),
                record("r3", "event", third),
                record("r3", "event", third | {"photo_count": 3}),
            ),
            "grid_app_2024050211.jsonl": lines(record("r1", "event", moved)),
        },
    )
    by_batch, by_file = process_source(home, "grid_app"), one_by_one(alone, "grid_app")
    for receipt in by_batch:
        balanced(home, receipt)
    same_result(home, alone, "grid_app", by_batch, by_file)
    assert [r.rows_deduplicated for r in by_batch] == [0, 2, 0]  # r2 again unchanged, r3 twice in its file
    events = silver(home, "grid_app_event").sort("record_id")
    assert events.select("address", "photo_count", "_valid_from").rows() == [
        ("府右街14号", 2, dt.date(2024, 5, 2)),
        ("府右街12号", 2, dt.date(2024, 5, 1)),
        ("府右街12号", 3, dt.date(2024, 5, 1)),
    ]
    assert events["_source_file"].to_list() == [
        f"grid_app/{n}" for n in ("grid_app_2024050211.jsonl", "grid_app_2024050109.jsonl", "grid_app_2024050110.jsonl")
    ]


def test_a_batch_judges_each_file_by_its_own_headers(home, tmp_path):
    """Clerks head the grid column 所属网格 or 网格编码: each file's messages use its own header, and
    the rows still apply in delivery order (the last rectification date wins)."""
    alone = Home.at(tmp_path / "alone").ensure()

    def ledger(grid_header: str, rectified: str | None, grid: str = GRID) -> bytes:
        return workbook(
            [
                ["场所名称", "场所地址", grid_header, "隐患类型", "发现日期", "整改期限", "整改日期", "排查人"],
                [
                    "钟声社区自行车棚",
                    "西城区钟声胡同5号",
                    grid,
                    "电动车违规充电",
                    "2024-05-03",
                    "2024-05-10",
                    rectified,
                    "孙立",
                ],
            ]
        )

    deliver(
        [home, alone],
        "ledgers",
        {
            "消防隐患_第1周.xlsx": ledger("所属网格", None, grid="1101020011"),
            "消防隐患_第2周.xlsx": ledger("网格编码", "2024-05-08", grid="1101020012"),
            "消防隐患_第2周更正.xlsx": ledger("所属网格", "2024-05-09"),
        },
        department="safety",
    )
    by_batch, by_file = process_source(home, "ledgers"), one_by_one(alone, "ledgers")
    same_result(home, alone, "ledgers", by_batch, by_file)
    labels = [rejections(home, r)["column_label"].to_list() for r in by_batch]
    assert labels == [["所属网格"], ["网格编码"], []]
    rows = silver(home, "ledgers_fire_hazard")
    assert rows.select("rectified_on", "_source_file").rows() == [
        (dt.date(2024, 5, 9), "ledgers/safety/消防隐患_第2周更正.xlsx")
    ]


def test_a_batch_costs_one_commit_per_table(home, monkeypatch):
    paths = [
        drop(
            home,
            "grid_app",
            f"grid_app_20240501{h:02d}.jsonl",
            lines(record(f"r{h}", "event", EVENT | {"event_id": f"E{h}"})),
        )
        for h in range(10)
    ]
    taken = process_files(home, "grid_app", reversed(paths))  # in any order: taken oldest data first
    assert [r.file_name for r in taken] == [p.name for p in paths]
    for layer, name in (
        ("bronze", "grid_app_event"),
        ("silver", "grid_app_event"),
        ("ops", "file_receipt"),
        ("ops", "file_registry"),
    ):
        assert lake.open_table(home, layer, name).version() == 0, name  # ten files, one commit

    monkeypatch.setattr(load, "BATCH_FILES", 4)
    more = [
        drop(
            home,
            "grid_app",
            f"grid_app_20240502{h:02d}.jsonl",
            lines(record(f"s{h}", "event", EVENT | {"event_id": f"F{h}"})),
        )
        for h in range(10)
    ]
    for receipt in process_files(home, "grid_app", more):
        balanced(home, receipt)
    assert lake.open_table(home, "ops", "file_receipt").version() == 3  # batches of 4, 4 and 2
    assert silver(home, "grid_app_event").height == 20


def test_a_duplicate_inside_a_batch_is_loaded_once(home):
    hour = lines(
        record("r1", "event", EVENT), record("r2", "inspection", {"object_id": "1101020101000001", "status": "完好"})
    )
    deliver(
        [home],
        "grid_app",
        {
            "grid_app_2024050108.jsonl": hour,
            "grid_app_2024050109.jsonl": lines(record("r3", "event", EVENT | {"event_id": "E3"})),
            "grid_app_2024050108(1).jsonl": hour,
        },
    )  # the phone uploaded the hour twice
    first, other, copy = process_source(home, "grid_app")
    for receipt in (first, other):
        assert balanced(home, receipt).status == "accepted"
    assert (copy.status, copy.refusal, copy.rows_read) == ("duplicate", "duplicate", 0)
    assert "「grid_app_2024050108.jsonl」完全相同" in copy.reasons_zh
    assert lake.read(home, "bronze", "grid_app_event", where=pl.col("_file_hash") == first.file_hash).height == 1
    assert silver(home, "grid_app_event")["record_id"].sort().to_list() == ["r1", "r3"]
    assert lake.read(home, "ops", "file_registry")["file_name"].sort().to_list() == [first.file_name, other.file_name]
    assert lake.read(home, "ops", "file_receipt").height == 3
    kept = home.root / copy.stored_as
    assert kept.exists() and (kept.parent / (kept.name + ".receipt.json")).exists()


def test_a_refused_file_inside_a_batch_does_not_stop_the_others(home):
    deliver(
        [home],
        "grid_app",
        {
            "grid_app_2024050108.jsonl": lines(record("r1", "event", EVENT)),
            "grid_app_2024050109.jsonl": b"",  # the upload never came through
            "grid_app_2024050110.jsonl": b"\x89PNG\r\n\x1a\n" + bytes(200),  # a photo where the records belong
            "grid_app_2024050111.jsonl": lines(record("r2", "event", EVENT | {"event_id": "E2"})),
        },
    )
    first, empty, photo, last = process_source(home, "grid_app")
    for refused, why in ((empty, "empty_file"), (photo, "wrong_format")):
        assert (refused.status, refused.refusal, refused.rows_read) == ("rejected", why, 0)
        assert (home.root / refused.stored_as).is_relative_to(home.rejected("grid_app"))
    for receipt in (first, last):
        assert balanced(home, receipt).status == "accepted"
    assert silver(home, "grid_app_event")["record_id"].sort().to_list() == ["r1", "r2"]
    assert lake.read(home, "ops", "file_registry").height == 2 and lake.read(home, "ops", "file_receipt").height == 4
    assert not inbox_files(home, "grid_app")


# -- a run killed half-way is completed by the next, without duplicates ----------------------------
def killed(*args, **kwargs):
    raise RuntimeError("killed")


def test_crash_between_bronze_and_silver_then_rerun(home, monkeypatch):
    drop(
        home,
        "police",
        "实有人口_20240501.csv",
        police_snapshot(
            [
                police_row(P1, "张秀英", "西城区府右街12号院3号楼2单元501"),
                police_row(P2, "王建国", "西城区钟声胡同5号"),
                [
                    "110102199003071000",
                    "坏号",
                    "男",
                    "汉族",
                    "19900307",
                    "北京",
                    "西城区",
                    "01",
                    "户籍人口",
                    "",
                    "2020-01-01",
                    "",
                    "",
                ],
            ]
        ),
    )

    monkeypatch.setattr(history, "apply", killed)
    with pytest.raises(RuntimeError):
        process_source(home, "police")
    assert lake.read(home, "bronze", "police_population").height == 3  # bronze committed...
    assert not lake.exists(home, "silver", "police_population")  # ...silver not
    assert not lake.exists(home, "ops", "file_registry") and len(inbox_files(home, "police")) == 1

    monkeypatch.undo()
    (receipt,) = process_source(home, "police")
    balanced(home, receipt)  # bronze holds the file's rows once, not twice
    assert (receipt.rows_read, receipt.rows_accepted) == (3, 2)
    assert lake.read(home, "bronze", "police_population")["_load_id"].unique().to_list() == [receipt.load_id]
    assert silver(home, "police_population").height == 2
    assert lake.read(home, "ops", "file_receipt").height == 1 and lake.read(home, "ops", "file_registry").height == 1
    assert rejections(home, receipt).height == 1


def test_crash_after_registration_is_finished_not_called_a_duplicate(home, monkeypatch):
    drop(
        home,
        "ledgers",
        "独居老人台账.xlsx",
        elderly_ledger(
            [
                [
                    "张秀英",
                    E1,
                    "府右街南社区",
                    "西城区府右街12号院3号楼2单元501",
                    "13812345678",
                    "独居",
                    None,
                    None,
                    "2024-05-03",
                    "李红",
                    None,
                ]
            ]
        ),
        department="civil_affairs",
    )

    monkeypatch.setattr(receipts, "render", killed)  # dies while writing the sender's receipt
    with pytest.raises(RuntimeError):
        process_source(home, "ledgers")
    assert lake.read(home, "ops", "file_registry").height == 1 and inbox_files(home, "ledgers")

    monkeypatch.undo()
    (receipt,) = process_source(home, "ledgers")
    balanced(home, receipt)
    assert receipt.status == "accepted" and not inbox_files(home, "ledgers")
    assert lake.read(home, "ops", "file_receipt")["status"].to_list() == ["accepted"]
    assert silver(home, "ledgers_elderly_alone").height == 1


def test_every_table_stays_readable_after_a_crash_mid_silver(home, monkeypatch):
    """A grid-app file feeds four tables; dying after the second silver commit loses nothing."""
    drop(
        home,
        "grid_app",
        "grid_app_2024050108.jsonl",
        "\n".join(
            [
                record("r1", "event", EVENT),
                record("r2", "inspection", {"object_id": "1101020101000001", "status": "完好"}),
                record("r3", "event_status", {"event_id": "E1", "status": "上报", "at": "2024-05-01T08:16:00+08:00"}),
            ]
        ).encode(),
    )
    real, calls = history.apply, []

    def dies_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(history, "apply", dies_on_third)
    with pytest.raises(RuntimeError):
        process_source(home, "grid_app")
    monkeypatch.undo()
    (receipt,) = process_source(home, "grid_app")
    balanced(home, receipt)
    for name in ("grid_app_event", "grid_app_inspection", "grid_app_event_status"):
        assert silver(home, name).height == 1, name


def an_hour_of_records(hour: int) -> bytes:
    """Three records of an hour: an event (r1, retried every hour), an inspection, a broken line."""
    inspection = {"object_id": "1101020101000001", "status": "完好"}
    return lines(
        record("r1", "event", EVENT),
        record(f"i{hour}", "inspection", inspection),
        record(f"e{hour}", "event", EVENT)[:50],
    )


def test_crash_between_bronze_and_silver_of_a_batch_then_rerun(home, monkeypatch):
    deliver([home], "grid_app", {f"grid_app_20240501{h:02d}.jsonl": an_hour_of_records(h) for h in (8, 9, 10)})
    monkeypatch.setattr(history, "apply", killed)
    with pytest.raises(RuntimeError):
        process_source(home, "grid_app")
    assert lake.read(home, "bronze", "grid_app_event").height == 3  # bronze committed for the batch...
    assert not lake.exists(home, "silver", "grid_app_event")  # ...silver not
    assert not lake.exists(home, "ops", "file_receipt") and not lake.exists(home, "ops", "file_registry")
    assert len(inbox_files(home, "grid_app")) == 3

    monkeypatch.undo()
    taken = process_source(home, "grid_app")
    for receipt in taken:  # bronze holds each file's rows once, not twice
        assert balanced(home, receipt).status == "partially_accepted"
    assert [(r.rows_read, r.rows_rejected, r.rows_deduplicated) for r in taken] == [(3, 1, 0), (3, 1, 1), (3, 1, 1)]
    assert set(lake.read(home, "bronze", "grid_app_unrouted")["_load_id"]) == {r.load_id for r in taken}
    assert silver(home, "grid_app_event").height == 1 and silver(home, "grid_app_inspection").height == 3
    assert lake.read(home, "ops", "file_receipt").height == 3 and lake.read(home, "ops", "file_registry").height == 3
    assert lake.read(home, "ops", "rejection").height == 3


def test_crash_after_a_batch_is_registered_is_finished_not_called_duplicates(home, monkeypatch):
    deliver([home], "grid_app", {f"grid_app_20240501{h:02d}.jsonl": an_hour_of_records(h) for h in (8, 9, 10)})
    real, rendered = receipts.render, []

    def dies_on_second(*args, **kwargs):
        rendered.append(1)
        if len(rendered) == 2:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(receipts, "render", dies_on_second)  # dies filing the batch away, one file done
    with pytest.raises(RuntimeError):
        process_source(home, "grid_app")
    assert lake.read(home, "ops", "file_registry").height == 3 and len(inbox_files(home, "grid_app")) == 2

    monkeypatch.undo()
    taken = process_source(home, "grid_app")
    assert [r.file_name for r in taken] == ["grid_app_2024050109.jsonl", "grid_app_2024050110.jsonl"]
    for receipt in taken:
        assert balanced(home, receipt).status == "partially_accepted"
    recorded = lake.read(home, "ops", "file_receipt")
    assert recorded.height == 3 and set(recorded["status"]) == {"partially_accepted"}
    assert lake.read(home, "bronze", "grid_app_inspection").height == 3 and not inbox_files(home, "grid_app")
    assert silver(home, "grid_app_inspection").height == 3 and lake.read(home, "ops", "rejection").height == 3


# -- the inbox as a sensor sees it -----------------------------------------------------------------
def test_inbox_lists_deliveries_and_judges_readiness(home, monkeypatch):
    monkeypatch.setenv("REDWALL_LIMIT_SETTLE_SECONDS", "3600")  # the suite turns settling off
    drop(home, "municipal", "mz_death_202405.parquet", b"PAR1")
    drop(home, "municipal", "mz_death_202405.dict.json", b"{}")
    drop(home, "municipal", "mz_death_202405.parquet.ready", b"")
    drop(home, "ledgers", "~$台账.xlsx", b"lock", department="safety")  # Excel's lock file while open
    drop(home, "ledgers", "台账.xlsx.part", b"...", department="safety")  # a copy still in progress
    drop(home, "ledgers", "台账.xlsx", b"x", department="safety")
    drop(home, "ledgers", "无部门台账.xlsx", b"y")
    (exchange,) = inbox_files(home, "municipal")
    assert exchange.name == "mz_death_202405.parquet" and is_ready(exchange, None)  # marker beside it
    ledgers = inbox_files(home, "ledgers")
    assert sorted(f.relative for f in ledgers) == ["ledgers/safety/台账.xlsx", "ledgers/无部门台账.xlsx"]
    ledger = next(f for f in ledgers if f.department)
    assert ledger.relative == "ledgers/safety/台账.xlsx"
    assert not is_ready(ledger, None)  # first sight: wait a tick
    assert is_ready(ledger, list(ledger.observation))  # unchanged since the last tick (cursor JSON)
    assert not is_ready(ledger, [ledger.size - 1, ledger.mtime_ns])  # still growing
    an_hour_ago = time.time() - 3601
    os.utime(ledger.path, (an_hour_ago, an_hour_ago))
    (settled, _) = sorted(inbox_files(home, "ledgers"), key=lambda f: f.department is None)
    assert is_ready(settled, None)  # unchanged for the settling interval: no tick needed


# -- the identifier rules this module added, scalar and vectorised forms agreeing -------------------
def test_identifier_expressions_agree_with_scalar_rules():
    import random

    rng = random.Random(7)
    bodies = ["".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(17)) for _ in range(300)]
    codes = [uscc(b) for b in bodies[:150]] + [b + rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for b in bodies[150:]]
    frame = pl.DataFrame({"code": codes}).with_columns(ok=uscc_check_expr(pl.col("code")))
    assert frame["ok"].to_list() == [is_valid_uscc(c) for c in codes]
    legacy = [
        f"110102{rng.randint(30, 99):02d}0{rng.randint(1, 9)}{rng.randint(10, 28)}{rng.randint(0, 999):03d}"
        for _ in range(100)
    ]
    upgraded = pl.DataFrame({"id": legacy}).select(upgrade_legacy_id_expr(pl.col("id")))["id"].to_list()
    assert upgraded == [upgrade_legacy_id(v) for v in legacy]
    ending_000 = "110102194003104000"  # a real ID may end in 000 (sequence 400, check 0)
    assert is_valid_citizen_id(ending_000) and not is_valid_citizen_id(F_ROUNDED[:15] + "000")
    rounded = pl.DataFrame({"id": [P1, F_ROUNDED[:15] + "000", "1.10102194003E+17", ending_000]})
    flags = rounded.select(excel_rounded_id_expr(pl.col("id")))["id"].to_list()
    assert flags == [False, True, True, False]


# -- the generator's feeds, flaws planted and recorded in its ground truth -------------------------
def test_generated_feeds_are_accounted_for_row_by_row(tmp_path):
    generator = pytest.importorskip("redwall.generator")
    home = Home.at(tmp_path / "home").ensure()
    generator.generate(home, scale="small", seed=11, days=2)
    out = [balanced(home, r) for source in load.load_contracts().sources for r in process_source(home, source)]
    assert not inbox_files(home, "police") and all(r.status != "rejected" for r in out)

    def per_file(frame: pl.DataFrame) -> dict:
        return dict(
            frame.group_by("source", "file")
            .agg(pl.col("n").sum())
            .select(pl.concat_str("source", "file", separator="/"), "n")
            .iter_rows()
        )

    truth = pl.read_parquet(home.truth / "files.parquet").rename({"rows": "n"})
    assert {r.file_path: r.rows_read for r in out} == per_file(truth)  # every row written was read
    defects = pl.read_parquet(home.truth / "defects.parquet")
    notes = defects.filter(pl.col("kind") == "note_row").with_columns(n=pl.lit(1))
    assert {r.file_path: r.rows_skipped for r in out if r.rows_skipped} == per_file(notes)
    retried = defects.filter(pl.col("kind") == "duplicate_upload").height
    assert sum(r.rows_deduplicated for r in out if r.source == "grid_app") == retried

    # Every ID flaw planted is refused for that reason at that row, and no other ID is.
    planted = defects.filter(pl.col("kind").is_in(["excel_rounded_id", "invalid_checksum"])).select(
        pl.col("file").str.split("/").list.last().alias("file_name"),
        pl.col("row").alias("row_number"),
        pl.col("kind")
        .replace({"excel_rounded_id": "id_excel_number", "invalid_checksum": "id_checksum"})
        .alias("rule"),
    )
    found = (
        lake.read(home, "ops", "rejection")
        .filter(pl.col("column").str.ends_with("id_number") & (pl.col("rule") != "required_missing"))
        .select("file_name", "row_number", "rule")
    )
    assert planted.height > 20
    assert sorted(found.rows()) == sorted(planted.rows())
    half_filled = defects.filter(pl.col("kind") == "half_filled_row").select(
        pl.col("file").str.split("/").list.last().alias("file_name"), pl.col("row").alias("row_number")
    )
    refused = (
        lake.read(home, "ops", "rejection")
        .filter(pl.col("severity") == "error")
        .select("file_name", "row_number")
        .unique()
    )
    assert half_filled.join(refused, on=["file_name", "row_number"], how="anti").is_empty()

    # Community ledgers are snapshots per community: none closed another community's people.
    elderly = silver(home, "ledgers_elderly_alone")
    assert elderly["_valid_to"].null_count() == elderly.height


def test_generated_feeds_load_in_batches_as_one_by_one(tmp_path):
    generator = pytest.importorskip("redwall.generator")
    batched, alone = (Home.at(tmp_path / name).ensure() for name in ("batched", "alone"))
    generator.generate(batched, scale="small", seed=5, days=2)
    shutil.copytree(batched.root / "inbox", alone.root / "inbox", dirs_exist_ok=True)  # mtimes kept: same deliveries
    for source in ("grid_app", "floating", "ledgers"):  # the feeds with files that load in batches
        by_batch, by_file = process_source(batched, source), one_by_one(alone, source)
        assert len(by_batch) > 1
        same_result(batched, alone, source, by_batch, by_file)


def test_compaction_keeps_hourly_tables_small_and_whole(home):
    for hour in range(34):  # a day and a half of hourly uploads, one record each
        uploaded = dt.datetime(2024, 5, 1) + dt.timedelta(hours=hour)
        drop(
            home,
            "grid_app",
            f"grid_app_{uploaded:%Y%m%d%H}.jsonl",
            (record(f"r{hour}", "event", EVENT | {"event_id": f"E{hour}"}) + "\n").encode(),
        )
    process_source(home, "grid_app")  # compacts once the batch is in
    table = lake.open_table(home, "silver", "grid_app_event")
    assert len(table.file_uris()) < 32 and lake.read(home, "silver", "grid_app_event").height == 34
    assert lake.read(home, "ops", "file_receipt").height == 34


# -- per-community snapshots: ledgers of different communities share a batch ------------------------
def elder(name: str, ident: str, community: str, phone: str | None = None) -> list:
    return [name, ident, community, "西城区府右街12号", phone, "独居", None, None, "2024-05-03", "李红", None]


def test_community_ledgers_in_a_batch_load_as_one_by_one(home, tmp_path):
    """Ledgers of several communities, one community twice, a person moving between communities, a
    refused row and a stale ledger: batched, they leave what one by one leaves."""
    alone = Home.at(tmp_path / "alone").ensure()
    M, N = cid("19360606", "062"), cid("19370707", "073")
    deliver(
        [home, alone],
        "ledgers",
        {
            "府右街南_20240420.xlsx": elderly_ledger(
                [elder("张秀英", E1, "府右街南社区"), elder("刘桂兰", E2, "府右街南")]
            ),
            "西交民巷_20240420.xlsx": elderly_ledger(
                [elder("陈淑珍", E3, "西交民巷社区"), elder("马秀兰", M, "西交民巷社区")]
            ),
            "钟声_20240425.xlsx": elderly_ledger([elder("周大爷", N, "钟声社区")]),
        },
        department="civil_affairs",
    )
    for h in (home, alone):
        process_source(h, "ledgers")
    deliver(
        [home, alone],
        "ledgers",
        {
            "钟声_20240424.xlsx": elderly_ledger([elder("周大爷", N, "钟声社区", "66012345")]),  # older than loaded
            "府右街南_20240501.xlsx": elderly_ledger([elder("张秀英", E1, "府右街南社区")]),  # 刘桂兰 gone
            "西交民巷_20240501.xlsx": elderly_ledger(
                [elder("陈淑珍", E3, "西交民巷社区"), elder("无证", None, "西交民巷")]
            ),
            "钟声_20240502.xlsx": elderly_ledger(
                [elder("周大爷", N, "钟声社区"), elder("马秀兰", M, "钟声社区")]
            ),  # moved
            "府右街南_20240508.xlsx": elderly_ledger(
                [elder("张秀英", E1, "府右街南社区", "13812345678"), elder("刘桂兰", E2, "府右街南社区")]
            ),  # the same community again
            "府右街南_20240508(更正).xlsx": elderly_ledger([elder("张秀英", E1, "府右街南社区", "13812345679")]),
        },
        department="civil_affairs",
    )
    versions = {
        name: lake.open_table(home, layer, name).version()
        for layer, name in (("silver", "ledgers_elderly_alone"), ("ops", "file_registry"))
    }
    by_batch = process_files(home, "ledgers", [f.path for f in inbox_files(home, "ledgers")])
    by_file = one_by_one(alone, "ledgers")
    for receipt in by_batch:
        balanced(home, receipt)
    same_result(home, alone, "ledgers", by_batch, by_file)
    assert "早于已加载" in by_batch[0].reasons_zh
    # groups: 钟声 (stale) 府右街南 西交民巷 | 钟声 (马秀兰 was 西交民巷's) 府右街南 | 府右街南 (更正)
    assert lake.open_table(home, "silver", "ledgers_elderly_alone").version() == versions["ledgers_elderly_alone"] + 3
    assert lake.open_table(home, "ops", "file_registry").version() == versions["file_registry"] + 3
    rows = silver(home, "ledgers_elderly_alone").filter(pl.col("id_number") == M).sort("_valid_from")
    assert rows.select("community", "_valid_from", "_valid_to").rows() == [
        ("西交民巷社区", dt.date(2024, 4, 20), dt.date(2024, 5, 1)),
        ("钟声社区", dt.date(2024, 5, 2), None),
    ]
    current = silver(home, "ledgers_elderly_alone", current=True)
    same(sorted(current["id_number"]), sorted([E1, E3, M, N]), "current")  # the correction omits 刘桂兰


def test_community_ledgers_cost_one_commit_per_table(home):
    communities = ["府右街南", "西交民巷", "钟声", "北新华街", "六部口"]
    deliver(
        [home],
        "ledgers",
        {
            f"{c}_20240501.xlsx": elderly_ledger([elder("某", cid("19400101", f"{i + 1:03d}"), f"{c}社区")])
            for i, c in enumerate(communities)
        },
        department="civil_affairs",
    )
    for receipt in process_source(home, "ledgers"):
        assert balanced(home, receipt).status == "accepted"
    for layer, name in (
        ("bronze", "ledgers_elderly_alone"),
        ("silver", "ledgers_elderly_alone"),
        ("ops", "file_receipt"),
        ("ops", "file_registry"),
    ):
        assert lake.open_table(home, layer, name).version() == 0, name  # five ledgers, one commit
    assert silver(home, "ledgers_elderly_alone", current=True).height == 5


def test_a_number_typed_into_a_date_cell_is_read_as_the_number(tmp_path):
    """20261204 typed into a date-formatted cell is no date Excel can show (+57373-04-15): it is
    read as the number the clerk typed, for the rules to judge, never as that rendering."""
    from redwall.ingest.formats import read_file

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["帮扶日期", "发现日期", "整改期限"])
    sheet.append([20261204, dt.date(2026, 11, 3), 46329])
    for cell in sheet[2]:
        cell.number_format = "yyyy-mm-dd"
    book.save(tmp_path / "dates.xlsx")
    (grid,) = read_file(tmp_path / "dates.xlsx")
    assert grid.cells.row(1)[1:] == ("20261204", "2026-11-03 00:00:00", "2026-11-03 00:00:00")


def test_a_total_row_is_recognised_by_its_formula_without_a_label(home):
    """A row of column sums under the records (=SUM(E3:E4)) is a total even with no 合计 label; a
    sum across one row (a record's own total) is not."""
    aid = [
        ["户主姓名", "公民身份号码", "所属社区", "帮扶类型", "帮扶金额（元）", "帮扶日期", "经办人"],
        ["刘志强", cid("19650715", "001"), "西交民巷社区", "临时救助", "=SUM(800,0)", "2026-11-02", "赵敏"],
        ["马桂芬", cid("19580203", "022"), "西交民巷社区", "物资帮扶", 500, "2026-11-02", "李红"],
        [None, None, None, None, "=SUM(E2:E3)", None, None],
    ]
    # as a spreadsheet program saves it: each formula with its computed value
    source, computed = zipfile.ZipFile(io.BytesIO(workbook(aid))), io.BytesIO()
    with zipfile.ZipFile(computed, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<f>SUM(800,0)</f><v />", b"<f>SUM(800,0)</f><v>800</v>").replace(
                    b"<f>SUM(E2:E3)</f><v />", b"<f>SUM(E2:E3)</f><v>1300</v>"
                )
                assert data.count(b"<v>800</v>") == 1 and data.count(b"<v>1300</v>") == 1
            target.writestr(item, data)
    drop(home, "ledgers", "帮扶台账.xlsx", computed.getvalue(), department="civil_affairs")
    (receipt,) = process_source(home, "ledgers")
    balanced(home, receipt)
    assert (receipt.rows_read, receipt.rows_rejected, receipt.rows_skipped) == (2, 0, 1)
    assert "合计行1行（第4行）" in receipt.reasons_zh
