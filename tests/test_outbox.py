"""The ledgers' error workbooks (错误标注表): on generator output and on a clerk's own workbook, every
open issue of a ledger file is marked and explained in that file's workbook, whichever step of the
loop found it; the clerk's rows come back as typed (dates as dates, numbers as numbers, ID numbers
and phones as text, the columns they added kept), at the rows they had, under the clerk's own
headers in the clerk's order, with the template's drop-downs and a hidden column naming each row's
original place; workbooks are regenerated whole; and personal values go into no file but the
sending department's own workbook. (Sending a workbook back, and its issues closing: the delivery
corpus, tests/deliveries.)"""

import datetime as dt
import shutil
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from openpyxl.utils import get_column_letter

from redwall import lake
from redwall.home import Home
from redwall.ingest import process_source, release
from redwall.ingest.layout import RETURNED_HEADER, header_key
from redwall.marts import build_marts
from redwall.quality.loop import returned_row, run_loop
from redwall.quality.outbox import write_outbox
from redwall.schemas import load_contracts
from redwall.templates import IDENTITY_SHEET

EXCEL_EPOCH = dt.date(1899, 12, 30)
UNKNOWN_ADDRESS = "西城区无名胡同999号"  # no building of the district register: an address issue
UNKNOWN_COMMUNITY = "无名社区"  # no community of the district register: a suite issue
ADDED = "身体状况"  # a column the clerk added to the template
ISSUES = "问题说明"  # the sheet listing a file's issues, beside its rows
# The clerk's own layout: the phone first, the ID under one of its other names.
CLERK_ORDER = [
    "phone",
    "name",
    "id_number",
    "community",
    "address",
    "living_situation",
    "emergency_contact",
    "emergency_phone",
    "last_visit_on",
    "visiting_cadre",
]
CLERK_HEADERS = {"id_number": "身份证号"}


@pytest.fixture(scope="module")
def outboxed(looped):
    """The shared looped street with its outbox written."""
    home, issues = looped
    write_outbox(home, issues)
    return home, issues


def _workbook(home: Home, path: str) -> Path:
    department = Path(path).parent.name
    return home.outbox / "ledgers" / department / f"{Path(path).stem}_错误标注.xlsx"


def _rows(sheet) -> tuple[list[str], dict[int, dict[str, openpyxl.cell.Cell]]]:
    """A data sheet's header (without the hidden row reference that ends it) and its cells by row:
    the workbook keeps each row at its row in the clerk's file."""
    at = next(r for r in range(1, 4) if RETURNED_HEADER in [c.value for c in sheet[r]])
    header = [c.value for c in sheet[at]]
    assert header[-1] == RETURNED_HEADER
    return header[:-1], {row[0].row: dict(zip(header, row, strict=False)) for row in sheet.iter_rows(min_row=at + 1)}


def _header_of(header: list[str], column) -> str | None:
    """The header the sender wrote for a contract column (the workbook keeps the sender's)."""
    return next((h for h in header if header_key(h) in {header_key(n) for n in column.headers}), None)


def _data_sheets(book) -> list:
    return [s for s in book if s.title not in (ISSUES, IDENTITY_SHEET)]


def _assert_marked(home: Home, issues: pl.DataFrame) -> None:
    """Every open issue of a ledger file: its cell, in its file's workbook, filled and commented."""
    contracts = load_contracts()
    mine = issues.filter(pl.col("source") == "ledgers", pl.col("status") == "open")
    assert mine.height
    books = {path: openpyxl.load_workbook(_workbook(home, path)) for path in mine["file_path"].unique()}
    for path, table, number, column, message in mine.select(
        "file_path", "table", "row_number", "column", "message_zh"
    ).iter_rows():
        header, cells = _rows(books[path].worksheets[0])
        cell = cells[number][_header_of(header, contracts.table(table).column(column)) if column else header[0]]
        assert cell.comment is not None and message in cell.comment.text, (path, number, column)
        assert cell.fill.fgColor.rgb.endswith("FFC7CE")
    for (path,), found in mine.group_by("file_path"):  # and listed beside the rows, in row order
        listed = [(n, m) for _, n, m, _ in books[path][ISSUES].iter_rows(min_row=2, values_only=True)]
        assert set(found.select("row_number", "message_zh").iter_rows()) <= set(listed)
        assert [n for n, _ in listed] == sorted(n for n, _ in listed)


def test_every_open_issue_of_a_ledger_file_is_marked_in_its_workbook(outboxed):
    home, issues = outboxed
    ledger = issues.filter(pl.col("source") == "ledgers")
    assert (ledger["origin"] != "ingest").any(), "the generator's ledgers should carry a loop-found issue"
    _assert_marked(home, issues)
    # one workbook per file with open issues, none for the others
    expected = {_workbook(home, p) for p in ledger.filter(pl.col("status") == "open")["file_path"].unique()}
    assert set((home.outbox / "ledgers").rglob("*.xlsx")) == expected


def _silver(home: Home, table) -> pl.DataFrame:
    return lake.read(home, "silver", table.bronze_name, where=pl.col("_valid_to").is_null())


def _date_cell(style: int, day: dt.date):
    """How a clerk's date cell holds a date: a date cell, a bare serial number, or text."""
    return [day, (day - EXCEL_EPOCH).days, f"{day.year}年{day.month}月{day.day}日"][style % 3]


@pytest.fixture(scope="module")
def clerk(outboxed, tmp_path_factory):
    """A civil-affairs clerk's own elderly-alone ledger, in a copy of the looped home: date cells,
    serial numbers and text dates, phones typed as numbers, a column added, and two problems only
    the loop finds (an address no register knows, a community no register knows)."""
    home, _ = outboxed
    copy = Home.at(tmp_path_factory.mktemp("clerk") / "home")
    shutil.copytree(home.root, copy.root)
    table = load_contracts().table("ledgers.elderly_alone")
    current = _silver(copy, table)
    community = current["community"].drop_nulls().mode().sort()[0]
    clean = (
        current.filter(pl.col("community") == community, pl.col("phone").str.contains(r"^\d{11}$"))
        .sort("_row_number")
        .head(6)
    )
    clean = clean.with_columns(
        last_visit_on=pl.Series([dt.date(2026, 10, 20) + dt.timedelta(days=3 * i) for i in range(clean.height)])
    )
    rows = clean.with_columns(
        address=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(UNKNOWN_ADDRESS)).otherwise("address"),
        community=pl.when(pl.int_range(pl.len()) == 1).then(pl.lit(UNKNOWN_COMMUNITY)).otherwise("community"),
    )
    assert rows.height == 6
    name = f"{community}社区独居老人台账（12月）.xlsx"
    _deliver(copy, table, rows, name)
    (receipt,) = process_source(copy, "ledgers")
    assert (receipt.rows_read, receipt.rows_rejected, receipt.rows_warned) == (6, 0, 0)  # nothing found at ingestion
    # Six rows of a longer community list would close the rest: held, until an analyst lets them in.
    assert receipt.status == "held"
    release(copy, receipt.receipt_id, "analyst01", "社区核实名单已更新")
    build_marts(copy)
    issues = run_loop(copy)
    write_outbox(copy, issues)
    return copy, issues, table, rows, clean, f"ledgers/{table.department['code']}/{name}"


def _deliver(home: Home, table, rows: pl.DataFrame, name: str) -> None:
    """``rows`` as a clerk's workbook: title, the template's header plus an added column, data."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = table.template["sheet"]
    sheet.append([table.title])
    columns = CLERK_ORDER
    sheet.append([CLERK_HEADERS.get(c, table.column(c).label) for c in columns] + [ADDED])
    for i, row in enumerate(rows.select(columns).iter_rows(named=True)):
        row["last_visit_on"] = _date_cell(i, row["last_visit_on"])
        if i % 2 == 0:  # a phone typed into a number cell: it survives, as a number
            row["phone"] = int(row["phone"])
        sheet.append([row[c] for c in columns] + [_note(i, row)])
    folder = home.inbox("ledgers") / table.department["code"]
    folder.mkdir(parents=True, exist_ok=True)
    book.save(folder / name)


def _note(i: int, row: dict) -> str | None:
    """What a clerk writes in the column they added: a remark on every other row, and on one the
    person's own name and ID, which must not come back in the error workbook."""
    if i == 4:
        return f"{row['name']}之女代签，身份证{row['id_number']}"
    return "行动不便" if i % 2 else None


def test_issues_only_the_loop_found_are_marked_in_the_clerks_workbook(clerk):
    home, issues, _, _, _, path = clerk
    found = issues.filter(pl.col("file_path") == path, pl.col("status") == "open")
    assert {"address", "suite"} <= set(found["origin"]) and "ingest" not in set(found["origin"])
    _assert_marked(home, issues)
    _, cells = _rows(openpyxl.load_workbook(_workbook(home, path)).worksheets[0])
    first, second = 3, 4  # the file's first data rows
    assert cells[first]["居住地址"].comment and cells[second]["所属社区"].comment
    assert not cells[first + 2]["居住地址"].comment  # a good cell stays plain
    assert cells[first]["居住地址"].value == UNKNOWN_ADDRESS  # the clerk's own value, to correct


def test_the_clerks_rows_come_back_as_typed(clerk):
    home, _, table, rows, _, path = clerk
    book = openpyxl.load_workbook(_workbook(home, path))
    sheet = book.worksheets[0]
    header, cells = _rows(sheet)
    # the clerk's headers, in the clerk's order, at the clerk's rows (title row 1, header row 2)
    assert header[: len(CLERK_ORDER)] == [CLERK_HEADERS.get(c, table.column(c).label) for c in CLERK_ORDER]
    assert sorted(cells) == list(range(3, 3 + rows.height))
    # each row names its place in the original file, in a hidden column
    reference = get_column_letter(len(header) + 1)
    assert sheet.column_dimensions[reference].hidden
    assert [cells[3 + i][RETURNED_HEADER].value for i in range(rows.height)] == [
        returned_row(path, 3 + i) for i in range(rows.height)
    ]
    # the template's drop-downs and date checks, the template's identity in a very hidden sheet
    checked = {str(v.sqref).split(":")[0][:-1]: v.type for v in sheet.data_validations.dataValidation}
    letter = {c: get_column_letter(i + 1) for i, c in enumerate(CLERK_ORDER)}
    assert checked == {letter["community"]: "list", letter["living_situation"]: "list", letter["last_visit_on"]: "date"}
    assert book[IDENTITY_SHEET].sheet_state == "veryHidden"
    assert list(book[IDENTITY_SHEET].iter_rows(max_row=1, max_col=2, values_only=True)) == [
        ("redwall_table", table.key)
    ]
    for i, row in enumerate(rows.iter_rows(named=True)):
        mine = cells[3 + i]
        visit = mine["最近走访日期"]  # a date cell, a serial number and a text date all come back as dates
        assert visit.is_date and visit.value.date() == row["last_visit_on"] and visit.number_format == "yyyy-mm-dd"
        for label, value in (("身份证号", row["id_number"]), ("联系电话", row["phone"])):
            cell = mine[label]  # text, formatted as text, whatever cell the clerk typed it in
            assert (cell.value, cell.data_type, cell.number_format) == (value, "s", "@")
        assert mine["姓名"].value == row["name"]
    assert header[len(table.columns) :] == [ADDED]  # the added column, where the clerk put it
    notes = [cells[3 + i][ADDED].value for i in range(rows.height)]
    assert notes[:4] + notes[5:] == [None, "行动不便", None, "行动不便", "行动不便"]
    # the name and ID typed into the added column: scrubbed, the rest of the note as typed
    assert notes[4] == "[姓名已隐去]之女代签，身份证[证件号已隐去]"


def test_dates_and_identifiers_of_the_generated_ledgers(outboxed):
    home, _ = outboxed
    contracts = load_contracts()
    books = list((home.outbox / "ledgers").rglob("*.xlsx"))
    seen = {"date": 0, "text": 0}
    for path in books:
        for sheet in _data_sheets(openpyxl.load_workbook(path)):
            header, cells = _rows(sheet)
            table = next(t for t in contracts.ledgers if all(_header_of(header, c) for c in t.columns if c.required))
            for row in cells.values():
                for column in [c for c in table.columns if _header_of(header, c)]:
                    cell = row[_header_of(header, column)]
                    if column.type == "date" and cell.value is not None:
                        # no '2026-10-31 00:00:00' and no '46338': only text no date can be read from
                        assert cell.is_date or not (str(cell.value)[:4].isdigit()), (path.name, cell.value)
                        seen["date"] += cell.is_date
                    if column.format in ("person_id", "phone"):
                        assert (
                            cell.number_format == "@"
                            and cell.data_type in ("s", "n")
                            and not isinstance(cell.value, (int, float))
                        )
                        seen["text"] += cell.value is not None
    assert seen["date"] > 50 and seen["text"] > 50


def test_workbooks_are_regenerated_whole(clerk, tmp_path):
    home, _, table, _, clean, path = clerk
    copy = Home.at(tmp_path / "home")
    shutil.copytree(home.root, copy.root)
    stale = copy.outbox / "ledgers" / "civil_affairs" / "上月台账_错误标注.xlsx"
    stale.write_bytes(b"stale")
    # the clerk sends the file again, corrected: its issues close and its workbook goes
    _deliver(copy, table, clean, Path(path).name)
    process_source(copy, "ledgers")
    build_marts(copy)
    again = run_loop(copy)
    assert (again.filter(pl.col("file_path") == path)["status"] != "open").all()
    write_outbox(copy, again)
    assert not stale.exists() and not _workbook(copy, path).exists()
    before = {p.relative_to(home.outbox) for p in (home.outbox / "ledgers").rglob("*.xlsx")}
    after = {p.relative_to(copy.outbox) for p in (copy.outbox / "ledgers").rglob("*.xlsx")}
    assert after == before - {_workbook(home, path).relative_to(home.outbox)}


def test_a_workbook_is_made_again_when_the_names_masked_in_it_change_not_whenever_a_name_is_learned(
    clerk, tmp_path, monkeypatch
):
    """A day's police snapshot brings thousands of names; a workbook depends on them only through
    the names masked in its own free text (the clerk's notes: 行动不便 on every other row)."""
    import redwall.quality.outbox as outbox

    home, issues, _, _, _, path = clerk
    copy = Home.at(tmp_path / "home")
    shutil.copytree(home.root, copy.root)
    learned = list(outbox.known_names(copy))

    def written(new: list[str]) -> set[Path]:
        books = list((copy.outbox / "ledgers").rglob("*.xlsx"))
        stamps = {book: book.stat().st_mtime_ns for book in books}
        monkeypatch.setattr(outbox, "known_names", lambda _: [*learned, *new])
        write_outbox(copy, issues)
        return {book for book in books if book.stat().st_mtime_ns != stamps[book]}

    assert len(list((copy.outbox / "ledgers").rglob("*.xlsx"))) > 1
    assert written(["欧阳从未见"]) == set()  # in no workbook's text
    mine = _workbook(copy, path)
    assert mine in written(["欧阳从未见", "不便"])  # in the clerk's note
    assert "行动[姓名已隐去]" in _strings(mine) and "行动不便" not in _strings(mine)


def _strings(path: Path, sheets=None) -> set[str]:
    book = openpyxl.load_workbook(path)
    return {
        c
        for s in (sheets(book) if sheets else book.worksheets)
        for row in s.iter_rows(values_only=True)
        for c in row
        if isinstance(c, str)
    }


def test_personal_values_go_to_the_sending_department_only(clerk):
    home = clerk[0]
    contracts = load_contracts()
    delivered = [t for t in contracts.ledgers if lake.read(home, "bronze", t.bronze_name).width]  # no schedule here
    bronze = (
        pl.concat(
            [
                lake.read(home, "bronze", t.bronze_name).select(
                    "_source_file", pl.concat_list(pl.col(c.name) for c in t.columns).alias("values")
                )
                for t in delivered
            ],
            how="vertical",
        )
        .explode("values")
        .drop_nulls()
    )
    persons = pl.read_parquet(home.truth / "persons.parquet")
    personal = set(persons["id_number"].drop_nulls()) | {p for p in persons["phone"].drop_nulls() if len(p) >= 7}
    personal |= {
        v
        for t in delivered
        for c in t.columns
        if c.pii in ("id_number", "phone", "address")
        for v in lake.read(home, "bronze", t.bronze_name)[c.name].drop_nulls()
        if len(v) >= 7
    }
    assert len(personal) > 100
    # the rectification lists and the workbooks' issue sheets: rows, columns and messages only
    for path in (home.outbox / "rectification").rglob("*.xlsx"):
        assert not _strings(path) & personal, path.name
    books = list((home.outbox / "ledgers").rglob("*.xlsx"))
    held = 0
    for book in books:
        assert not _strings(book, lambda b: [s for s in b if s.title == ISSUES]) & personal, book.name
        # the data sheets hold the file's own rows: no value from another file, of any department
        department = book.parent.name
        file = next(
            p
            for p in bronze["_source_file"].unique()
            if Path(p).parent.name == department and f"{Path(p).stem}_错误标注.xlsx" == book.name
        )
        own = set(bronze.filter(pl.col("_source_file") == file)["values"])
        data = _strings(book, lambda b: [s for s in b if s.title != ISSUES])
        assert data & personal <= own, book.name
        held += len(data & personal)
    assert held > 50  # the check has something to check
