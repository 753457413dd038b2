"""Held deliveries: a snapshot that would close far more than usual waits for an analyst.

A snapshot delivery is the whole truth on its date: applied, every current record it does not list
is closed. An export cut off half-way, or a ledger whose ID column a spreadsheet destroyed, would so
deregister half a street or empty a community's care list. Such a delivery is judged *before*
silver is touched (:func:`judge`, by the limits of its contract's ``hold``): one that would close
more than ``hold.closing`` of the current records of its scope (the table, or a community of a
ledger kept per community), or whose refused rows are more than ``hold.refused`` of its rows, is
**held**. Its rows stay in bronze, the file in the archive, its receipt says 待确认 and why, and
silver keeps the previous state exactly. Later deliveries keep flowing, judged against that state.
A snapshot every row of which is refused applies nothing and is refused outright, never held.

An analyst decides once per held delivery, saying who and why (``ops/held_delivery`` keeps it):

- **release** (:func:`redwall.ingest.load.release`): the delivery is applied as an ordinary load
  would have applied it when it came — unless a snapshot of its scope that is the truth after it
  (a later date, or the same date received after it) has been applied meanwhile: then, like any
  late snapshot, it stays in bronze only, and the newer one remains the truth (a released older
  snapshot must not deregister the persons a newer one lists);
- **discard** (:func:`redwall.ingest.load.discard`): nothing is applied; the file stays archived,
  the receipt says so.

A copy of a held delivery sent again is a duplicate of it (answered, not held twice); a discarded
content was never loaded, so sending it again is judged afresh.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from redwall import lake
from redwall.home import Home
from redwall.ingest import history
from redwall.ingest.inbox import LOCAL_TZ
from redwall.ingest.receipts import HOLDS, OPS, Receipt
from redwall.schemas import Table, load_contracts

HELD, RELEASED, DISCARDED = "held", "released", "discarded"
HOLD_SCHEMA = load_contracts().table(f"{OPS}.{HOLDS}").schema()  # schemas/system/ops.yaml


class CannotDecide(LookupError):
    """The receipt names no delivery waiting for a decision (a held one, or one refused for its layout
    that blocks, :mod:`redwall.ingest.layouts`), or one whose kept copy changed."""


@dataclass(frozen=True)
class Verdict:
    """What a snapshot delivery would do to one table, counted before it is applied: in the part
    of its scope it would close the largest share of (``part``: a community, or ``""``), the
    current records and those it would close; over the table, its rows read and refused."""

    table: Table
    part: str
    current: int
    closing: int
    read: int
    refused: int

    @property
    def closing_share(self) -> float:
        return self.closing / self.current if self.current else 0.0

    @property
    def refused_share(self) -> float:
        return self.refused / self.read if self.read else 0.0

    @property
    def closes_too_many(self) -> bool:
        return self.closing >= self.table.hold_limits.at_least and self.closing_share > self.table.hold_limits.closing

    @property
    def refuses_too_many(self) -> bool:
        return self.refused >= self.table.hold_limits.at_least and self.refused_share > self.table.hold_limits.refused

    @property
    def held(self) -> bool:
        return self.closes_too_many or self.refuses_too_many

    @property
    def rule(self) -> str:
        """Why it is held, as a code (the receipt's ``refusal`` while it waits)."""
        return "closes_too_many" if self.closes_too_many else "refuses_too_many"

    @property
    def reason_zh(self) -> str:
        """Why it is held, for the sender and the analyst: figures only, never a record."""
        hold, title = self.table.hold_limits, self.table.title
        why = []
        if self.closes_too_many:
            where = f"「{self.part}」社区" if self.part else ""
            why.append(
                f"应用本文件将使{where}现有{self.current}条记录中的{self.closing}条（{self.closing_share:.1%}）"
                f"置为失效，超过本表{hold.closing:.0%}的上限"
            )
        if self.refuses_too_many:
            why.append(
                f"读取的{self.read}行中有{self.refused}行被拒收（{self.refused_share:.1%}），"
                f"超过本表{hold.refused:.0%}的上限"
            )
        cause = "导出或填报不完整" if self.closes_too_many else "证件号码等列被表格软件改坏（如按数字保存）"
        return (
            f"{title}：" + "；".join(why) + f"，可能是{cause}。为防止误将大量记录置为失效，"
            "本文件已原样保存，暂未应用，待大数据中心确认；在此之前现有数据保持不变。"
        )


@dataclass(frozen=True)
class Decision:
    """An analyst's decision on a held delivery."""

    status: str  # released | discarded
    by: str
    reason: str
    at: dt.datetime

    @classmethod
    def now(cls, status: str, by: str, reason: str) -> Decision:
        if not by.strip() or not reason.strip():
            raise ValueError("a decision on a delivery names who takes it and why")
        return cls(status, by.strip(), reason.strip(), dt.datetime.now(dt.UTC))

    @property
    def note_zh(self) -> str:
        done = "确认应用本文件" if self.status == RELEASED else "确认本文件不予应用"
        return f"{self.at.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M} 经大数据中心（{self.by}）{done}，理由：{self.reason}。"


def judge(table: Table, rows: pl.DataFrame, current: pl.DataFrame) -> Verdict | None:
    """The :class:`Verdict` on one delivery's judged ``rows`` (with ``_rejected``) for a snapshot
    table whose current versions are ``current``; None when no row is accepted (it applies nothing)."""
    accepted = rows.filter(~pl.col("_rejected"))
    if accepted.is_empty():
        return None
    parts = history.closing(table, accepted, current).with_columns(
        (pl.col("closing") / pl.col("current")).alias("share"),
        (pl.col("closing") >= table.hold_limits.at_least).alias("counts"),
    )
    worst = parts.sort("counts", "share", descending=True).head(1).to_dicts()
    part, now, closing = (worst[0]["part"], worst[0]["current"], worst[0]["closing"]) if worst else ("", 0, 0)
    return Verdict(table, part, now, closing, rows.height, int(rows["_rejected"].sum()))


# -- the ops table -------------------------------------------------------------------------------
def record(home: Home, held: list[tuple[Receipt, Verdict]]) -> None:
    """Add the deliveries of a batch that are held (idempotent for a re-run: by receipt id)."""
    if not held:
        return
    frame = pl.DataFrame(
        [
            {
                "receipt_id": r.receipt_id,
                "source": r.source,
                "department": r.department,
                "file_name": r.file_name,
                "file_hash": r.file_hash,
                "table": v.table.key,
                "as_of": r.as_of,
                "held_at": r.received_at,
                "scope": v.part,
                "records_current": v.current,
                "records_closing": v.closing,
                "closing_share": round(v.closing_share, 4),
                "closing_limit": v.table.hold_limits.closing,
                "rows_read": v.read,
                "rows_rejected": v.refused,
                "refused_share": round(v.refused_share, 4),
                "refused_limit": v.table.hold_limits.refused,
                "reason_zh": v.reason_zh,
                "status": HELD,
                "decided_by": None,
                "decided_at": None,
                "decision_reason": None,
                "stored_as": r.stored_as,
            }
            for r, v in held
        ],
        schema=HOLD_SCHEMA,
    )
    lake.replace(home, OPS, HOLDS, frame, where=lake.one_of("receipt_id", frame["receipt_id"]))


def decide(home: Home, receipt_id: str, decision: Decision) -> None:
    """Record the analyst's decision on a held delivery (after it has been carried out)."""
    entry = lake.read(home, OPS, HOLDS, where=pl.col("receipt_id") == receipt_id)
    decided = entry.with_columns(
        pl.lit(decision.status).alias("status"),
        pl.lit(decision.by).alias("decided_by"),
        pl.lit(decision.at, dtype=pl.Datetime("us", "UTC")).alias("decided_at"),
        pl.lit(decision.reason).alias("decision_reason"),
    )
    lake.replace(home, OPS, HOLDS, decided, where=lake.one_of("receipt_id", [receipt_id]))


def listing(home: Home) -> pl.DataFrame:
    """Every delivery ever held, with its decision, newest first."""
    if not lake.exists(home, OPS, HOLDS):
        return pl.DataFrame(schema=HOLD_SCHEMA)
    return lake.read(home, OPS, HOLDS).sort("held_at", descending=True)


def pending(home: Home, file_hashes: Iterable[str] | None = None) -> pl.DataFrame:
    """The deliveries waiting for a decision (of those contents, when ``file_hashes`` is given)."""
    waiting = listing(home).filter(pl.col("status") == HELD)
    return waiting if file_hashes is None else waiting.filter(pl.col("file_hash").is_in(list(file_hashes)))


def waiting(home: Home, receipt_id: str) -> dict:
    """The entry of a delivery waiting for a decision, or :class:`CannotDecide`."""
    found = listing(home).filter(pl.col("receipt_id") == receipt_id)
    if found.is_empty():
        raise CannotDecide(f"no delivery was held with receipt {receipt_id}; `redwall held` lists them")
    entry = found.row(0, named=True)
    if entry["status"] != HELD:
        raise CannotDecide(
            f"receipt {receipt_id} was already {entry['status']} by {entry['decided_by']} "
            f"on {entry['decided_at']:%Y-%m-%d %H:%M} UTC"
        )
    return entry
