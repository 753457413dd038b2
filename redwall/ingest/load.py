"""Taking one delivered file in: read, keep, type, answer, file away.

The order of writes makes a run killed at any point safe to repeat:

1. bronze, per table: the file's rows replace whatever an earlier attempt left for the same file
   hash (one Delta commit each);
2. silver, per table: a diff against the current state, so a second application changes nothing;
3. ops/rejection (replaced per file hash) and ops/file_receipt (upserted by receipt id);
4. ops/file_registry: only now is the content "loaded";
5. the receipt file is written beside the kept copy, then the file leaves the inbox.

A re-run before step 4 repeats steps 1–3 without duplicates; after step 4 it recognises its own
delivery (same receipt id) and only finishes step 5. The receipt id is derived from the delivery
(path, size, mtime, content), so the same delivery always gets the same receipt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import uuid
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path

import polars as pl
import polars.selectors as cs

from redwall import lake
from redwall.home import Home
from redwall.ingest import history, receipts
from redwall.ingest.formats import Grid, Unreadable, dictionary_of, read_file
from redwall.ingest.inbox import DICT_SUFFIX, LEDGERS, InboxFile, inbox_file, inbox_files
from redwall.ingest.layout import NUMBER_CELL, Block, blocks
from redwall.ingest.normalise import RULE_NAMES, at_row, judge
from redwall.ingest.receipts import Receipt
from schemas import Contracts, Table, load_contracts

UNROUTED = "unrouted"  # bronze <source>_unrouted: records that belong to no contract table
# rule → (what it is, in a receipt's summary; the message for the record, after "第N行记录")
UNROUTED_RULES = {
    "record_unreadable": ("不是完整的JSON", "不是完整的JSON记录（可能上传中断），已原样保存，请重新上传该条记录"),
    "record_type_unknown": ("类型未知", "的记录类型不是本中心接收的类型，已原样保存，请核对采集App版本"),
}
SHORT_NAMES = RULE_NAMES | {rule: short for rule, (short, _) in UNROUTED_RULES.items()}


def process_source(home: Home, source: str, contracts: Contracts | None = None) -> list[Receipt]:
    """Take in every file waiting in the source's inbox, oldest data first, then :func:`compact`."""
    contracts = contracts or load_contracts()
    taken = [process_file(home, source, f.path, contracts) for f in inbox_files(home, source)]
    compact(home, source, contracts)
    return taken


def compact(home: Home, source: str, contracts: Contracts | None = None) -> None:
    """Compact the source's bronze and silver tables and the ops tables where small files piled
    up (each delivery appends a few). Call it after a batch of :func:`process_file` calls."""
    contracts = contracts or load_contracts()
    tables = [("bronze", f"{source}_{UNROUTED}")]
    tables += [(layer, t.bronze_name) for t in contracts.source_tables(source) for layer in ("bronze", "silver")]
    tables += [(receipts.OPS, name) for name in (receipts.RECEIPTS, receipts.REJECTIONS, receipts.REGISTRY)]
    for layer, name in tables:
        lake.compact(home, layer, name)


def process_file(home: Home, source: str, path: str | Path, contracts: Contracts | None = None) -> Receipt:
    """Take in one delivered file and answer it with a receipt (see the module docstring)."""
    contracts = contracts or load_contracts()
    file = inbox_file(home, source, Path(path))
    delivery = Delivery(home, file, contracts)
    known = receipts.registered(home, file.sha256)
    if known and known["receipt_id"] == delivery.receipt_id:  # an earlier run died while filing away
        return delivery.file_away(*receipts.find(home, delivery.receipt_id))
    if known:
        when = known["loaded_at"].astimezone(receipts.LOCAL_TZ)
        return delivery.answer("duplicate", "duplicate", f"重复文件：内容与{when:%Y-%m-%d %H:%M}已加载的"
                                                         f"「{known['file_name']}」完全相同，未重复加载。")
    try:
        grids = read_file(file.path)
        found, ignored = blocks(grids, candidates(contracts, file))
        if not any(b.rows.height for b in found):
            # An empty increment is a day with nothing new; an empty snapshot would deregister everyone.
            if found and all(b.table is not None and b.table.load != "snapshot" for b in found):
                return delivery.answer("accepted", None, "文件只有表头，本期没有新增或变更记录。")
            raise Unreadable("no_data", "文件只有表头，没有数据行，未读入；如为全量快照，空文件不会注销任何人员")
    except Unreadable as why:
        return delivery.answer("rejected", why.rule, f"无法读入：{why.reason_zh}。")
    return delivery.load(grids, found, ignored)


def candidates(contracts: Contracts, file: InboxFile) -> list[Table]:
    """The tables a file may hold: its source's (a ledger: its department's), narrowed by the
    contract's file-name pattern when the name follows it."""
    tables = contracts.source_tables(file.source)
    if file.source == LEDGERS and file.department in contracts.departments:
        tables = [t for t in tables if t.department["code"] == file.department]
    named = [t for t in tables if t.files and fnmatch(file.name, t.files)]
    return named or tables


class Delivery:
    """One delivered file on its way through a run."""

    def __init__(self, home: Home, file: InboxFile, contracts: Contracts):
        self.home, self.file, self.contracts = home, file, contracts
        identity = f"{file.relative}|{file.size}|{file.mtime_ns}|{file.sha256}"
        self.receipt_id = hashlib.sha256(identity.encode()).hexdigest()[:16]
        self.received_at = dt.datetime.now(dt.UTC)
        self.load_id = f"{self.received_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"

    # -- loading ---------------------------------------------------------------------------------
    def load(self, grids: list[Grid], found: list[Block], ignored: list[str]) -> Receipt:
        source = self.file.source
        by_table: dict[str, list[Block]] = {}
        for block in found:
            by_table.setdefault(block.table.key if block.table else f"{source}.{UNROUTED}", []).append(block)
        bronze = {key: pl.concat([self._lineage(b.rows) for b in group], how="diagonal")
                  for key, group in by_table.items()}
        for key, rows in bronze.items():
            lake.replace(self.home, "bronze", key.replace(".", "_", 1), rows.drop(cs.starts_with(NUMBER_CELL)),
                         where=f"_file_hash = '{self.file.sha256}'")

        notes, issues, scopes, counts = [], [], [], Counter()
        place = found[0].grid.place
        for key, rows in bronze.items():
            counts["read"] += rows.height
            if key not in self.contracts.tables:
                issues.append(_unrouted_issues(by_table[key], place).with_columns(pl.lit(key).alias("table")))
                counts["rejected"] += rows.height
                continue
            table = self.contracts.table(key)
            judged = judge(table, rows, place, by_table[key][0].labels)
            issues.append(judged.issues.with_columns(pl.lit(key).alias("table")))
            counts["rejected"] += judged.rows["_rejected"].sum()
            counts["warned"] += judged.rows["_warned"].sum()
            accepted = self._lineage(judged.rows.filter(~pl.col("_rejected"))).with_columns(
                pl.lit(self.file.as_of).alias("_valid_from"), pl.lit(None, dtype=pl.Date).alias("_valid_to"))
            accepted = accepted.select(list(history.silver_schema(table)))
            latest = None
            if table.load == "snapshot":
                scope = history.scope(table, accepted)
                scopes += [f"{key}|{part}" for part in scope]
                latest = receipts.latest_as_of(self.home, key, scope)
            stale = latest is not None and latest > self.file.as_of
            change = history.apply(self.home, table, accepted, self.file.as_of, stale=stale)
            counts["deduplicated"] += change.collapsed + (change.unchanged if table.load == "append" else 0)
            notes.append(_change_note(table, change, stale, latest))

        counts["skipped"] = sum(len(b.skipped) for b in found)
        problems = pl.concat(issues)
        receipt = self._receipt(
            receipts.status_of(counts["read"], counts["rejected"]), counts, tuple(bronze),
            "\n".join([_count_note(counts), *_problem_notes(problems),
                       *_reading_notes(grids, found, ignored, self.file), *notes]),
        )
        recorded = self._issues_frame(problems, receipt)
        receipts.record(self.home, receipt, recorded)
        receipts.register(self.home, receipt, scopes, self.received_at)
        return self.file_away(receipt, recorded)

    def _lineage(self, rows: pl.DataFrame) -> pl.DataFrame:
        return rows.with_columns(
            pl.lit(self.file.relative).alias("_source_file"),
            pl.lit(self.file.sha256).alias("_file_hash"),
            pl.lit(self.load_id).alias("_load_id"),
            pl.lit(self.received_at, dtype=pl.Datetime("us", "UTC")).alias("_loaded_at"),
        )

    def _issues_frame(self, problems: pl.DataFrame, receipt: Receipt) -> pl.DataFrame:
        return problems.rename({"_row_number": "row_number", "_sheet": "sheet"}).with_columns(
            pl.lit(receipt.receipt_id).alias("receipt_id"), pl.lit(self.load_id).alias("load_id"),
            pl.lit(self.file.sha256).alias("file_hash"), pl.lit(self.file.source).alias("source"),
            pl.lit(self.file.name).alias("file_name"),
            pl.lit(self.received_at, dtype=pl.Datetime("us", "UTC")).alias("recorded_at"),
        ).select(receipts.REJECTION_SCHEMA.keys()).cast(receipts.REJECTION_SCHEMA)

    # -- answering -------------------------------------------------------------------------------
    def answer(self, status: str, refusal: str | None, reason_zh: str) -> Receipt:
        """A delivery with no rows to load (refused whole, a duplicate, or an empty increment):
        receipt, then the file filed away."""
        receipt = self._receipt(status, Counter(), (), reason_zh, refusal)
        nothing = pl.DataFrame(schema=receipts.REJECTION_SCHEMA)
        receipts.record(self.home, receipt, nothing)
        return self.file_away(receipt, nothing)

    def _receipt(self, status: str, counts: Counter, tables: tuple[str, ...], reasons: str,
                 refusal: str | None = None) -> Receipt:
        file = self.file
        stored = self._destination(kept=status != "rejected" or counts["read"] > 0)
        return Receipt(
            receipt_id=self.receipt_id, source=file.source, department=file.department,
            file_name=file.name, file_path=file.relative, file_hash=file.sha256, file_size=file.size,
            load_id=self.load_id, received_at=self.received_at, as_of=file.as_of, status=status,
            refusal=refusal, tables=tables, rows_read=counts["read"], rows_accepted=counts["read"] - counts["rejected"],
            rows_rejected=counts["rejected"], rows_warned=counts["warned"],
            rows_deduplicated=counts["deduplicated"], rows_skipped=counts["skipped"],
            reasons_zh=reasons, stored_as=str(stored.relative_to(self.home.root)),
        )

    def _destination(self, kept: bool) -> Path:
        """The archive (read files) or the rejected folder (unreadable ones), department kept, never
        overwriting: a name already there gets the content hash, then the load id."""
        root = self.home.archive(self.file.source) if kept else self.home.rejected(self.file.source)
        folder = root / self.file.department if self.file.department else root
        name = Path(self.file.name)
        hashed = f"{name.stem}.{self.file.sha256[:12]}{name.suffix}"
        return next((folder / n for n in (name.name, hashed) if not (folder / n).exists()),
                    folder / f"{name.stem}.{self.file.sha256[:12]}.{self.load_id}{name.suffix}")

    def file_away(self, receipt: Receipt, issues: pl.DataFrame) -> Receipt:
        """Write the sender's receipt beside the kept copy, then move the file (and its ``.ready``
        marker and data dictionary) out of the inbox. Nothing is deleted."""
        target = self.home.root / receipt.stored_as
        target.parent.mkdir(parents=True, exist_ok=True)
        department = self.contracts.departments.get(receipt.department or "")
        target.with_name(receipts.receipt_file_name(receipt, target.name)).write_text(
            receipts.render(receipt, issues, department), encoding="utf-8")
        if self.file.marker.exists():
            shutil.move(self.file.marker, target.with_name(target.name + self.file.marker.suffix))
        if (dictionary := dictionary_of(self.file.path)) is not None:
            kept = target.with_suffix(DICT_SUFFIX)
            own = dictionary.name == self.file.path.stem + DICT_SUFFIX
            (shutil.move if own else shutil.copy2)(dictionary, kept)  # a dataset's dictionary serves later files too
        shutil.move(self.file.path, target)
        return receipt


def _unrouted_issues(group: list[Block], place: str) -> pl.DataFrame:
    """Each record that belongs to no table is rejected, with why."""
    return pl.concat([
        b.rows.select(
            "_row_number", "_sheet", pl.lit(None, dtype=pl.String).alias("column"),
            pl.lit(None, dtype=pl.String).alias("column_label"), pl.lit(b.rule).alias("rule"),
            pl.lit("error").alias("severity"), at_row(place, pl.lit(UNROUTED_RULES[b.rule][1])).alias("message_zh"),
        ) for b in group
    ])


# -- receipt text --------------------------------------------------------------------------------
def _count_note(counts: Counter) -> str:
    text = f"读取{counts['read']}行，接收{counts['read'] - counts['rejected']}行，拒收{counts['rejected']}行"
    if counts["warned"]:
        text += f"；其中{counts['warned']}行有非必填项无法识别，已按空值接收"
    if counts["deduplicated"]:
        text += f"；{counts['deduplicated']}行与已接收的记录业务主键相同（如重复上传），已去重，只保留一份"
    return text + "。"


def _problem_notes(problems: pl.DataFrame) -> list[str]:
    """Problems counted by column and rule, errors first: no values, only where and why."""
    counted = problems.group_by("severity", "rule", "column_label").agg(pl.len().alias("n")).sort(
        "n", "rule", descending=[True, False])
    notes = []
    for severity, title in (("error", "拒收原因"), ("warning", "警告（已按空值接收）")):
        part = counted.filter(pl.col("severity") == severity)
        if part.height:
            notes.append(title + "：" + "；".join(
                f"{'「' + label + '」' if label else '记录'}{SHORT_NAMES[rule]}{n}处"
                for _, rule, label, n in part.iter_rows()) + "。")
    return notes


def _reading_notes(grids: list[Grid], found: list[Block], ignored: list[str], file: InboxFile) -> list[str]:
    notes = []
    if encodings := {g.encoding for g in grids if g.encoding}:
        notes.append("文件编码：" + "、".join(sorted(e.upper() for e in encodings)))
    if any(g.glossary for g in grids) and (dictionary := dictionary_of(file.path)):
        notes.append(f"已按数据字典「{dictionary.name}」识别字段。")
    if skipped := sorted(n for b in found for n in b.skipped):
        shown = "、".join(map(str, skipped[:10])) + ("等" if len(skipped) > 10 else "")
        notes.append(f"表尾备注或重复表头{len(skipped)}行（第{shown}行）不是数据，未读入。")
    if extras := list(dict.fromkeys(e for b in found for e in b.extras)):
        notes.append("模板以外的列已原样保存在原始层，未进入标准表：" + "、".join(extras) + "。")
    if ignored:
        notes.append("工作表" + "、".join(f"「{s}」" for s in ignored) + "不是本中心的模板表格，未读入。")
    return notes


def _change_note(table: Table, change: history.Change, stale: bool, latest: dt.date | None) -> str:
    if stale:
        return (f"{table.title}：本快照日期早于已加载的{latest:%Y-%m-%d}快照，仅存入原始层，"
                "当前数据以较新的快照为准。")
    parts = [f"新增{change.opened}条", f"变更{change.changed}条"]
    if table.load == "snapshot":
        parts.append(f"不在本次快照中、已置为失效{change.closed}条")
    if change.late:
        parts.append(f"{change.late}条早于已有登记，仅存入原始层")
    return f"{table.title}：" + "，".join(parts) + "。"
