"""The resource catalogue (政务信息资源目录): one entry per data resource — every feed table, ledger
and mart — with the fields of the national catalogue guide, derived from the contracts, plus what
the lake knows about each resource now (rows, last update, quality pass rate).

Resource code (信息资源代码), ten digits ``C NNNNNNNNN``:

- ``C``: the guide's class, from ``catalogue.category``: 1 基础, 2 主题, 3 部门;
- ``NNNNNNNNN``: nine digits of a BLAKE2b digest of the table key (``source.table``).

The code depends on the class and the key only, so it is the same in every run, release and data
home, and a resource added later can never renumber an existing one. A table moved to another class
gets a new code, as the guide's class-first scheme demands. Two keys meeting on one code (odds about
one in ten million for a few dozen resources) are refused when the catalogue is built.

Versions (change tracking): ``published/catalog/catalog.json`` is the record of the last catalogue.
An entry whose information items (added, removed, renamed, retyped, re-graded, required or not) or
sharing terms (type, condition, method, openness, update cycle) differ from the record gets the next
version, and its 变更说明 says what changed; otherwise it keeps the version, date and note it had.
The record is rewritten last, so a run that fails half-way detects the same changes again.

Outputs, in ``published/catalog``: ``信息资源目录.xlsx`` (sheets 信息资源, 信息项, 部门视图),
``catalog.json`` (the record), ``catalog.jsonld`` (DCAT); and the Delta tables ``catalog/resource``,
``catalog/item`` and ``catalog/department``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import deque
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from redwall import lake
from redwall.home import Home
from redwall.ingest.inbox import LOCAL_TZ
from redwall.ingest.receipts import OPS, RECEIPTS, REJECTIONS, STATUS_ZH
from redwall.offline import write_shared
from redwall.schemas import (
    DELIVERY_GRACE,
    DYNAMIC_CODES,
    SENSITIVITY,
    Column,
    Contracts,
    Table,
    code_lists,
    load_contracts,
)

CATALOG = "catalog"  # lake layer, warehouse schema and folder under published/
WORKBOOK, RECORD, DCAT = "信息资源目录.xlsx", "catalog.json", "catalog.jsonld"
CLASSES = {"基础": "1", "主题": "2", "部门": "3"}
KINDS = {"feed": "接入数据", "ledger": "部门台账", "mart": "主题库", "view": "主题库视图", "system": "系统表"}
# The guide's data types (信息项数据类型) for the contracts' types.
DATA_TYPES = {
    "string": "字符型C",
    "code": "字符型C",
    "int": "整型I",
    "float": "浮点型F",
    "date": "日期型D",
    "datetime": "日期时间型T",
    "bool": "逻辑型L",
    "json": "备注型M",
    "datetime_utc": "日期时间型T",
    "string_list": "备注型M",
}
# XML Schema types of the contracts' types, for the DCAT distribution's column schema.
XSD_TYPES = {
    "string": "string",
    "code": "string",
    "int": "integer",
    "float": "double",
    "date": "date",
    "datetime": "dateTime",
    "bool": "boolean",
    "json": "json",
    "datetime_utc": "dateTime",
    "string_list": "string",
}
# Delivered format → (the guide's format class, detail, dct:format, IANA media type if registered).
# Ledgers arrive as workbooks from our template; marts are databases.
FORMATS = {
    "csv": ("电子表格", "CSV", "CSV", "text/csv"),
    "xlsx": ("电子表格", "xlsx", "XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "parquet": ("数据库", "Parquet数据文件", "Parquet", "application/vnd.apache.parquet"),
    "jsonl": ("自描述格式", "JSON Lines", "JSON Lines", None),
    "exchange": ("数据库", "共享交换库表，Parquet或CSV附数据字典", "Parquet/CSV", None),
    "database": ("数据库", "Delta Lake，发布至共享数据仓库", "Delta Lake", None),
}
FREQUENCIES = {
    "实时": "continuous",
    "每日": "daily",
    "每周": "weekly",
    "每月": "monthly",
    "每季度": "quarterly",
    "每半年": "semiannual",
    "每年": "annual",
    "不定期": "irregular",
}
ACCESS_RIGHTS = "http://publications.europa.eu/resource/authority/access-right/"


# The catalogue's own tables (layer ``catalog``), each also a sheet of the workbook: their columns,
# labels and layout are their contracts (schemas/system/catalog.yaml).
RESOURCE_FIELDS, ITEM_FIELDS, DEPARTMENT_FIELDS = (
    load_contracts().table(f"{CATALOG}.{name}").columns for name in ("resource", "item", "department")
)
ON_TIME, OVERDUE, NEVER = "按期", "逾期未报", "从未报送"  # a ledger's delivery against its update cycle
PROVIDES, RECEIVES = "提供", "回流使用"  # a department's ledger; a mart its ledgers feed
# What bumps an entry's version (besides its items), and which item attributes count.
TRACKED = ("sharing", "sharing_condition", "sharing_method", "open", "update_cycle")
ITEM_TRACKED = ("label", "data_type", "values", "sensitivity", "required")
LABELS = {f.name: f.label for f in (*RESOURCE_FIELDS, *ITEM_FIELDS, *DEPARTMENT_FIELDS)}


# -- codes and relations -------------------------------------------------------------------------
def resource_code(table: Table) -> str:
    """信息资源代码: class digit + nine digits of the table key's digest (see the module docstring)."""
    category = table.catalogue.get("category")
    if category not in CLASSES:
        raise ValueError(f"{table.key}: catalogue.category must be one of {list(CLASSES)}, not {category!r}")
    digest = int.from_bytes(hashlib.blake2b(table.key.encode(), digest_size=8).digest(), "big")
    return f"{CLASSES[category]}{digest % 10**9:09d}"


def _users(contracts: Contracts) -> dict[str, list[str]]:
    """Table key → the marts built from it."""
    users: dict[str, list[str]] = {}
    for mart in contracts.marts:
        for source in mart.related:
            users.setdefault(source, []).append(mart.key)
    return users


def _downstream(keys: list[str], users: dict[str, list[str]]) -> list[str]:
    """Every mart built, directly or through other marts, from ``keys``."""
    found: dict[str, None] = {}
    queue = deque(keys)
    while queue:
        for mart in users.get(queue.popleft(), []):
            if mart not in found:
                found[mart] = None
                queue.append(mart)
    return list(found)


# -- what the lake knows -------------------------------------------------------------------------
def _location(table: Table) -> tuple[str, str]:
    if table.kind in ("feed", "ledger"):
        return "silver", table.bronze_name
    return table.source, table.name  # a mart or system table lives in the layer it is named after


def _receipts(home: Home) -> pl.DataFrame:
    columns = ["receipt_id", "department", "tables", "rows_read", "rows_accepted", "received_at", "status"]
    return lake.read(home, OPS, RECEIPTS, columns=columns) if lake.exists(home, OPS, RECEIPTS) else pl.DataFrame()


def _carrying(receipts: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Receipts of the files that carried rows of ``table``."""
    return receipts.filter(pl.col("tables").list.contains(table.key)) if receipts.height else receipts


def _lake_facts(home: Home, table: Table, receipts: pl.DataFrame) -> dict[str, Any]:
    """Current rows, time of the last commit and the share of delivered rows accepted, each
    ``None`` when the lake cannot tell yet."""
    layer, name = _location(table)
    facts: dict[str, Any] = {"rows": None, "last_updated_at": None, "quality_pass_rate": None}
    if lake.exists(home, layer, name):
        frame = lake.scan(home, layer, name)
        if layer == "silver":  # silver keeps history; the current rows have no end
            frame = frame.filter(pl.col("_valid_to").is_null())
        facts["rows"] = frame.select(pl.len()).collect().item()
        (commit,) = lake.open_table(home, layer, name).history(1)
        facts["last_updated_at"] = dt.datetime.fromtimestamp(commit["timestamp"] / 1000, LOCAL_TZ)
    carried = _carrying(receipts, table)
    if carried.height and (read := carried["rows_read"].sum()):
        facts["quality_pass_rate"] = round(int(carried["rows_accepted"].sum()) / int(read), 4)
    return facts


# -- the entries ---------------------------------------------------------------------------------
def _format_key(table: Table) -> str:
    return table.format or ("xlsx" if table.kind == "ledger" else "database")


def _format(table: Table) -> str:
    """信息资源格式: the guide's class, then what exactly arrives."""
    kind, detail, *_ = FORMATS[_format_key(table)]
    details = [detail]
    if table.encoding:
        details.append(f"{table.encoding.upper()}编码")
    if table.kind == "ledger":
        details.append(f"中心下发模板第{table.template_version}版")
    return f"{kind}（{'，'.join(details)}）"


def _values(codes: str | None) -> str | None:
    if codes is None:
        return None
    if codes in DYNAMIC_CODES:
        return "以区级网格底图为准"
    return "、".join(code_lists()[codes].values())


def _items(table: Table, code: str) -> list[dict[str, Any]]:
    return [
        {
            "code": code,
            "title": table.title,
            "seq": seq,
            "label": c.label,
            "name": c.name,
            "data_type": DATA_TYPES[c.type],
            "required": c.required,
            "sensitivity": SENSITIVITY[c.sensitivity],
            "values": _values(c.codes),
            "description": c.description,
        }
        for seq, c in enumerate(table.all_columns, start=1)
    ]


def _entry(table: Table, codes: dict[str, str], users: dict[str, list[str]]) -> dict[str, Any]:
    catalogue = table.catalogue
    related = dict.fromkeys([*table.related, *users.get(table.key, [])])
    return {
        "code": codes[table.key],
        "category": catalogue["category"],
        "theme": catalogue.get("theme"),
        "title": table.title,
        "kind": KINDS[table.kind],
        "table_key": table.key,
        "provider": table.provider["name"],
        "provider_code": table.provider["code"],
        "abstract": table.abstract,
        "format": _format(table),
        "item_count": len(table.all_columns),
        "sharing": catalogue["sharing"],
        "sharing_condition": catalogue.get("condition"),
        "sharing_method": catalogue.get("method"),
        "open": bool(catalogue.get("open")),
        "update_cycle": catalogue["update_cycle"],
        "related_codes": [codes[k] for k in related],
        "items": _items(table, codes[table.key]),
    }


def _codes(contracts: Contracts) -> dict[str, str]:
    """Table key → resource code, refusing two tables on one code."""
    owners: dict[str, str] = {}
    for key, table in contracts.tables.items():
        if (clash := owners.setdefault(resource_code(table), key)) != key:
            raise ValueError(f"resource code {resource_code(table)} would name both {clash} and {key}: rename one")
    return {key: code for code, key in owners.items()}


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What changed between two versions of an entry, in the catalogue clerks' words."""
    before = {i["name"]: i for i in old["items"]}
    after = {i["name"]: i for i in new["items"]}
    notes = [f"新增信息项「{i['label']}」" for name, i in after.items() if name not in before]
    notes += [f"删除信息项「{i['label']}」" for name, i in before.items() if name not in after]
    for name in after.keys() & before.keys():
        for attr in ITEM_TRACKED:
            if before[name][attr] != after[name][attr]:
                notes.append(
                    f"信息项「{after[name]['label']}」{LABELS[attr]}："
                    f"{_shown(before[name][attr])}→{_shown(after[name][attr])}"
                )
    notes += [f"{LABELS[f]}：{_shown(old.get(f))}→{_shown(new[f])}" for f in TRACKED if old.get(f) != new[f]]
    return notes


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    return "无" if value in (None, "") else str(value)


def _versioned(entry: dict[str, Any], previous: dict[str, Any] | None, today: dt.date) -> dict[str, Any]:
    if previous is None:
        return entry | {"published_on": today, "version": 1, "version_on": today, "change_note": "首次发布"}
    kept = {"published_on": dt.date.fromisoformat(previous["published_on"])}
    if changes := _changes(previous, entry):
        version = previous["version"] + 1
        return (
            entry
            | kept
            | {"version": version, "version_on": today, "change_note": f"第{version}版：" + "；".join(changes)}
        )
    return (
        entry
        | kept
        | {
            "version": previous["version"],
            "change_note": previous["change_note"],
            "version_on": dt.date.fromisoformat(previous["version_on"]),
        }
    )


def _order(entry: dict[str, Any]) -> tuple:
    return entry["code"][0], entry["theme"] or "", list(KINDS.values()).index(entry["kind"]), entry["table_key"]


def build_catalog(
    home: Home,
    contracts: Contracts | None = None,
    previous: dict[str, dict[str, Any]] | None = None,
    today: dt.date | None = None,
) -> list[dict[str, Any]]:
    """Every resource's entry (with its ``items``), versioned against ``previous`` (entries of the
    last catalogue by code), with the lake's facts where it has them."""
    contracts = contracts or load_contracts()
    today = today or dt.datetime.now(LOCAL_TZ).date()
    codes, users, receipts = _codes(contracts), _users(contracts), _receipts(home)
    entries = [
        _versioned(_entry(table, codes, users), (previous or {}).get(codes[key]), today)
        | _lake_facts(home, table, receipts)
        for key, table in contracts.tables.items()
    ]
    return sorted(entries, key=_order)


# -- the departments' own view -------------------------------------------------------------------
def department_view(
    home: Home, entries: list[dict[str, Any]], contracts: Contracts | None = None, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Per department: the ledgers it provides, with how many files it delivered, when it last
    delivered and whether that is within the ledger's update cycle at ``now``, how many rows were
    refused and how many of its rectification issues (``quality/issue``) are still open; and the
    marts its ledgers feed (directly or through other marts), which it receives back under their
    sharing terms."""
    contracts = contracts or load_contracts()
    now = now or dt.datetime.now(dt.UTC)
    by_key = {e["table_key"]: e for e in entries}
    users, receipts = _users(contracts), _receipts(home)
    rejected = (
        lake.read(
            home,
            OPS,
            REJECTIONS,
            columns=["receipt_id", "table", "sheet", "row_number"],
            where=pl.col("severity") == "error",
        )
        if lake.exists(home, OPS, REJECTIONS)
        else None
    )
    open_issues = _open_issues(home)
    rows = []
    for code, name in contracts.departments.items():
        ledgers = [t for t in contracts.ledgers if t.department_code == code]
        for table in ledgers:
            delivered = _carrying(receipts, table)
            delivered = delivered.filter(pl.col("department") == code) if delivered.height else delivered
            rows.append(
                _view_row(code, name, PROVIDES, by_key[table.key])
                | _delivery(delivered, rejected, table, now)
                | {"open_issues": open_issues.get((code, table.key), 0)}
            )
        for mart in _downstream([t.key for t in ledgers], users):
            rows.append(_view_row(code, name, RECEIVES, by_key[mart]) | dict.fromkeys((*DELIVERY, "open_issues")))
    return rows


def _open_issues(home: Home) -> dict[tuple[str, str], int]:
    """Open rectification issues by (department, table); none before the first quality run."""
    if not lake.exists(home, "quality", "issue"):
        return {}
    issues = lake.read(
        home,
        "quality",
        "issue",
        columns=["department", "table", "status"],
        where=(pl.col("status") == "open") & pl.col("department").is_not_null(),
    )
    return {(d, t): n for d, t, n in issues.group_by("department", "table").len().iter_rows()}


def _view_row(code: str, name: str, relation: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "department_code": code,
        "department_name": name,
        "relation": relation,
        **{k: entry[k] for k in ("code", "title", "table_key", "sharing", "update_cycle", "rows")},
    }


DELIVERY = ("files_received", "last_received_at", "delivery", "last_status", "rows_rejected")


def _delivery(delivered: pl.DataFrame, rejected: pl.DataFrame | None, table: Table, now: dt.datetime) -> dict[str, Any]:
    """How a department's deliveries of a ledger stand. Refused rows are summed over every delivery
    (a row counts once however many problems it had): a ledger delivered per community has no
    single "latest" file; what is still to be corrected is the open issue count. No ops/rejection
    table means no delivery ever had a refused row."""
    if not delivered.height:
        return dict.fromkeys(DELIVERY) | {"files_received": 0, "delivery": NEVER}
    last = delivered.sort("received_at").row(-1, named=True)
    grace = DELIVERY_GRACE.get(table.catalogue["update_cycle"])
    refused = 0
    if rejected is not None:
        refused = (
            rejected.filter(pl.col("receipt_id").is_in(delivered["receipt_id"].implode()), pl.col("table") == table.key)
            .select(pl.struct("receipt_id", "sheet", "row_number").n_unique())
            .item()
        )
    return {
        "files_received": delivered.height,
        "last_received_at": last["received_at"].astimezone(LOCAL_TZ),
        "delivery": OVERDUE if grace and last["received_at"] + grace < now else ON_TIME,
        "last_status": STATUS_ZH[last["status"]],
        "rows_rejected": refused,
    }


# -- writing -------------------------------------------------------------------------------------
def _frame(rows: list[dict[str, Any]], fields: tuple[Column, ...]) -> pl.DataFrame:
    schema = {f.name: f.dtype for f in fields}
    return pl.DataFrame([{f.name: row[f.name] for f in fields} for row in rows], schema=schema, orient="row")


def _cell(value: Any) -> Any:
    """A value as a workbook cell: lists joined, yes/no in words, times local and naive."""
    if isinstance(value, list):
        return "、".join(value)
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dt.datetime):
        return value.astimezone(LOCAL_TZ).replace(tzinfo=None)
    return value


HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def _sheet(workbook: openpyxl.Workbook, title: str, fields: tuple[Column, ...], rows: list[dict[str, Any]]) -> None:
    sheet = workbook.create_sheet(title)
    sheet.append([f.label for f in fields])
    for row in rows:
        sheet.append([_cell(row[f.name]) for f in fields])
    for index, field in enumerate(fields, start=1):
        letter, layout = get_column_letter(index), field.layout
        sheet.column_dimensions[letter].width = layout.width
        header = sheet.cell(1, index)
        header.font, header.fill = Font(bold=True), HEADER_FILL
        header.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        if layout.wrap or layout.number_format:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.alignment = Alignment(wrap_text=layout.wrap, vertical="top")
                cell.number_format = layout.number_format or cell.number_format
    sheet.freeze_panes = "B2"  # header row and the resource code stay in view
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(fields))}{max(len(rows) + 1, 2)}"


def _workbook(entries: list[dict[str, Any]], departments: list[dict[str, Any]]) -> openpyxl.Workbook:
    workbook = openpyxl.Workbook()
    blank = workbook.active
    assert blank is not None  # a new workbook is made with one sheet, active
    workbook.remove(blank)
    _sheet(workbook, "信息资源", RESOURCE_FIELDS, entries)
    _sheet(workbook, "信息项", ITEM_FIELDS, [item for e in entries for item in e["items"]])
    _sheet(workbook, "部门视图", DEPARTMENT_FIELDS, departments)
    return workbook


def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(LOCAL_TZ).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _agent(name: str, code: str) -> dict[str, Any]:
    return {"@type": "foaf:Organization", "foaf:name": name, "dct:identifier": code}


def _zh(text: str | None) -> dict[str, str] | None:
    return {"@value": text, "@language": "zh"} if text else None


def dcat(entries: list[dict[str, Any]], contracts: Contracts, today: dt.date) -> dict[str, Any]:
    """The catalogue as DCAT JSON-LD: a dcat:Catalog of dcat:Datasets identified by resource code."""
    publisher = _publisher(contracts)
    tables = contracts.tables
    datasets = []
    for e in entries:
        table = tables[e["table_key"]]
        *_, dct_format, media_type = FORMATS[_format_key(table)]
        access = "PUBLIC" if e["open"] else "NON_PUBLIC" if e["sharing"] == "不予共享" else "RESTRICTED"
        distribution = {
            "@type": "dcat:Distribution",
            "dct:title": _zh(e["format"]),
            "dct:format": dct_format,
            "csvw:tableSchema": {
                "csvw:column": [
                    {
                        "csvw:name": c.name,
                        "csvw:title": _zh(c.label),
                        "csvw:datatype": XSD_TYPES[c.type],
                        "csvw:required": c.required,
                    }
                    for c in table.all_columns
                ]
            },
        } | ({"dcat:mediaType": media_type} if media_type else {})
        dataset = {
            "@id": f"urn:redwall:resource:{e['code']}",
            "@type": "dcat:Dataset",
            "dct:identifier": e["code"],
            "dct:title": _zh(e["title"]),
            "dct:description": _zh(e["abstract"]),
            "dct:publisher": _agent(e["provider"], e["provider_code"]),
            "dcat:theme": [
                {"@type": "skos:Concept", "skos:prefLabel": _zh(k)} for k in (e["category"], e["theme"]) if k
            ],
            "dcat:keyword": [_zh(e["kind"])],
            "dct:accrualPeriodicity": {"@id": f"freq:{FREQUENCIES[e['update_cycle']]}"},
            "dct:accessRights": {"@id": ACCESS_RIGHTS + access},
            "dct:rights": _zh("；".join(filter(None, (e["sharing"], e["sharing_condition"], e["sharing_method"])))),
            "dct:issued": {"@value": e["published_on"].isoformat(), "@type": "xsd:date"},
            "dct:modified": {"@value": e["version_on"].isoformat(), "@type": "xsd:date"},
            "dcat:version": str(e["version"]),
            "adms:versionNotes": _zh(e["change_note"]),
            "dct:relation": [{"@id": f"urn:redwall:resource:{c}"} for c in e["related_codes"]],
            "dcat:distribution": [distribution],
        }
        datasets.append({k: v for k, v in dataset.items() if v is not None})
    return {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
            "adms": "http://www.w3.org/ns/adms#",
            "csvw": "http://www.w3.org/ns/csvw#",
            "freq": "http://purl.org/cld/freq/",
            "skos": "http://www.w3.org/2004/02/skos/core#",
        },
        "@id": "urn:redwall:catalog",
        "@type": "dcat:Catalog",
        "dct:title": _zh(f"{publisher['name']}政务信息资源目录"),
        "dct:publisher": _agent(publisher["name"], publisher["code"]),
        "dct:modified": {"@value": today.isoformat(), "@type": "xsd:date"},
        "dcat:dataset": datasets,
    }


def _publisher(contracts: Contracts) -> dict[str, str]:
    """The centre publishing the catalogue: the provider of its own resources, the marts."""
    return contracts.marts[0].provider


def _previous(folder: Path) -> dict[str, dict[str, Any]]:
    record = folder / RECORD
    if not record.exists():
        return {}
    return {e["code"]: e for e in json.loads(record.read_text(encoding="utf-8"))["resources"]}


def publish_catalog(home: Home, contracts: Contracts | None = None) -> dict[str, Any]:
    """Build the catalogue and the departments' view, write them to ``published/catalog`` and the
    ``catalog`` Delta tables; returns counts, what changed and where the files are."""
    contracts = contracts or load_contracts()
    folder = home.published / CATALOG
    today = dt.datetime.now(LOCAL_TZ).date()
    previous = _previous(folder)
    entries = build_catalog(home, contracts, previous, today)
    departments = department_view(home, entries, contracts)
    items = [item for e in entries for item in e["items"]]

    lake.write_changed(home, CATALOG, "resource", _frame(entries, RESOURCE_FIELDS))
    lake.write_changed(home, CATALOG, "item", _frame(items, ITEM_FIELDS))
    lake.write_changed(home, CATALOG, "department", _frame(departments, DEPARTMENT_FIELDS))
    write_shared(folder / WORKBOOK, _workbook(entries, departments).save, home.published)
    write_shared(
        folder / DCAT,
        lambda p: p.write_text(
            json.dumps(dcat(entries, contracts, today), ensure_ascii=False, indent=1, default=_json), encoding="utf-8"
        ),
        home.published,
    )
    record = {
        "title": f"{_publisher(contracts)['name']}政务信息资源目录",
        "published_at": dt.datetime.now(LOCAL_TZ),
        "fields": LABELS,
        "resources": entries,
        "departments": departments,
    }
    write_shared(
        folder / RECORD,
        lambda p: p.write_text(json.dumps(record, ensure_ascii=False, indent=1, default=_json), encoding="utf-8"),
        home.published,
    )

    current = {e["code"] for e in entries}
    return {
        "resources": len(entries),
        "items": len(items),
        "departments": len(contracts.departments),
        "new": sorted(current - previous.keys()),
        "changed": sorted(
            e["code"] for e in entries if e["code"] in previous and e["version"] != previous[e["code"]]["version"]
        ),
        "retired": sorted(previous.keys() - current),
        "paths": {name: str((folder / name).relative_to(home.root)) for name in (WORKBOOK, RECORD, DCAT)},
    }
