"""Ledger templates (台账模板): the workbook a department's clerk fills, generated from the ledger
contract so that template, ingestion and catalogue can never disagree about a column.

Layout of a template, for a clerk working without help:

- the data sheet (``template.sheet``): a title row, then the header row (required columns marked
  ``*`` on a red ground; the ingestion ignores the mark), data from row 3. Text columns are text
  cells (``@``) so Excel cannot turn an 18-digit ID into 1.10102E+17, date columns are date cells
  with a date check, code columns offer a drop-down, and every column shows its hint when a cell is
  selected. The sheet is protected so title and header cannot be edited by accident, with the data
  columns unlocked; it has no password (protection against slips, not against the clerk);
- 填写说明: what each column means, whether it is required, its allowed values and format, and one
  example row built from the columns' ``example``;
- 模板标识 (very hidden): the template's identity and the drop-down lists.

Identity and version travel inside the file: the custom document properties ``redwall_table`` and
``redwall_version``, repeated in the hidden sheet for tools that drop custom properties.
:func:`template_identity` reads them back from a delivered workbook.

Versions: ``template.version`` in the ledger's YAML is the version. It must change whenever what a
template lays out changes; :func:`template_fingerprint` digests that, and
``redwall/template_versions.json`` records each version's fingerprint and headers. A test fails when
the contract drifted from its recorded version; after bumping the version,
``redwall regenerate templates`` records it. The recorded headers of old versions are what
:func:`template_compatibility` judges a delivered workbook by.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, TypedDict

import openpyxl
import polars as pl
from openpyxl.packaging.custom import IntProperty, StringProperty
from openpyxl.styles import Alignment, Border, Font, PatternFill, Protection, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from redwall import lake
from redwall.home import Home
from redwall.offline import FOLDER_MODE, write_shared
from redwall.schemas import Column, Contracts, Table, code_lists, load_contracts

INSTRUCTIONS_SHEET = "填写说明"
IDENTITY_SHEET = "模板标识"
# Sheets of a template that hold no ledger rows: the ingestion may pass over them silently.
AUXILIARY_SHEETS = (INSTRUCTIONS_SHEET, IDENTITY_SHEET)
TABLE_PROPERTY, VERSION_PROPERTY = "redwall_table", "redwall_version"
SPREADSHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
TITLE_ROW, HEADER_ROW, FIRST_DATA_ROW = 1, 2, 3
LAST_ROW = 1_048_576  # drop-downs and checks cover every data row Excel has
VERSIONS_FILE = Path(__file__).with_name("template_versions.json")
RETIRED = "历史版本"  # superseded templates move here, out of the clerks' way

# Code lists that arrive with the district grid register: list → (value column, order column).
# Clerks write community names (as the ledgers' examples do) and grid codes.
DISTRICT_GRID = "district.grid"
DYNAMIC_VALUES = {"community": ("community_name", "community_code"), "grid": ("grid_code", "grid_code")}

FORMAT_HINTS = {
    "person_id": "18位公民身份号码，末位可为X；单元格已设为文本，直接输入即可",
    "phone": "11位手机号码，或带区号的固定电话",
    "uscc": "18位统一社会信用代码，见营业执照",
    "grid_code": "15位单元网格编码",
}
TYPE_HINTS = {"date": "日期，如2026-11-02", "int": "整数", "float": "数字，不带单位", "bool": "是或否"}
DATE_FORMAT = "yyyy-mm-dd"
EXCEL_EPOCH = dt.date(1899, 12, 30)
# From March 1900: Excel counts a 29 February 1900 that never was, so earlier serials are off by one.
DATE_RANGE = (dt.date(1900, 3, 1), dt.date(2099, 12, 31))

REQUIRED_FILL = PatternFill("solid", fgColor="FCE4D6")
OPTIONAL_FILL = PatternFill("solid", fgColor="DDEBF7")
REQUIRED_FONT = Font(bold=True, color="C00000")
HEADER_FONT = Font(bold=True)
TITLE_FONT = Font(bold=True, size=14)
THIN = Side(style="thin", color="A6A6A6")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
WRAP = Alignment(wrap_text=True, vertical="center")
CENTRE = Alignment(horizontal="center", vertical="center", wrap_text=True)


# -- versions ------------------------------------------------------------------------------------
def template_fingerprint(table: Table) -> str:
    """A digest of what a template lays out: its sheet and, per column in order, the name, header,
    type, required flag, code list and format. Examples and descriptions only feed the
    instructions, so they are left out: editing them needs no new version."""
    layout = [
        table.template_sheet,
        [[c.name, c.label, c.type, c.required, c.codes, c.format] for c in table.columns],
    ]
    return hashlib.sha256(json.dumps(layout, ensure_ascii=False).encode()).hexdigest()[:16]


def recorded_versions(path: Path = VERSIONS_FILE) -> dict[str, dict[str, dict]]:
    """``{table key: {version: {"fingerprint": …, "headers": {column: header}}}}``, as committed."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _bump_message(table: Table) -> str:
    version = table.template_version
    return (
        f"{table.key}: the template's columns changed since version {version} was recorded. Bump "
        f"template.version of table {table.name} in schemas/ledgers/ to {version + 1}, then run "
        f"`redwall regenerate templates` and commit {VERSIONS_FILE.name}."
    )


def template_version_problems(contracts: Contracts | None = None, path: Path = VERSIONS_FILE) -> list[str]:
    """What a developer must fix before a release: ledgers whose current template version is not
    recorded (in ``path``), or was recorded with other columns (the version was not bumped)."""
    recorded = recorded_versions(path)
    problems = []
    for table in (contracts or load_contracts()).ledgers:
        known = recorded.get(table.key, {}).get(str(table.template_version))
        if known is None:
            problems.append(
                f"{table.key}: template version {table.template_version} is not recorded; "
                f"run `redwall regenerate templates` and commit {VERSIONS_FILE.name}."
            )
        elif known["fingerprint"] != template_fingerprint(table):
            problems.append(_bump_message(table))
    return problems


def record_template_versions(contracts: Contracts | None = None, path: Path = VERSIONS_FILE) -> None:
    """Record each ledger's current template version (in ``path``). A recorded version is never
    rewritten: a contract that changed without a version bump is refused."""
    recorded = recorded_versions(path)
    for table in (contracts or load_contracts()).ledgers:
        entry = {"fingerprint": template_fingerprint(table), "headers": {c.name: c.label for c in table.columns}}
        known = recorded.setdefault(table.key, {}).setdefault(str(table.template_version), entry)
        if known["fingerprint"] != entry["fingerprint"]:
            raise ValueError(_bump_message(table))
    path.write_text(json.dumps(recorded, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def template_compatibility(table: Table, version: int) -> str:
    """How a workbook made from template ``version`` of ``table`` stands against the contract:

    - ``current``: it is the current version;
    - ``compatible``: an older version whose every column still exists under the same name and
      header, and which has every column the contract now requires — it reads without loss;
    - ``newer``: a version after the current one (made by a newer release than this one);
    - ``outdated``: anything else, including an older version this release never recorded.
    """
    if version == table.template_version:
        return "current"
    if version > table.template_version:
        return "newer"
    recorded = recorded_versions().get(table.key, {}).get(str(version))
    if recorded is None:
        return "outdated"
    headers = {c.name: c.label for c in table.columns}
    kept = all(headers.get(name) == header for name, header in recorded["headers"].items())
    complete = all(c.name in recorded["headers"] for c in table.columns if c.required)
    return "compatible" if kept and complete else "outdated"


# -- identity ------------------------------------------------------------------------------------
def template_identity(path: str | Path) -> tuple[str, int] | None:
    """``(table key, template version)`` of a delivered workbook made from one of our templates,
    else ``None`` (not a workbook, or not ours). Reads the custom properties straight from the zip;
    only a workbook that lost them (re-saved by a tool that drops them) is opened, read-only, for
    the hidden identity sheet. Works whatever the file is named (clerks name xlsx files .xls)."""
    try:
        with zipfile.ZipFile(path) as z:
            identity = _custom_properties(z)
            marked = TABLE_PROPERTY in identity or IDENTITY_SHEET in _sheet_names(z)
        if not marked:
            return None
        found: Mapping[str, object] = identity if TABLE_PROPERTY in identity else _identity_sheet(Path(path))
        version = found[VERSION_PROPERTY]
        if not isinstance(version, int | float | str):  # emptied, or a date typed over it: not ours
            return None
        return str(found[TABLE_PROPERTY]), int(version)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, TypeError, ET.ParseError):
        return None


def _custom_properties(z: zipfile.ZipFile) -> dict[str, str | None]:
    if "docProps/custom.xml" not in z.namelist():
        return {}
    root = ET.fromstring(z.read("docProps/custom.xml"))
    return {name: p[0].text for p in root if len(p) and (name := p.get("name")) is not None}


def _sheet_names(z: zipfile.ZipFile) -> set[str]:
    root = ET.fromstring(z.read("xl/workbook.xml"))
    return {name for sheet in root.iter(f"{{{SPREADSHEET_NS}}}sheet") if (name := sheet.get("name")) is not None}


def _identity_sheet(path: Path) -> dict[str, object]:
    # From a file object: openpyxl refuses a path whose name does not end in .xlsx.
    with path.open("rb") as f:
        workbook = openpyxl.load_workbook(f, read_only=True)
        try:
            rows = workbook[IDENTITY_SHEET].iter_rows(min_row=1, max_row=2, max_col=2, values_only=True)
            return {str(name): value for name, value in rows}
        finally:
            workbook.close()


# -- drop-down values ----------------------------------------------------------------------------
def dynamic_code_values(home: Home, contracts: Contracts | None = None) -> dict[str, list[str]]:
    """Values of the code lists that come with the district grid register (communities, grids),
    from its current silver rows; empty when the register has not arrived yet."""
    grid = (contracts or load_contracts()).table(DISTRICT_GRID)
    if not lake.exists(home, "silver", grid.bronze_name):
        return {}
    current = lake.scan(home, "silver", grid.bronze_name).filter(pl.col("_valid_to").is_null())
    values = {}
    for codes, (value, order) in DYNAMIC_VALUES.items():
        frame = (
            current.select(value, pl.col(order).alias("_order"))
            .drop_nulls(value)
            .unique()
            .sort("_order", value)
            .collect()
            .unique(value, keep="first", maintain_order=True)
        )
        if frame.height:
            values[codes] = frame[value].to_list()
    return values


def code_values(column: Column, dynamic: dict[str, list[str]]) -> list[str]:
    """The allowed values of a code column (names, as clerks write them); empty if not known."""
    if column.codes is None:
        return []
    return list(code_lists().get(column.codes, {}).values()) or dynamic.get(column.codes, [])


# -- the workbook --------------------------------------------------------------------------------
def template_file_name(table: Table) -> str:
    return f"{table.title}_v{table.template_version}.xlsx"


def build_template(table: Table, dynamic: dict[str, list[str]]) -> openpyxl.Workbook:
    """The template workbook of a ledger; ``dynamic``: values of the district code lists
    (:func:`dynamic_code_values`), a list missing there gets no drop-down."""
    workbook = openpyxl.Workbook()
    data = workbook.active
    assert isinstance(data, Worksheet)  # a new workbook is made with one sheet, active
    data.title = table.template_sheet
    lists = workbook.create_sheet(IDENTITY_SHEET)
    stamp_identity(workbook, lists, table)
    _data_sheet(data, table, dynamic, lists)
    _instructions(workbook.create_sheet(INSTRUCTIONS_SHEET, index=1), table, dynamic)
    lists.sheet_state = "veryHidden"
    workbook.active = 0
    return workbook


def stamp_identity(workbook: openpyxl.Workbook, sheet: Worksheet, table: Table) -> None:
    version = table.template_version
    # openpyxl's stubs lack the workbook's custom document properties (openpyxl 3.1 has them)
    workbook.custom_doc_props.append(StringProperty(name=TABLE_PROPERTY, value=table.key))  # type: ignore[attr-defined]
    workbook.custom_doc_props.append(IntProperty(name=VERSION_PROPERTY, value=version))  # type: ignore[attr-defined]
    sheet.append([TABLE_PROPERTY, table.key])
    sheet.append([VERSION_PROPERTY, version])
    sheet.protection.sheet = True


def _header(column: Column) -> str:
    return f"*{column.label}" if column.required else column.label


def _hint(column: Column, values: list[str]) -> str:
    """What a clerk needs to know to fill the column, in one line."""
    parts = [column.description or FORMAT_HINTS.get(column.format or "") or TYPE_HINTS.get(column.type)]
    if column.codes:
        parts.append(
            "从下拉列表中选择" if values else "发布模板时尚未收到区级网格数据，未设下拉列表，请按区级网格底图填写"
        )
    return "；".join(filter(None, parts))


def _style_header(cell, column: Column | None) -> None:
    """A header cell; a required column's is red on a light red ground."""
    required = column is not None and column.required
    cell.font = REQUIRED_FONT if required else HEADER_FONT
    cell.fill = REQUIRED_FILL if required else OPTIONAL_FILL
    cell.alignment, cell.border = CENTRE, BOX


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _width(column: Column) -> float:
    widest = max(_display_width(_header(column)), _display_width(str(column.example or "")))
    return min(max(widest + 4, 10), 40)


def _number_format(column: Column) -> str | None:
    """Text for every text column (IDs, phones, codes keep their digits), date cells for dates."""
    if column.type in ("string", "code"):
        return "@"
    return DATE_FORMAT if column.type == "date" else None


def _data_sheet(sheet: Worksheet, table: Table, dynamic: dict[str, list[str]], lists: Worksheet) -> None:
    columns = table.columns
    last = get_column_letter(len(columns))
    department = table.department_name
    sheet.merge_cells(f"A{TITLE_ROW}:{last}{TITLE_ROW}")
    title = sheet.cell(TITLE_ROW, 1, f"{table.title}　（填报单位：{department}　模板第{table.template_version}版）")
    title.font, title.alignment = TITLE_FONT, CENTRE
    sheet.row_dimensions[TITLE_ROW].height = 30
    sheet.row_dimensions[HEADER_ROW].height = 32
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        _style_header(sheet.cell(HEADER_ROW, index, _header(column)), column)
        # The column's style is what Excel gives every cell a clerk types in: unlocked, and text or date.
        dimension = sheet.column_dimensions[letter]
        dimension.width = _width(column)
        dimension.protection = Protection(locked=False)
        if number_format := _number_format(column):
            dimension.number_format = number_format
        values = code_values(column, dynamic)
        validation = column_validation(column, values, code_list_range(lists, column, values))
        validation.add(f"{letter}{FIRST_DATA_ROW}:{letter}{LAST_ROW}")
        sheet.add_data_validation(validation)
    sheet.freeze_panes = f"A{FIRST_DATA_ROW}"
    protection = sheet.protection
    protection.sheet = True
    # Clerks may add and remove rows, sort, and resize; headers and title stay as issued.
    protection.insertRows = protection.deleteRows = protection.sort = protection.autoFilter = False
    protection.formatColumns = protection.formatRows = False


def code_list_range(lists: Worksheet, column: Column, values: list[str]) -> str | None:
    """Write a drop-down's values into the hidden sheet (a list longer than 255 characters cannot
    live in the validation itself) and return their range."""
    if not values:
        return None
    index = lists.max_column + 2  # a blank column between blocks
    letter = get_column_letter(index)
    lists.cell(1, index, column.codes)
    for row, value in enumerate(values, start=2):
        lists.cell(row, index, value).number_format = "@"
    return f"'{IDENTITY_SHEET}'!${letter}$2:${letter}${len(values) + 1}"


class _Hint(TypedDict):
    """What every column's validation says: the hint on selecting a cell, the title of its error."""

    allow_blank: bool
    showInputMessage: bool
    promptTitle: str
    prompt: str | None
    showErrorMessage: bool
    errorTitle: str


def column_validation(column: Column, values: list[str], list_range: str | None) -> DataValidation:
    """One validation per column (Excel allows one per cell): a drop-down for code columns, a date
    check for dates, else just the hint shown when a cell is selected."""
    required = "（必填）" if column.required else ""
    common: _Hint = {
        "allow_blank": True,
        "showInputMessage": True,
        "promptTitle": f"{column.label}{required}"[:32],
        "prompt": _hint(column, values)[:255] or None,
        "showErrorMessage": True,
        "errorTitle": column.label[:32],
    }
    if list_range:
        # District lists may lag behind a new grid: warn, do not forbid. Static code lists are closed.
        style: Literal["warning", "stop"] = "warning" if column.codes in DYNAMIC_VALUES else "stop"
        return DataValidation(type="list", formula1=list_range, errorStyle=style, error="请从下拉列表中选择", **common)
    if column.type == "date":
        low, high = ((day - EXCEL_EPOCH).days for day in DATE_RANGE)
        return DataValidation(
            type="date",
            operator="between",
            formula1=str(low),
            formula2=str(high),
            error="请填写日期，如2026-11-02",
            **common,
        )
    return DataValidation(**common)


def _instructions(sheet: Worksheet, table: Table, dynamic: dict[str, list[str]]) -> None:
    data_sheet = table.template_sheet
    notes = [
        f"{table.title} 填写说明（模板第{table.template_version}版）",
        f"用途：{table.abstract}",
        f"1. 请在「{data_sheet}」工作表第{FIRST_DATA_ROW}行起逐行填写，一行一条记录；标题行和表头不要修改、不要删除。",
        "2. 表头带 * 、红底的列为必填项，必填项为空的行会被退回。",
        "3. 证件号码、电话、编码等列已设为文本格式，请直接输入，不要改为数值格式："
        "Excel会把18位号码变成1.10102E+17，号码无法恢复，整行会被退回。",
        "4. 日期列请填写如2026-11-02的日期；带下拉箭头的列请从列表中选择。",
        "5. 选中单元格时会显示该列的填写提示。下表逐列说明，最下方是一行填写示例（只作参考，请勿在本页填写）。",
        "6. 请使用大数据中心下发的最新版模板；填好后按.xlsx格式报送至本部门的台账报送目录。",
        "7. 本台账按整表报送：每次请报送完整的名单，名单中没有的记录会被置为失效。"
        if table.load == "snapshot"
        else "7. 同一记录再次报送时以最新一次为准；已接收的记录无需重复报送。",
    ]
    for row, text in enumerate(notes, start=1):
        sheet.cell(row, 1, text).alignment = Alignment(vertical="center")
    sheet.cell(1, 1).font = TITLE_FONT

    header_row = len(notes) + 2
    for index, header in enumerate(("列", "列名", "是否必填", "填写要求", "允许值", "示例"), start=1):
        _style_header(sheet.cell(header_row, index, header), None)
    for offset, column in enumerate(table.columns, start=1):
        values = code_values(column, dynamic)
        described = [
            get_column_letter(offset),
            column.label,
            "必填" if column.required else "选填",
            _hint(column, values),
            _allowed(column, values),
            column.example,
        ]
        for index, value in enumerate(described, start=1):
            cell = sheet.cell(header_row + offset, index, value)
            cell.alignment, cell.border = WRAP, BOX
            if index == 6:
                cell.number_format = _number_format(column) or "General"
        if column.required:
            sheet.cell(header_row + offset, 3).font = REQUIRED_FONT

    # The example row: headers carry the column letter, so the ingestion never takes this page for
    # the ledger itself; cells are formatted as in the data sheet.
    example_row = header_row + len(table.columns) + 3
    sheet.cell(example_row - 1, 1, "填写示例：").font = HEADER_FONT
    for index, column in enumerate(table.columns, start=1):
        _style_header(sheet.cell(example_row, index, f"{_header(column)}（{get_column_letter(index)}列）"), column)
        example = sheet.cell(example_row + 1, index, column.example)
        example.number_format = _number_format(column) or "General"
        example.border = BOX
    # Widths suit the column table above and the example row below alike.
    widths = (22, 18, 10, 44, 36, 24)
    for index in range(1, max(len(widths), len(table.columns)) + 1):
        fitting: list[float] = [widths[index - 1]] if index <= len(widths) else []
        fitting += [_width(table.columns[index - 1])] if index <= len(table.columns) else []
        sheet.column_dimensions[get_column_letter(index)].width = max(fitting)
    sheet.protection.sheet = True


def _allowed(column: Column, values: list[str]) -> str:
    if not column.codes:
        return ""
    if not values:
        return "以区级网格底图为准"
    return "、".join(values) if len(values) <= 20 else f"见下拉列表（共{len(values)}项，如{values[0]}）"


# -- publishing ----------------------------------------------------------------------------------
def publish_templates(home: Home, contracts: Contracts | None = None) -> dict[str, dict]:
    """Write every ledger's current template to ``published/templates/<department>/<title>_v<N>.xlsx``
    and move its superseded versions to ``历史版本`` beside it. Returns, per ledger, its version,
    path (relative to the data home) and which drop-downs had no values."""
    contracts = contracts or load_contracts()
    dynamic = dynamic_code_values(home, contracts)
    published = {}
    for table in contracts.ledgers:
        folder = home.published / "templates" / table.department_code
        path = folder / template_file_name(table)
        write_shared(path, build_template(table, dynamic).save, home.published)
        for older in folder.glob(f"{table.title}_v*.xlsx"):
            if older != path:
                (folder / RETIRED).mkdir(exist_ok=True)
                (folder / RETIRED).chmod(FOLDER_MODE)
                os.replace(older, folder / RETIRED / older.name)
        published[table.key] = {
            "version": table.template_version,
            "department": table.department_code,
            "path": str(path.relative_to(home.root)),
            "without_dropdown": [c.label for c in table.columns if c.codes and not code_values(c, dynamic)],
        }
    return published
