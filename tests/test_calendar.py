"""The working calendar is the centre's to extend: next year's holiday schedule is filled into its
published template, dropped into the inbox, taken in like any ledger, and used from then on; time
limits past the calendar's end are provisional until then, and the check that warns about the end
says which file to fill and where to drop it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import pytest
from test_marts import silver

from redwall.assets.marts import calendar_check
from redwall.home import Home
from redwall.ingest import process_source
from redwall.marts.event import build_event
from redwall.marts.tables import read_silver
from redwall.schemas import load_contracts
from redwall.templates import publish_templates, template_file_name
from redwall.worktime import SCHEDULE, calendar_end, working_days

TZ = ZoneInfo("Asia/Shanghai")
TODAY = dt.date(2026, 12, 1)
SCHEDULE_2027 = [  # 元旦 and the first days of 春节 2027 (as a clerk would type them)
    (2027, "2027-01-01", "放假", "元旦"),
    (2027, "2027/2/6", "放假", "春节"),
    (2027, "2027年2月7日", "放假", "春节"),
    (2027, "2027-01-31", "调休上班", "春节"),
]


def deliver_schedule(home: Home, rows: list[tuple]) -> list:
    """The published template, filled as the centre's clerk fills it, dropped into its inbox."""
    import openpyxl

    table = load_contracts().table(SCHEDULE)
    publish_templates(home)
    template = home.published / "templates" / table.department["code"] / template_file_name(table)
    book = openpyxl.load_workbook(template)
    sheet = book[table.template["sheet"]]
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            sheet.cell(row=3 + i, column=1 + j, value=value)
    folder = home.inbox("ledgers", table.department["code"])
    folder.mkdir(parents=True, exist_ok=True)
    book.save(folder / "2027年节假日安排.xlsx")
    return process_source(home, "ledgers")


def new_year_event(schedule: pl.DataFrame | None) -> dict:
    """暴露垃圾 (4 working hours), dispatched on New Year's Eve at 17:00, fed back 4 January 10:00."""
    when = {"04": dt.datetime(2026, 12, 31, 17, tzinfo=TZ), "06": dt.datetime(2027, 1, 4, 10, tzinfo=TZ)}
    events = silver(
        "grid_app.event",
        [
            {
                "record_id": "R1",
                "recorded_at": when["04"],
                "event_id": "E1",
                "major_code": "01",
                "minor_code": "02",
                "grid_code": "110102001001001",
            }
        ],
    )
    steps = silver(
        "grid_app.event_status",
        [
            {
                "record_id": f"S{code}",
                "recorded_at": at,
                "event_id": "E1",
                "status": code,
                "department": "城管",
                "at": at,
            }
            for code, at in when.items()
        ],
    )
    grids = silver("district.grid", [{"grid_code": "110102001001001", "community_code": "110102001001"}])
    as_of = dt.datetime(2027, 1, 5, 12, tzinfo=TZ)
    return build_event(events, steps, grids, as_of, schedule).row(0, named=True)


@pytest.fixture(scope="module")
def delivered(tmp_path_factory) -> tuple[Home, list]:
    home = Home.at(tmp_path_factory.mktemp("calendar")).ensure()
    return home, deliver_schedule(home, SCHEDULE_2027)


def test_past_the_calendar_time_limits_are_provisional():
    event = new_year_event(None)
    assert calendar_end() == dt.date(2026, 12, 31)
    assert event["provisional"] and event["handling_minutes"] == 600 and event["on_time"] is False


def test_a_delivered_schedule_is_taken_in_and_used(delivered):
    home, receipts = delivered
    assert [(r.status, r.rows_read, r.rows_accepted) for r in receipts] == [("accepted", 4, 4)]
    schedule = read_silver(home, (SCHEDULE,))[SCHEDULE]
    assert calendar_end(schedule) == dt.date(2027, 12, 31)
    event = new_year_event(schedule)
    assert not event["provisional"] and event["handling_minutes"] == 120 and event["on_time"] is True
    days = dict(working_days(dt.date(2027, 1, 1), dt.date(2027, 2, 8), schedule).select("date", "is_workday").rows())
    assert not days[dt.date(2027, 1, 1)] and days[dt.date(2027, 1, 31)]  # 元旦 off, a 调休 Sunday worked
    assert days[dt.date(2027, 1, 4)] and not days[dt.date(2027, 1, 9)]  # unlisted: Monday to Friday


def test_a_wrong_schedule_row_is_refused_with_a_reason(tmp_path):
    home = Home.at(tmp_path).ensure()
    receipts = deliver_schedule(home, [(2027, "2027-01-01", "休息", "元旦"), (2027, "2027-02-30", "放假", "春节")])
    assert receipts[0].rows_rejected == 2
    assert "安排" in receipts[0].reasons_zh and "日期" in receipts[0].reasons_zh
    assert calendar_end(read_silver(home, (SCHEDULE,))[SCHEDULE]) == dt.date(2026, 12, 31)


def test_the_calendar_check_says_which_file_to_fill_and_where_to_drop_it(delivered):
    home, _ = delivered
    event = dg.AssetKey(["mart", "event"])
    warned = calendar_check(event, TODAY)
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert "published/templates/data_center/节假日安排_v1.xlsx" in warned.description
    assert "inbox/ledgers/data_center/" in warned.description and "2027年" in warned.description
    assert (home.root / warned.metadata["template"].value).exists()
    extended = calendar_check(event, TODAY, read_silver(home, (SCHEDULE,))[SCHEDULE])
    assert extended.passed and extended.metadata["calendar_ends"].value == "2027-12-31"
