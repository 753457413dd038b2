"""Receipts: every delivered file is answered, and the answer is kept in the lake.

Three ops tables (their contract: ``schemas/system/ops.yaml``):

- ``ops/file_receipt``: one row per delivery (upserted by receipt id, so a re-run after a crash
  rewrites its own receipt instead of adding one);
- ``ops/rejection``: one row per problem found in a row (replaced per file hash on a re-run);
- ``ops/file_registry``: one row per file content loaded. It is written last, after bronze, silver,
  rejections and the receipt: a content is "loaded" only once all of that has committed.

Each is written in one commit per batch of deliveries (see :mod:`redwall.ingest.load`). A fourth,
``ops/held_delivery``, lists the snapshots held for an analyst's decision (:mod:`redwall.ingest.holds`);
``ops/layout_release`` the deliveries refused for their layout that an analyst released
(:mod:`redwall.ingest.layouts`).

A held delivery (status ``held``, 待确认) balances like any other: ``rows_accepted`` counts the
rows that passed the row checks, ``rows_rejected`` those refused with a reason. Its accepted rows
wait in bronze, none in silver; once released the receipt becomes an ordinary one, once discarded
(``discarded``) they stay in bronze unused, the file in the archive.

Beside the delivered file's kept copy lies a receipt for the sender: ``<name>.回执.txt`` in Chinese
for a department's ledger, ``<name>.receipt.json`` for a system feed. Receipts and rejection
messages name rows, columns and rules, never the personal values themselves.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import cast

import polars as pl

from redwall import lake
from redwall.home import Home
from redwall.ingest.inbox import LOCAL_TZ
from redwall.schemas import code_lists, load_contracts

OPS = "ops"
RECEIPTS = "file_receipt"
REJECTIONS = "rejection"
REGISTRY = "file_registry"
HOLDS = "held_delivery"
LAYOUT_RELEASES = "layout_release"
STATUS_ZH = code_lists()["receipt_status"]  # ref.codes, so the warehouse decodes it the same way
LISTED_ISSUES = 500  # rows listed in a receipt file; ops/rejection has them all

# their columns and types: the contracts (schemas/system/ops.yaml)
RECEIPT_SCHEMA, REJECTION_SCHEMA, REGISTRY_SCHEMA = (
    pl.Schema(load_contracts().table(f"{OPS}.{name}").schema()) for name in (RECEIPTS, REJECTIONS, REGISTRY)
)


@dataclass(frozen=True)
class Receipt:
    receipt_id: str
    source: str
    department: str | None
    file_name: str
    file_path: str  # inbox-relative: <source>/[<department>/]<name>
    file_hash: str
    file_size: int
    load_id: str
    received_at: dt.datetime
    as_of: dt.date
    status: str  # accepted | partially_accepted | rejected | duplicate | held | discarded
    refusal: str | None  # why a file was refused whole (empty_file, encrypted, …, duplicate) or held
    tables: tuple[str, ...]
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    rows_warned: int  # accepted with a non-required value set to null
    rows_deduplicated: int  # accepted, but the same business key was already there or repeated
    rows_skipped: int  # notes and repeated headers under the data: not rows, counted for the sender
    reasons_zh: str
    stored_as: str  # where the delivered file is kept, relative to the data home


def status_of(rows_read: int, rows_rejected: int) -> str:
    if rows_read == 0 or rows_rejected == rows_read:
        return "rejected"
    return "partially_accepted" if rows_rejected else "accepted"


# -- the ops tables ------------------------------------------------------------------------------
def registered(home: Home, file_hashes: Iterable[str]) -> dict[str, dict]:
    """The registry entries of the contents already loaded, by file hash."""
    found = lake.read(home, OPS, REGISTRY, where=pl.col("file_hash").is_in(list(file_hashes)))
    return {entry["file_hash"]: entry for entry in found.iter_rows(named=True)}


def superseding(
    home: Home, table_key: str, scope: tuple[str, ...], as_of: dt.date, received_at: dt.datetime
) -> dt.date | None:
    """The newest date of a snapshot already loaded into ``table_key`` for any part of ``scope``
    (see :func:`redwall.ingest.history.scope`) that is the truth after one dated ``as_of`` and
    received at ``received_at``: a later date, or the same date received later (a held delivery
    released after its correction was applied); None when there is none."""
    found = lake.read(
        home,
        OPS,
        REGISTRY,
        columns=["as_of", "loaded_at"],
        where=pl.col("scopes").list.set_intersection([f"{table_key}|{part}" for part in scope]).list.len() > 0,
    )
    if not found.height:
        return None
    later = found.filter((pl.col("as_of") > as_of) | ((pl.col("as_of") == as_of) & (pl.col("loaded_at") > received_at)))
    return cast(dt.date, later["as_of"].max()) if later.height else None


def record(home: Home, answered: list[Receipt], issues: pl.DataFrame) -> None:
    """Write the rows' problems and the receipts of a batch of deliveries, one commit each, both
    idempotent for a re-run of the same files. Judging is deterministic, so a file without problems
    now had none in an earlier attempt."""
    if issues.height:
        lake.replace(
            home,
            OPS,
            REJECTIONS,
            issues.select(REJECTION_SCHEMA.keys()).cast(REJECTION_SCHEMA),
            where=lake.one_of("file_hash", issues["file_hash"].unique()),
        )
    frame = pl.DataFrame([asdict(r) | {"tables": list(r.tables)} for r in answered], schema=RECEIPT_SCHEMA)
    lake.replace(home, OPS, RECEIPTS, frame, where=lake.one_of("receipt_id", frame["receipt_id"]))


def register(home: Home, loaded: list[tuple[Receipt, list[str]]]) -> None:
    """Mark the contents of a batch as loaded: its last write. Each receipt comes with the
    ``<table>|<scope>`` of every snapshot it applied, for :func:`superseding`."""
    entries = pl.DataFrame(
        [
            {
                "file_hash": r.file_hash,
                "receipt_id": r.receipt_id,
                "source": r.source,
                "department": r.department,
                "file_name": r.file_name,
                "tables": list(r.tables),
                "scopes": scopes,
                "as_of": r.as_of,
                "load_id": r.load_id,
                "loaded_at": r.received_at,
            }
            for r, scopes in loaded
        ],
        schema=REGISTRY_SCHEMA,
    )
    lake.replace(home, OPS, REGISTRY, entries, where=lake.one_of("file_hash", entries["file_hash"]))


def find(home: Home, receipt_id: str) -> tuple[Receipt, pl.DataFrame]:
    """A receipt already recorded, with its rows' problems."""
    row = lake.read(home, OPS, RECEIPTS, where=pl.col("receipt_id") == receipt_id).row(0, named=True)
    receipt = Receipt(**(row | {"tables": tuple(row["tables"])}))
    return receipt, issues_of(home, receipt)


def issues_of(home: Home, receipt: Receipt) -> pl.DataFrame:
    if not lake.exists(home, OPS, REJECTIONS):
        return pl.DataFrame(schema=REJECTION_SCHEMA)
    return lake.read(home, OPS, REJECTIONS, where=pl.col("receipt_id") == receipt.receipt_id)


# -- the sender's copy ---------------------------------------------------------------------------
# What to send again: a snapshot ledger is the whole list each time, other ledgers only the rows.
RESEND_WHOLE = "请按以上说明更正后重新报送完整的名单：本表按整表报送处理，名单中没有的记录会被置为失效。"
RESEND_ROWS = "请按以上说明更正后重新报送；已接收的行无需重复报送。"
# What happens next to a delivery held for the centre's decision, and after it was discarded.
NEXT_STEP = {
    "held": "本文件已原样存档，暂未应用，现有数据保持不变；大数据中心确认后才会按本文件更新。"
    "如文件有误，请直接重新报送完整、正确的名单，新文件到达后照常处理。",
    "discarded": "本文件不予应用，现有数据保持不变。" + RESEND_WHOLE,
}


def receipt_file_name(receipt: Receipt, stored_name: str) -> str:
    return f"{stored_name}.回执.txt" if _for_a_clerk(receipt) else f"{stored_name}.receipt.json"


def _for_a_clerk(receipt: Receipt) -> bool:
    """A department's clerk reads the receipt (in Chinese); a system parses it (JSON)."""
    return receipt.source in load_contracts().departmental


def render(receipt: Receipt, issues: pl.DataFrame, department_name: str | None) -> str:
    """The receipt a sender reads: Chinese text for a clerk, JSON for a system."""
    listed = issues.sort("row_number", "column").head(LISTED_ISSUES) if issues.height else issues
    if not _for_a_clerk(receipt):
        body = asdict(receipt) | {
            "status_zh": STATUS_ZH[receipt.status],
            "tables": list(receipt.tables),
            "received_at": receipt.received_at.isoformat(),
            "as_of": receipt.as_of.isoformat(),
            "issues_total": issues.height,
        }
        body["issues"] = (
            listed.select("sheet", "row_number", "column", "rule", "severity", "message_zh").to_dicts()
            if listed.height
            else []
        )
        return json.dumps(body, ensure_ascii=False, indent=2)
    lines = [
        "数据接收回执",
        f"回执编号：{receipt.receipt_id}",
        f"报送部门：{department_name or receipt.department or '未注明'}",
        f"文件：{receipt.file_name}",
        f"接收时间：{receipt.received_at.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}",
        f"处理结果：{STATUS_ZH[receipt.status]}",
        "",
        "说明：",
        *(f"  {line}" for line in receipt.reasons_zh.splitlines()),
    ]
    if listed.height:
        lines += ["", f"需要更正的地方（共{issues.height}处）："]
        lines += [
            f"  {'工作表「' + s + '」' if s else ''}{m}" for s, m in listed.select("sheet", "message_zh").iter_rows()
        ]
        if issues.height > listed.height:
            lines.append(f"  其余{issues.height - listed.height}处请向大数据中心索取拒收明细。")
    tables = load_contracts().tables
    whole = any(tables[t].load == "snapshot" for t in receipt.tables if t in tables)
    lines += ["", NEXT_STEP.get(receipt.status) or (RESEND_WHOLE if whole else RESEND_ROWS)]
    return "\n".join(lines) + "\n"
