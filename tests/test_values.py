"""Dates, amounts and phone numbers as people type them and spreadsheet programs write them: read
when they mean one value, refused with a plain-Chinese reason when they may mean another, never
silently blanked. Hand-typed CSV ledgers (as LibreOffice zh-CN exports them) go the whole way in."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest
from test_identity import _judged

from redwall import lake
from redwall.home import Home
from redwall.identifiers import is_phone_expr, normalise_phone_expr
from redwall.ingest import process_source

STREET = Path(__file__).parent / "deliveries" / "street"
TODAY = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
SHORT = f"{TODAY.year % 100:02d}年{TODAY.month}月{TODAY.day}日"  # LibreOffice zh-CN's short date for today


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        (SHORT, TODAY),
        (f"{TODAY:%Y}年{TODAY.month}月{TODAY.day}日", TODAY),
        (f"{TODAY:%Y}/{TODAY.month}/{TODAY.day}", TODAY),
        (f"{TODAY:%Y.%m.%d}", TODAY),
        (f"{TODAY:%Y%m%d}", TODAY),
        ("46334", dt.date(2026, 11, 8)),
        ("46334.0", dt.date(2026, 11, 8)),
        ("２０２６年１１月８日", dt.date(2026, 11, 8)),
        ("2026-11-08 10:30:00", dt.date(2026, 11, 8)),
    ],
)
def test_dates_in_the_forms_spreadsheet_programs_write_are_read(typed, read):
    rows = _judged("ledgers.hardship_aid", [_aid(date=typed)])
    assert rows["aid_on"].to_list() == [read] and rows["rule"].to_list() == [None]


@pytest.mark.parametrize(
    ("typed", "rule"),
    [
        ("40年3月1日", "date_two_digit_year"),  # 1940 or 2040: no one can tell
        ("2026年11月", "date_invalid"),
        ("2026-02-30", "date_invalid"),
        ("1990511", "date_invalid"),
    ],
)
def test_dates_that_may_mean_another_are_refused_with_a_reason(typed, rule):
    table_rows = _judged("ledgers.hardship_aid", [_aid(date=typed)])
    assert table_rows["rule"].to_list() == [[rule]] and table_rows["_rejected"].to_list() == [True]


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("1500元", 1500.0),
        ("1,500.00", 1500.0),
        ("1.5万", 15000.0),
        ("1.5万元", 15000.0),
        ("¥1,500", 1500.0),
        ("￥800", 800.0),
        ("12,345,678.5", 12345678.5),
        ("1 500", 1500.0),
        ("800", 800.0),
    ],
)
def test_amounts_with_units_and_separators_are_read(typed, read):
    rows = _judged("ledgers.hardship_aid", [_aid(amount=typed)])
    assert rows["amount"].to_list() == [read] and rows["rule"].to_list() == [None]


@pytest.mark.parametrize("typed", ["1,50", "1500美元", "约1500", "1.500,00"])
def test_amounts_that_may_mean_another_are_refused_with_a_reason(typed):
    rows = _judged("ledgers.hardship_aid", [_aid(amount=typed)])
    assert rows["amount"].to_list() == [None] and rows["rule"].to_list() == [["number_invalid"]]
    assert rows["_warned"].to_list() == [True]  # the row is taken in; the receipt says the value was not


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        ("+86 139 1234 5678", "13912345678"),
        ("0086-13912345678", "13912345678"),
        ("010-66012345", "01066012345"),
        ("(010)66012345", "01066012345"),
        ("010-66012345转8001", "01066012345转8001"),
        ("010-66012345 转分机 8001", "01066012345转8001"),
        ("010-66012345 ext. 12", "01066012345转12"),
        ("+86 10 6601 2345", "01066012345"),
        ("66012345", "66012345"),
    ],
)
def test_phones_with_area_codes_and_extensions_are_read(typed, normalised):
    frame = pl.DataFrame({"v": [typed]}).select(n=normalise_phone_expr(pl.col("v")))
    assert frame["n"].to_list() == [normalised]
    assert frame.select(is_phone_expr(pl.col("n"))).item()


@pytest.mark.parametrize("typed", ["1391234567", "139123456789", "６６０１２３４５ab", "١٣٩١٢٣٤٥٦٧٨"])
def test_phones_that_are_no_number_are_refused_with_a_reason(typed):
    rows = _judged("ledgers.elderly_alone", [{**_elder(), "联系电话": typed}])
    assert rows["phone"].to_list() == [None] and rows["rule"].to_list() == [["phone_invalid"]]


def _aid(date: str = "2026-11-02", amount: str = "800") -> dict[str, str]:
    return {
        "户主姓名": "刘志强",
        "公民身份号码": "110102196507150018",
        "所属社区": "西交民巷社区",
        "帮扶类型": "临时救助",
        "帮扶金额（元）": amount,
        "帮扶日期": date,
        "经办人": "赵敏",
    }


def _elder() -> dict[str, str]:
    return {
        "姓名": "张秀英",
        "公民身份号码": "110102194003120027",
        "所属社区": "府右街南社区",
        "居住地址": "西城区府右街12号院3号楼2单元501",
        "居住情况": "独居",
    }


def test_a_ledger_exported_as_csv_by_a_chinese_spreadsheet_is_taken_in_whole(tmp_path):
    """A hardship-aid ledger typed by hand as LibreOffice zh-CN writes it to CSV (GBK): short
    dates, amounts with 元 and separators, a two-digit year no one can place. Every value is read
    or its row told why."""
    home = Home.at(tmp_path).ensure()
    shutil.copy(STREET / "grid_20261101.parquet", home.inbox("district"))
    process_source(home, "district")
    text = (
        "\n".join(
            [
                "户主姓名,公民身份号码,所属社区,帮扶类型,帮扶金额（元）,帮扶日期,经办人",
                f"刘志强,110102196507150018,西交民巷社区,临时救助,800元,{SHORT},赵敏",
                f'马桂芬,110102195802030225,府右街南社区,物资帮扶,"1,500.00",{TODAY:%Y}/{TODAY.month}/{TODAY.day},李红',
                "孙建国,110102197008110534,西交民巷社区,医疗救助,1.2万,40年11月5日,赵敏",
            ]
        )
        + "\n"
    )
    folder = home.inbox("ledgers", "civil_affairs")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "困难群众帮扶台账（导出）.csv").write_bytes(text.encode("gbk"))
    [receipt] = process_source(home, "ledgers")
    assert (receipt.status, receipt.rows_read, receipt.rows_accepted, receipt.rows_rejected) == (
        "partially_accepted",
        3,
        2,
        1,
    )
    assert "「帮扶日期」年份只有两位1处" in receipt.reasons_zh
    rows = lake.read(home, "silver", "ledgers_hardship_aid").sort("amount")
    assert rows.select("amount", "aid_on").rows() == [(800.0, TODAY), (1500.0, TODAY)]
