"""Ledger templates: generated from the contracts, filled by a clerk, recognised again on delivery."""

from __future__ import annotations

import datetime as dt
import shutil
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from openpyxl.utils import get_column_letter

from redwall import lake
from redwall.home import Home
from redwall.ingest.formats import read_file
from redwall.ingest.layout import blocks
from redwall.schemas import DYNAMIC_CODES, HERE, code_lists, load_contracts
from redwall.templates import (
    AUXILIARY_SHEETS,
    DYNAMIC_VALUES,
    FIRST_DATA_ROW,
    HEADER_ROW,
    IDENTITY_SHEET,
    INSTRUCTIONS_SHEET,
    REQUIRED_FILL,
    RETIRED,
    publish_templates,
    template_compatibility,
    template_fingerprint,
    template_identity,
    template_version_problems,
)

COMMUNITIES = ["府右街南社区", "西交民巷社区"]
GRIDS = ["110102001001001", "110102001001002", "110102001002001"]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Home:
    """A home whose district grid register has arrived twice (one grid closed since: not offered)."""
    from redwall.ingest import process_source

    home = Home.at(tmp_path_factory.mktemp("home")).ensure()
    grids = pl.DataFrame(
        {
            "grid_code": [*GRIDS, "110102001009001"],
            "community_code": ["110102001001", "110102001001", "110102001002", "110102001009"],
            "community_name": [COMMUNITIES[0], COMMUNITIES[0], COMMUNITIES[1], "已撤并社区"],
            "street_code": ["110102001"] * 4,
            "area_m2": [52000.0] * 4,
            "worker_ids": ["WG110102001001"] * 4,
        }
    )
    home.inbox("district").mkdir(parents=True, exist_ok=True)
    grids.write_parquet(home.inbox("district") / "grid_20261107.parquet")
    grids.head(3).write_parquet(home.inbox("district") / "grid_20261114.parquet")
    process_source(home, "district")
    return home


@pytest.fixture(scope="module")
def published(home) -> dict[str, dict]:
    return publish_templates(home)


def _data_sheet(home, published, table):
    workbook = openpyxl.load_workbook(home.root / published[table.key]["path"])
    return workbook, workbook[table.template["sheet"]]


def _validations(sheet) -> dict[str, object]:
    """Column letter → the data validation on its data area."""
    return {str(dv.sqref).split(":")[0].rstrip("0123456789"): dv for dv in sheet.data_validations.dataValidation}


def _list_values(workbook, formula: str) -> list[str]:
    sheet_name, cells = formula.split("!")
    assert sheet_name.strip("'") == IDENTITY_SHEET
    return [c.value for (c,) in workbook[IDENTITY_SHEET][cells.replace("$", "")]]


def test_every_ledger_gets_its_template_where_clerks_find_it(home, published):
    ledgers = load_contracts().ledgers
    assert set(published) == {t.key for t in ledgers}
    for table in ledgers:
        path = home.root / published[table.key]["path"]
        assert (
            path
            == home.published
            / "templates"
            / table.department["code"]
            / f"{table.title}_v{table.template['version']}.xlsx"
        )
        assert published[table.key]["without_dropdown"] == []


def test_header_marks_required_columns(home, published):
    for table in load_contracts().ledgers:
        _, sheet = _data_sheet(home, published, table)
        assert table.title in sheet["A1"].value
        headers = [c.value for c in sheet[2]]
        assert headers == [f"*{c.label}" if c.required else c.label for c in table.columns]
        for cell, column in zip(sheet[2], table.columns, strict=True):
            assert (cell.fill.fgColor.rgb == REQUIRED_FILL.fgColor.rgb) == column.required, column.name
        assert sheet.freeze_panes == "A3"


def test_code_columns_offer_their_values(home, published):
    dynamic = {"community": COMMUNITIES, "grid": GRIDS}
    assert set(DYNAMIC_VALUES) == set(DYNAMIC_CODES)
    for table in load_contracts().ledgers:
        workbook, sheet = _data_sheet(home, published, table)
        validations = _validations(sheet)
        for index, column in enumerate(table.columns, start=1):
            validation = validations[get_column_letter(index)]
            if column.codes:
                expected = dynamic.get(column.codes) or list(code_lists()[column.codes].values())
                assert validation.type == "list", column.name
                assert _list_values(workbook, validation.formula1) == expected
            elif column.type == "date":
                assert validation.type == "date" and validation.operator == "between"
            assert validation.promptTitle.startswith(column.label)


def test_identifiers_are_text_and_dates_are_dates(home, published):
    for table in load_contracts().ledgers:
        _, sheet = _data_sheet(home, published, table)
        for index, column in enumerate(table.columns, start=1):
            dimension = sheet.column_dimensions[get_column_letter(index)]
            if column.format in ("person_id", "phone", "uscc", "grid_code"):
                assert dimension.number_format == "@", column.name
            if column.type == "date":
                assert dimension.number_format == "yyyy-mm-dd", column.name
            assert dimension.protection.locked is False  # the data area is open to the clerk


def test_title_and_header_are_protected(home, published):
    for table in load_contracts().ledgers:
        workbook, sheet = _data_sheet(home, published, table)
        assert sheet.protection.sheet
        assert not sheet.protection.insertRows and not sheet.protection.deleteRows  # rows: allowed
        assert sheet["A1"].protection.locked and sheet["A2"].protection.locked
        assert workbook[INSTRUCTIONS_SHEET].protection.sheet
        assert workbook[IDENTITY_SHEET].sheet_state == "veryHidden"


def test_identity_and_version_travel_inside_the_file(home, published):
    for table in load_contracts().ledgers:
        path = home.root / published[table.key]["path"]
        assert template_identity(path) == (table.key, table.template["version"])
        workbook = openpyxl.load_workbook(path)
        properties = {p.name: p.value for p in workbook.custom_doc_props}
        assert properties == {"redwall_table": table.key, "redwall_version": table.template["version"]}


def test_identity_survives_a_tool_that_drops_custom_properties(home, published, tmp_path):
    table = load_contracts().table("ledgers.fire_hazard")
    original = home.root / published[table.key]["path"]
    stripped = tmp_path / "重新保存的台账.xls"  # clerks name workbooks .xls
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(stripped, "w") as target:
        for member in source.namelist():
            if member != "docProps/custom.xml":
                target.writestr(member, source.read(member))
    assert template_identity(stripped) == (table.key, table.template["version"])


def test_foreign_files_have_no_identity(tmp_path):
    workbook = openpyxl.Workbook()
    workbook.active.append(["姓名", "公民身份号码"])
    workbook.save(tmp_path / "own.xlsx")
    (tmp_path / "ledger.csv").write_text("姓名,公民身份号码\n", encoding="utf-8")
    (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04 not really a zip")
    for name in ("own.xlsx", "ledger.csv", "broken.xlsx", "missing.xlsx"):
        assert template_identity(tmp_path / name) is None, name


def test_instructions_explain_every_column_with_an_example_row(home, published):
    for table in load_contracts().ledgers:
        workbook, _ = _data_sheet(home, published, table)
        sheet = workbook[INSTRUCTIONS_SHEET]
        rows = [[c.value for c in row] for row in sheet.iter_rows()]
        table_header = next(
            i for i, row in enumerate(rows) if row[:6] == ["列", "列名", "是否必填", "填写要求", "允许值", "示例"]
        )
        for offset, column in enumerate(table.columns, start=1):
            _, label, required, _, allowed, example = rows[table_header + offset][:6]
            assert (label, required) == (column.label, "必填" if column.required else "选填")
            assert example == column.example or example == dt.datetime.combine(column.example, dt.time())
            if column.codes:
                assert allowed
        example_row = rows[-1][: len(table.columns)]
        assert [v.date() if isinstance(v, dt.datetime) else v for v in example_row] == [
            c.example for c in table.columns
        ]


def test_without_the_grid_register_the_dropdown_is_left_out_and_said_so(tmp_path):
    home = Home.at(tmp_path).ensure()
    published = publish_templates(home)
    table = load_contracts().table("ledgers.elderly_alone")
    assert published[table.key]["without_dropdown"] == ["所属社区"]
    workbook = openpyxl.load_workbook(home.root / published[table.key]["path"])
    community = get_column_letter([c.name for c in table.columns].index("community") + 1)
    assert _validations(workbook[table.template["sheet"]])[community].type is None
    instructions = [str(c.value) for row in workbook[INSTRUCTIONS_SHEET].iter_rows() for c in row if c.value]
    assert any("未设下拉列表" in text for text in instructions)


def test_a_filled_template_keeps_identifiers_as_text_and_is_recognised(home, published, tmp_path):
    contracts = load_contracts()
    table = contracts.table("ledgers.elderly_alone")
    workbook, sheet = _data_sheet(home, published, table)
    # What a clerk types: an all-digit ID (the kind Excel would round), a phone, a date.
    typed = {
        "name": "王秀兰",
        "id_number": "110102194003120011",
        "community": COMMUNITIES[1],
        "address": "西城区西交民巷8号",
        "phone": "13912345678",
        "living_situation": "独居",
        "last_visit_on": dt.date(2026, 11, 2),
    }
    for index, column in enumerate(table.columns, start=1):
        cell = sheet.cell(3, index, typed.get(column.name))
        cell.number_format = sheet.column_dimensions[cell.column_letter].number_format  # Excel applies it
    delivered = tmp_path / "西交民巷社区独居老人台账（2026年11月）.xls"
    workbook.save(delivered)

    assert template_identity(delivered) == (table.key, table.template["version"])
    with delivered.open("rb") as f:  # by content: openpyxl refuses the .xls name
        reopened = openpyxl.load_workbook(f)[table.template["sheet"]]
    assert reopened["B3"].value == "110102194003120011" and reopened["B3"].data_type == "s"
    assert reopened["E3"].value == "13912345678" and reopened["E3"].data_type == "s"

    grids = read_file(delivered)
    found, ignored = blocks(grids, [t for t in contracts.ledgers if t.department == table.department])
    assert [b.table.key for b in found] == [table.key]  # the instructions' example row is not data
    assert set(ignored) == set(AUXILIARY_SHEETS)  # what the ingestion may pass over silently
    (row,) = found[0].rows.to_dicts()
    assert row["id_number"] == "110102194003120011" and row["phone"] == "13912345678"
    assert row["_number_cell.id_number"] is False


def test_superseded_versions_move_aside(tmp_path):
    home = Home.at(tmp_path).ensure()
    table = load_contracts().table("ledgers.fire_hazard")
    folder = home.published / "templates" / table.department["code"]
    folder.mkdir(parents=True)
    (folder / f"{table.title}_v0.xlsx").write_bytes(b"old")
    publish_templates(home)
    assert (folder / RETIRED / f"{table.title}_v0.xlsx").read_bytes() == b"old"
    assert [p.name for p in folder.glob("*.xlsx")] == [f"{table.title}_v{table.template['version']}.xlsx"]


# -- versions ------------------------------------------------------------------------------------
def test_recorded_template_versions_match_the_contracts():
    problems = template_version_problems()
    assert not problems, "\n".join(problems)


def _edited_contracts(tmp_path: Path, ledger: str, edit):
    root = tmp_path / "schemas"
    shutil.copytree(HERE, root, ignore=shutil.ignore_patterns("__pycache__"))
    path = root / "ledgers" / f"{ledger}.yaml"
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    return load_contracts(root)


NEW_COLUMN = "  - {{name: note, label: 备注, type: string, required: {required}, sensitivity: public, example: 无}}\n"


def test_changed_columns_without_a_version_bump_are_caught(tmp_path):
    contracts = _edited_contracts(tmp_path, "fire_hazard", lambda y: y + NEW_COLUMN.format(required="false"))
    table = contracts.table("ledgers.fire_hazard")
    assert template_fingerprint(table) != template_fingerprint(load_contracts().table(table.key))
    (problem,) = template_version_problems(contracts)
    assert "ledgers.fire_hazard" in problem and "Bump template.version" in problem and "to 2" in problem


def test_example_edits_need_no_new_version(tmp_path):
    contracts = _edited_contracts(tmp_path, "fire_hazard", lambda y: y.replace("example: 孙立", "example: 周强"))
    assert template_version_problems(contracts) == []


def _bumped(required: str):
    """Version 2 of the fire-hazard ledger: one column more."""
    return lambda y: (
        y.replace("template: {version: 1,", "template: {version: 2,") + NEW_COLUMN.format(required=required)
    )


def test_an_older_template_stays_compatible_while_its_columns_remain(tmp_path):
    table = _edited_contracts(tmp_path, "fire_hazard", _bumped("false")).table("ledgers.fire_hazard")
    assert template_compatibility(table, 2) == "current"
    assert template_compatibility(table, 1) == "compatible"
    assert template_compatibility(table, 7) == "newer"  # made by a later release: not "too old"


def test_an_older_template_without_a_now_required_column_is_outdated(tmp_path):
    table = _edited_contracts(tmp_path, "fire_hazard", _bumped("true")).table("ledgers.fire_hazard")
    assert template_compatibility(table, 1) == "outdated"


def test_a_renamed_header_makes_older_templates_outdated(tmp_path):
    renamed = _edited_contracts(
        tmp_path,
        "fire_hazard",
        lambda y: y.replace("template: {version: 1,", "template: {version: 2,").replace(
            "label: 排查人", "label: 排查人员"
        ),
    )
    assert template_compatibility(renamed.table("ledgers.fire_hazard"), 1) == "outdated"


# -- round trip: template → clerk → watched folder → receipt, error workbook, loaded rows ----------
def _fill(sheet, table, rows: list[dict]) -> None:
    for r, values in enumerate(rows, start=FIRST_DATA_ROW):
        for c, column in enumerate(table.columns, start=1):
            if column.name in values:
                sheet.cell(r, c, values[column.name])


def test_round_trip_through_the_watched_folder(home, published):
    from redwall.identifiers import id_check_char
    from redwall.ingest import process_source
    from redwall.quality.loop import run_loop
    from redwall.quality.outbox import write_outbox

    def cid(first17: str) -> str:
        return first17 + id_check_char(first17)

    table = load_contracts().table("ledgers.elderly_alone")
    workbook, sheet = _data_sheet(home, published, table)
    good = {
        "name": "王秀兰",
        "id_number": cid("11010219400312001"),
        "community": COMMUNITIES[1],
        "address": "西城区西交民巷8号院1号楼101",
        "living_situation": "独居",
        "last_visit_on": dt.date(2026, 11, 2),
    }
    _fill(
        sheet,
        table,
        [
            good,
            {
                **good,
                "name": "赵桂兰",
                "id_number": cid("11010219380715002"),
                "last_visit_on": "2026年11月3日",
            },  # text date
            {
                **good,
                "name": "孙玉珍",
                "id_number": int(cid("11010219361224004").replace("X", "1")),
            },  # typed as a number: Excel destroys it
            {
                **good,
                "name": "周淑英",
                "id_number": cid("11010219390228006"),
                "address": None,
            },  # required cell left empty
        ],
    )
    extra = len(table.columns) + 1
    sheet.cell(HEADER_ROW, extra, "身体状况")  # a column the clerk added
    sheet.cell(FIRST_DATA_ROW, extra, "行动不便")
    folder = home.inbox("ledgers", "civil_affairs")
    folder.mkdir(parents=True, exist_ok=True)
    workbook.save(folder / "西交民巷社区独居老人台账（11月）.xlsx")

    (receipt,) = process_source(home, "ledgers")
    assert (receipt.status, receipt.rows_read, receipt.rows_accepted, receipt.rows_rejected) == (
        "partially_accepted",
        4,
        2,
        2,
    )
    assert "公民身份号码」被Excel按数字保存" in receipt.reasons_zh and "居住地址」为空" in receipt.reasons_zh
    assert "身体状况" in receipt.reasons_zh  # the added column is named, kept in bronze only
    answer = next(home.archive("ledgers").rglob("*回执*"))
    assert "拒收2行" in answer.read_text(encoding="utf-8")

    loaded = lake.read(home, "silver", "ledgers_elderly_alone")
    assert sorted(loaded["last_visit_on"].to_list()) == [dt.date(2026, 11, 2), dt.date(2026, 11, 3)]

    write_outbox(home, run_loop(home))
    (marked,) = (home.outbox / "ledgers" / "civil_affairs").glob("*错误标注*.xlsx")
    # The clerk's own rows at their rows of the sent file, under the template's header (required
    # marks and all), the bad cells explained.
    sheet = openpyxl.load_workbook(marked).worksheets[0]
    header = [c.value for c in sheet[HEADER_ROW]]
    assert header[: len(table.columns)] == [f"*{c.label}" if c.required else c.label for c in table.columns]
    commented = {
        (c.row, header[c.column - 1].lstrip("*"))
        for row in sheet.iter_rows(min_row=FIRST_DATA_ROW)
        for c in row
        if c.comment
    }
    # the first rows also name persons no population register knows (this home has none): the loop's
    # cross-source finding is marked too
    assert commented == {
        (FIRST_DATA_ROW, "公民身份号码"),
        (FIRST_DATA_ROW + 1, "公民身份号码"),
        (FIRST_DATA_ROW + 2, "公民身份号码"),
        (FIRST_DATA_ROW + 3, "居住地址"),
    }


def test_a_template_of_another_department_is_refused_with_its_name(home, published):
    from redwall.ingest import process_source

    table = load_contracts().table("ledgers.fire_hazard")  # the safety office's ledger
    folder = home.inbox("ledgers", "civil_affairs")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(home.root / published[table.key]["path"], folder / "消防台账.xlsx")
    (receipt,) = process_source(home, "ledgers")
    assert receipt.status == "rejected" and receipt.refusal == "foreign_template"
    assert "平安建设办公室" in receipt.reasons_zh and "消防隐患排查台账" in receipt.reasons_zh
    assert (home.rejected("ledgers") / "civil_affairs" / "消防台账.xlsx").exists()


def test_a_template_newer_than_this_release_is_not_called_too_old(home, published):
    from redwall.ingest import process_source
    from redwall.templates import IDENTITY_SHEET, VERSION_PROPERTY

    table = load_contracts().table("ledgers.elderly_alone")
    workbook = openpyxl.load_workbook(home.root / published[table.key]["path"])
    newer = table.template["version"] + 1
    for prop in workbook.custom_doc_props.props:
        if prop.name == VERSION_PROPERTY:
            prop.value = newer
    workbook[IDENTITY_SHEET]["B2"] = newer
    folder = home.inbox("ledgers", "civil_affairs")
    folder.mkdir(parents=True, exist_ok=True)
    workbook.save(folder / "独居老人台账（新模板）.xlsx")
    (receipt,) = process_source(home, "ledgers")
    assert receipt.status == "rejected" and receipt.refusal == "outdated_template"
    assert f"第{newer}版" in receipt.reasons_zh and "过旧" not in receipt.reasons_zh
    assert f"改用模板目录中的第{table.template['version']}版模板" in receipt.reasons_zh
