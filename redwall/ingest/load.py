"""Taking delivered files in: read, keep, type, answer, file away, a batch of files at a time.

Each file is read and answered on its own, but the files of a batch are loaded together: one Delta
commit per table and per ops table for the whole batch, so a run costs in proportion to its rows,
not to its files (the grid app delivers a small file every hour). A file feeding a snapshot table
is a batch of its own: each snapshot is the truth on its date and is applied alone, in date order.
Except consecutive snapshots of one table kept per community (a ledger per community): those of
different communities, touching different people, are applied together, with the result of one
after another; a community's second snapshot starts the next batch.

The order of writes makes a run killed at any point safe to repeat:

1. bronze, per table: the batch's rows replace whatever an earlier attempt left for the same file
   hashes (one Delta commit each);
2. silver, per table: a diff against the current state, so a second application changes nothing —
   except for a snapshot judged too destructive to apply unasked, held instead (:mod:`.holds`);
3. ops/rejection (replaced per file hash), ops/file_receipt (upserted by receipt id) and
   ops/held_delivery (the held ones, upserted by receipt id);
4. ops/file_registry: only now are the contents "loaded" (a held content is not);
5. each receipt file is written beside its kept copy, then the file leaves the inbox.

A re-run before step 4 repeats steps 1–3 without duplicates, whichever batch each file then falls
in, and answers as the first attempt would have: each silver commit records in its metadata what it
did for each file (:func:`history.applied`), so a file whose silver commit landed is answered from
that record, not by diffing against silver that already holds its rows. After step 4 (a held
delivery: step 3) it recognises each delivery (same receipt id) and only finishes step 5. The
receipt id is derived from the delivery (path, size, mtime, content), so the same delivery always
gets the same receipt.

An analyst's decision on a held delivery (:func:`release`, :func:`discard`) goes the same way, on
the kept copy: a release is that delivery loaded again as a batch of its own, its hold lifted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import os
import re
import shutil
import signal
import uuid
from collections import Counter
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import Path

import polars as pl
import polars.selectors as cs

from redwall import lake
from redwall.home import PRIVATE_FILE_MODE, Home
from redwall.ingest import history, holds, receipts
from redwall.ingest.formats import Grid, Unreadable, dictionary_of, read_file
from redwall.ingest.inbox import (
    DICT_SUFFIX,
    InboxFile,
    clear_copies,
    in_data_order,
    inbox_file,
    inbox_files,
    settled,
    source_lock,
    take,
    unchanged,
)
from redwall.ingest.layout import NOT_DATA, NUMBER_CELL, Block, blocks
from redwall.ingest.normalise import ISSUE_SCHEMA, RULE_NAMES, Judged, at_row, column_labels, judge
from redwall.ingest.receipts import Receipt
from redwall.schemas import Contracts, Table, load_contracts
from redwall.templates import AUXILIARY_SHEETS, template_compatibility, template_identity

UNROUTED = "unrouted"  # bronze <source>_unrouted: records that belong to no contract table
# rule → (what it is, in a receipt's summary; the message for the record, after "第N行记录")
UNROUTED_RULES = {
    "record_unreadable": ("不是完整的JSON", "不是完整的JSON记录（可能上传中断），已原样保存，请重新上传该条记录"),
    "record_type_unknown": ("类型未知", "的记录类型不是本中心接收的类型，已原样保存，请核对采集App版本"),
}
SHORT_NAMES = RULE_NAMES | {rule: short for rule, (short, _) in UNROUTED_RULES.items()}
PROBLEM_SCHEMA = ISSUE_SCHEMA | {"table": pl.String}  # a file's problems, in every table
# A batch ends at whichever comes first: the work a crash makes a re-run repeat and the length of
# its IN (…) predicates stay bounded by the files, the memory it holds by the rows.
BATCH_FILES = 200
BATCH_ROWS = 250_000
CRASH_AT = "REDWALL_CRASH_AT"  # see crash_point
log = logging.getLogger(__name__)
# A kept file's name plus ".<hash 12>.<load id 24>" and ".receipt.json" must fit in 255 bytes.
NAME_BYTES = 255 - 51


def process_source(home: Home, source: str, contracts: Contracts | None = None) -> list[Receipt]:
    """Take in every file of the source's inbox that is complete (:func:`inbox.settled`: the
    sensors' rule), as :func:`process_files` does, then :func:`compact`. A file still being
    written stays in the inbox for a later run."""
    contracts = contracts or load_contracts()
    with source_lock(home, source):
        taken = _process(home, source, [f.path for f in settled(home, source, inbox_files(home, source))], contracts)
        compact(home, source, contracts)
    return taken


def compact(home: Home, source: str, contracts: Contracts | None = None) -> None:
    """Compact the source's bronze and silver tables and the ops tables where small files piled
    up (each batch appends a few). Call it after :func:`process_files`."""
    contracts = contracts or load_contracts()
    tables = [("bronze", f"{source}_{UNROUTED}")]
    tables += [(layer, t.bronze_name) for t in contracts.source_tables(source) for layer in ("bronze", "silver")]
    tables += [(receipts.OPS, name) for name in (receipts.RECEIPTS, receipts.REJECTIONS, receipts.REGISTRY)]
    with source_lock(home, source):  # never beside a load of the source
        for layer, name in tables:
            lake.compact(home, layer, name)


def process_file(home: Home, source: str, path: str | Path, contracts: Contracts | None = None) -> Receipt:
    """Take in one delivered file and answer it with a receipt: a batch of one."""
    (receipt,) = process_files(home, source, [path], contracts)
    return receipt


def process_files(
    home: Home, source: str, paths: Iterable[str | Path], contracts: Contracts | None = None
) -> list[Receipt]:
    """Take in delivered files of one source (paths absolute or inside the source's inbox) and
    answer each with its own receipt; returned oldest data first, the order they are taken in.
    Under the source's lock (:func:`inbox.source_lock`): a second load of the source, in this
    process or another, waits, and then skips the files this one filed away."""
    contracts = contracts or load_contracts()
    with source_lock(home, source):
        return _process(home, source, paths, contracts)


def _process(home: Home, source: str, paths: Iterable[str | Path], contracts: Contracts) -> list[Receipt]:
    if left := clear_copies(home, source):
        log.warning(
            "recovered: removed %d partial cop%s of %s files left by a killed run",
            left,
            "y" if left == 1 else "ies",
            source,
        )
    listed = []
    for p in paths:
        with contextlib.suppress(FileNotFoundError):  # filed away by a run that held the lock before
            listed.append(inbox_file(home, source, Path(p)))
    # each read from a copy taken now; one that changed meanwhile is read by a later run
    files = in_data_order(copy for f in listed if (copy := take(home, f)) is not None)
    known = receipts.registered(home, (f.sha256 for f in files))  # contents loaded, by hash
    known |= {
        h["file_hash"]: h | {"loaded_at": h["held_at"]}  # contents waiting for a decision
        for h in holds.pending(home, (f.sha256 for f in files)).iter_rows(named=True)
    }
    taken: list[Delivery] = []
    batch: list[Delivery] = []
    batch_kind: object = "batch"
    for file in files:
        delivery = Delivery(home, file, contracts)
        taken.append(delivery)
        earlier = known.get(file.sha256)
        if earlier and earlier["receipt_id"] == delivery.receipt_id:  # an earlier run died while filing away
            delivery.receipt, delivery.issues = receipts.find(home, delivery.receipt_id)
            delivery.file_away()
            continue
        if earlier:
            when = earlier["loaded_at"].astimezone(receipts.LOCAL_TZ)
            # another department's file is not named to this one: its name may say what it holds
            which = (
                f"「{earlier['file_name']}」" if earlier.get("department") == file.department else "另一报送单位的文件"
            )
            state = "收到、正等待大数据中心确认的" if "held_at" in earlier else "已加载的"
            delivery.answer(
                "duplicate", "duplicate", f"重复文件：内容与{when:%Y-%m-%d %H:%M}{state}{which}完全相同，未重复加载。"
            )
        elif delivery.read():  # its rows will load: a later copy in this run is a duplicate
            known[file.sha256] = {
                "receipt_id": delivery.receipt_id,
                "loaded_at": delivery.received_at,
                "file_name": file.display_name,
                "department": file.department,
            }
        kind = _kind(contracts, delivery)
        if kind is not None and kind != batch_kind:  # after what came before it
            _load(home, contracts, batch)
            batch, batch_kind = [], kind
        batch.append(delivery)
        if len(batch) == BATCH_FILES or sum(d.counts["read"] for d in batch) >= BATCH_ROWS:
            _load(home, contracts, batch)
            batch = []
    _load(home, contracts, batch)
    return [d.answered_receipt for d in taken]


def _kind(contracts: Contracts, delivery: Delivery) -> object:
    """Which deliveries a delivery may share a batch with: ``None`` (answered, nothing to load: any),
    ``"batch"`` (no snapshot: each other), the table of a per-community snapshot (snapshots of that
    table alone, applied in groups of different communities by :func:`_load`), or itself (any
    other snapshot: applied alone)."""
    if delivery.receipt is not None:
        return None
    if not delivery.snapshot:
        return "batch"
    (key, *more) = delivery.bronze
    if not more and key in contracts.tables and history.per_community(contracts.table(key)):
        return key
    return delivery


def candidates(contracts: Contracts, file: InboxFile) -> list[Table]:
    """The tables a file may hold: its source's (a ledger: its department's), narrowed by the
    contract's file-name pattern when the name follows it."""
    tables = contracts.source_tables(file.source)
    if file.department in contracts.departments:  # only a departmental source's files have one
        tables = [t for t in tables if t.department_code == file.department]
    named = [t for t in tables if t.files and fnmatch(file.name, t.files)]
    return named or tables


def refuse_name(file: InboxFile) -> None:
    """:class:`Unreadable` for a delivery refused by what it is, not what it holds: a symbolic link
    (never followed, so nothing outside the home is read) or a hidden file (a name starting with a
    dot, e.g. a copy tool's temporary file left behind)."""
    if file.link:
        raise Unreadable(
            "symlink",
            "文件是指向其他位置的链接（快捷方式），为安全起见不读取链接指向的内容；"
            "请把文件本身（而不是链接）放入收件箱",
        )
    if file.name.startswith("."):
        raise Unreadable(
            "hidden_name",
            "文件名以“.”开头，是隐藏文件（常为复制工具留下的临时文件），未读入；"
            "如果是要报送的数据，请去掉文件名开头的“.”后重新报送",
        )


def storable_name(file: InboxFile) -> bool:
    """Whether the file can be kept under its own name: UTF-8 text, short enough that the
    longest name derived from it (hash, load id, receipt suffix) fits a file system's 255 bytes."""
    return file.name_readable and len(os.fsencode(file.name)) <= NAME_BYTES


def stored_name(file: InboxFile) -> str:
    """The name a file whose own name cannot be kept (:func:`storable_name`) is kept under: its
    content hash and its suffix, when that is plain."""
    suffix = Path(file.display_name).suffix
    return file.sha256[:16] + (suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else "")


def _load(home: Home, contracts: Contracts, batch: list[Delivery]) -> None:
    """Load a batch in the order of writes of the module docstring, then file its files away. A
    batch of per-community snapshots of one table loads as consecutive groups that can be applied
    together (:func:`history.disjoint_prefix`), each group a batch of its own: its silver commit
    precedes its registry entry, and a second snapshot of a community follows the first's."""
    loading = [d for d in batch if d.receipt is None]
    keys = {key for d in loading for key in d.bronze}
    if len(loading) < 2 or len(keys) != 1 or not history.per_community(table := contracts.table(keys.pop())):
        _load_batch(home, contracts, batch)
        return
    answered = [d for d in batch if d.receipt is not None]
    for delivery in loading:  # judged once, before anything is written: a group depends on what it holds
        delivery.judged[table.key] = _judge(table, [delivery])
    while loading:
        accepted = [d.judged[table.key].rows.filter(~pl.col("_rejected")) for d in loading]
        n = history.disjoint_prefix(table, accepted, history.current_versions(home, table))
        _load_batch(home, contracts, answered + loading[:n])
        answered, loading = [], loading[n:]


def _load_batch(home: Home, contracts: Contracts, batch: list[Delivery]) -> None:
    if not batch:
        return
    loading = [d for d in batch if d.receipt is None]
    parts: dict[str, list[Delivery]] = {}  # table key → the deliveries with rows for it, oldest first
    for delivery in loading:
        for key in delivery.bronze:
            parts.setdefault(key, []).append(delivery)
    ours = lake.one_of("_file_hash", (d.file.sha256 for d in loading))
    retried = False  # an earlier attempt wrote some of these files: it may have reached silver too
    for key, deliveries in parts.items():
        rows = pl.concat([d.bronze[key] for d in deliveries], how="diagonal")
        retried |= lake.replace(home, "bronze", _bronze_name(key), rows.drop(cs.starts_with(NUMBER_CELL)), where=ours)
    crash_point("bronze")
    current = _hold_destructive(home, contracts, loading)
    for key, deliveries in parts.items():
        if key in contracts.tables:
            _conform(home, contracts.table(key), deliveries, retried, current.get(key))
    crash_point("silver")
    for delivery in loading:
        delivery.conclude()
    receipts.record(home, [d.answered_receipt for d in batch], pl.concat([d.issues for d in batch]))
    holds.record(home, [(d.answered_receipt, d.verdict) for d in loading if d.verdict])
    crash_point("receipts")
    if applied := [(d.answered_receipt, d.scopes) for d in loading if not d.verdict]:
        receipts.register(home, applied)
    crash_point("registry")
    for delivery in batch:
        delivery.file_away()
        delivery.bronze.clear()  # loaded: a run holds only its receipts, not every batch's rows
        delivery.judged.clear()


def crash_point(step: str) -> None:
    """Where a crash test kills the process outright (``REDWALL_CRASH_AT=<step>``: bronze, silver,
    receipts, registry — just after that step of the module docstring committed): the same
    ``kill -9`` an operator or the out-of-memory killer gives, at a known point."""
    if os.environ.get(CRASH_AT) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _hold_destructive(home: Home, contracts: Contracts, loading: list[Delivery]) -> dict[str, pl.DataFrame]:
    """Before silver is touched, hold each snapshot delivery that would close far more than usual
    or has most rows refused (:func:`holds.judge`), unless an analyst released it. A late snapshot
    changes nothing and is never held. Returns the current versions read, per table, for
    :func:`_conform` (a batch of snapshots is of one table, of different communities if several)."""
    current: dict[str, pl.DataFrame] = {}
    for delivery in loading:
        if delivery.decision is not None:
            continue
        for key in delivery.bronze:
            table = contracts.tables.get(key)
            if table is None or table.hold is None:
                continue
            judged = delivery.judged.setdefault(key, _judge(table, [delivery]))
            accepted = judged.rows.filter(~pl.col("_rejected"))
            if accepted.is_empty() or receipts.superseding(
                home, key, history.scope(table, accepted), delivery.file.as_of, delivery.received_at
            ):
                continue
            if key not in current:
                current[key] = history.current_versions(home, table)
            verdict = holds.judge(table, judged.rows, current[key])
            if verdict is not None and verdict.held and delivery.verdict is None:
                delivery.verdict = verdict
    return current


def _bronze_name(key: str) -> str:
    return key.replace(".", "_", 1)


def _conform(home: Home, table: Table, deliveries: list[Delivery], retried: bool, current: pl.DataFrame | None) -> None:
    """Judge a table's rows of a batch, apply the accepted ones to silver (not those of a held
    delivery), and tell each delivery. On a retry, the deliveries an earlier attempt already
    applied are answered from what its commit recorded (:func:`history.applied`) and not applied
    again. ``current``: the table's current versions, if just read."""
    judged = _judge(table, deliveries)
    replayed = history.applied(home, table, [d.file.sha256 for d in deliveries]) if retried else {}
    flags = dict(
        judged.rows.group_by("_file_hash")
        .agg(pl.struct(pl.col("_rejected").sum().alias("rejected"), pl.col("_warned").sum().alias("warned")))
        .iter_rows()
    )
    problems = judged.issues.with_columns(pl.lit(table.key).alias("table")).partition_by("_file_hash", as_dict=True)
    held = [d.file.sha256 for d in deliveries if d.verdict]
    accepted = judged.rows.filter(~pl.col("_rejected") & ~pl.col("_file_hash").is_in(held))
    stale: dict[str, bool | None] = {}  # per snapshot delivery, with the newest date already applied
    latest: dict[str, dt.date | None] = {}
    if table.load == "snapshot":  # several only when of different communities (see _load)
        changes, live = {}, {}
        for delivery in deliveries:
            sha, as_of = delivery.file.sha256, delivery.file.as_of
            if delivery.verdict:  # held: nothing of it applies
                changes[sha] = history.Change()
                continue
            own = accepted.filter(pl.col("_file_hash") == sha)
            if own.is_empty():
                # Every row refused: applied, this snapshot would close every current record (deregister
                # a whole register). It stays in bronze with its rejections; silver keeps the last good one.
                changes[sha], stale[sha] = history.Change(), None
                continue
            scope = history.scope(table, own)
            delivery.scopes += [f"{table.key}|{part}" for part in scope]
            latest[sha] = receipts.superseding(home, table.key, scope, as_of, delivery.received_at)
            stale[sha] = latest[sha] is not None
            if stale[sha]:
                changes |= history.apply(home, table, own, {sha: as_of}, stale=True)
            elif sha in replayed:
                changes[sha] = replayed[sha]
            else:
                live[sha] = as_of
        if live:
            changes |= history.apply(
                home, table, accepted.filter(pl.col("_file_hash").is_in(list(live))), live, current=current
            )
    else:
        changes = dict(replayed)
        if fresh := {
            d.file.sha256: d.file.as_of for d in deliveries if d.file.sha256 not in replayed and not d.verdict
        }:
            changes |= history.apply(home, table, accepted.filter(pl.col("_file_hash").is_in(list(fresh))), fresh)
    for delivery in deliveries:
        sha = delivery.file.sha256
        change = changes.get(sha, history.Change())
        delivery.counts.update(flags.get(delivery.file.sha256, {}))
        delivery.counts["deduplicated"] += change.collapsed + (change.unchanged if table.load == "append" else 0)
        if (found := problems.get((delivery.file.sha256,))) is not None:
            delivery.problems.append(found)
        if delivery.verdict and delivery.verdict.table.key == table.key:
            delivery.changes[table.key] = delivery.verdict.reason_zh
        else:
            delivery.changes[table.key] = _change_note(
                table, change, stale.get(sha, False), latest.get(sha), delivery.file.as_of, held=bool(delivery.verdict)
            )


def _judge(table: Table, deliveries: list[Delivery]) -> Judged:
    """One :func:`judge` per way the deliveries name rows and columns (a call costs more than a
    row), its rows back in delivery order."""
    if all(table.key in d.judged for d in deliveries):
        judged = [d.judged[table.key] for d in deliveries]
        return Judged(pl.concat([j.rows for j in judged], how="diagonal"), pl.concat([j.issues for j in judged]))
    ways: dict[tuple, list[Delivery]] = {}
    for delivery in deliveries:
        labels = column_labels(table, delivery.labels[table.key])
        ways.setdefault((delivery.place, tuple(labels.items())), []).append(delivery)
    judged = [
        judge(table, pl.concat([d.bronze[table.key] for d in group], how="diagonal"), place, dict(labels))
        for (place, labels), group in ways.items()
    ]
    if len(judged) == 1:
        return judged[0]
    order = {d.file.sha256: i for i, d in enumerate(deliveries)}
    rows = pl.concat([j.rows for j in judged]).sort(pl.col("_file_hash").replace_strict(order), maintain_order=True)
    return Judged(rows, pl.concat([j.issues for j in judged]))


class Delivery:
    """One delivered file on its way through a run: read, then answered alone or loaded in a batch."""

    def __init__(self, home: Home, file: InboxFile, contracts: Contracts):
        self.home, self.file, self.contracts = home, file, contracts
        identity = f"{file.relative}|{file.size}|{file.mtime_ns}|{file.sha256}"  # relative: always text
        self.receipt_id = hashlib.sha256(identity.encode()).hexdigest()[:16]
        self.received_at = dt.datetime.now(dt.UTC)
        self.load_id = f"{self.received_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        self.receipt: Receipt | None = None  # set once answered
        self.issues = pl.DataFrame(schema=receipts.REJECTION_SCHEMA)
        self.bronze: dict[str, pl.DataFrame] = {}  # table key → its rows as bronze keeps them
        self.labels: dict[str, dict[str, str]] = {}  # table key → column → header as written
        self.place = ""  # how a sender finds a row, for messages
        self.judged: dict[str, Judged] = {}  # table key → its rows judged ahead of the batch (see _load)
        self.snapshot = False  # feeds a snapshot table
        self.counts: Counter = Counter()
        self.problems: list[pl.DataFrame] = []  # ISSUE_SCHEMA and table, per table
        self.notes: list[str] = []  # how the file was read
        self.changes: dict[str, str] = {}  # table key → what the file did to it
        self.scopes: list[str] = []  # <table>|<scope> of each snapshot applied
        self.verdict: holds.Verdict | None = None  # held: what applying it would have done
        self.decision: holds.Decision | None = None  # an analyst released it (see :func:`release`)

    @property
    def answered_receipt(self) -> Receipt:
        """The receipt of a delivery answered (refused or duplicate, or its batch loaded); asked
        before, an error."""
        if self.receipt is None:
            raise RuntimeError(f"{self.file.relative} (receipt {self.receipt_id}) is not answered yet")
        return self.receipt

    @classmethod
    def kept(cls, home: Home, receipt: Receipt, contracts: Contracts) -> Delivery:
        """A delivery filed away already, read again from its kept copy with the identity (receipt,
        load, time received) it came with."""
        copy = home.root / receipt.stored_as
        stat = copy.stat()
        file = InboxFile(
            receipt.source,
            home.inbox(receipt.source, receipt.department) / receipt.file_name,
            stat.st_size,
            stat.st_mtime_ns,
            receipt.department,
            kept=copy,
        )
        if (file.sha256, file.size, file.as_of) != (receipt.file_hash, receipt.file_size, receipt.as_of):
            raise holds.CannotDecide(
                f"the kept copy {receipt.stored_as} is no longer the file delivered with receipt {receipt.receipt_id}"
            )
        delivery = cls(home, file, contracts)
        delivery.receipt_id, delivery.load_id, delivery.received_at = (
            receipt.receipt_id,
            receipt.load_id,
            receipt.received_at,
        )
        return delivery

    # -- reading ---------------------------------------------------------------------------------
    def read(self) -> bool:
        """Read the file into its bronze rows per table; False when it has none to load, answered
        already (refused whole, or an empty increment)."""
        try:
            refuse_name(self.file)
            grids = read_file(self.file.content, beside=self.file.kept or self.file.path)
            tables = candidates(self.contracts, self.file)
            if self.file.source in self.contracts.departmental and (identity := template_identity(self.file.content)):
                tables = [self._template_table(*identity)]
                grids = [g for g in grids if g.sheet not in AUXILIARY_SHEETS]  # instructions, identity
            found, ignored = blocks(grids, tables)
            if not any(b.rows.height for b in found):
                # An empty increment is a day with nothing new; an empty snapshot would deregister everyone.
                if found and all(b.table is not None and b.table.load != "snapshot" for b in found):
                    self.answer("accepted", None, "文件只有表头，本期没有新增或变更记录。")
                    return False
                raise Unreadable("no_data", "文件只有表头，没有数据行，未读入；如为全量快照，空文件不会注销任何人员")
        except Unreadable as why:
            self.answer("rejected", why.rule, f"无法读入：{why.reason_zh}。", why.table or self._named_table())
            return False
        self.place = found[0].grid.place
        by_table: dict[str, list[Block]] = {}
        for block in found:
            by_table.setdefault(block.table.key if block.table else f"{self.file.source}.{UNROUTED}", []).append(block)
        for key, group in by_table.items():
            self.bronze[key] = pl.concat([self._lineage(b.rows) for b in group], how="diagonal")
            self.labels[key] = group[0].labels
            if group[0].table is None:
                self.problems.append(
                    _unrouted_issues(group, self.place, self.file.sha256).with_columns(pl.lit(key).alias("table"))
                )
                self.counts["rejected"] += self.bronze[key].height
        self.snapshot = any(b.table is not None and b.table.load == "snapshot" for b in found)
        self.counts["read"] = sum(rows.height for rows in self.bronze.values())
        self.counts["skipped"] = sum(len(b.skipped) for b in found)
        self.notes = _reading_notes(grids, found, ignored, self.file)
        return True

    def _template_table(self, key: str, version: int) -> Table:
        """The ledger a workbook made from one of our templates says it is, or :class:`Unreadable`
        when it belongs elsewhere or its template is too old to read safely."""
        table = self.contracts.tables.get(key)
        if table is None or table.kind != "ledger":
            raise Unreadable("foreign_template", "这是本中心已停用或未知的模板，请到模板目录下载当前模板重新填写")
        if self.file.department and table.department_code != self.file.department:
            raise Unreadable(
                "foreign_template",
                f"这是{table.department_name}的「{table.title}」模板，"
                "不是本部门的台账，请放入对应部门的文件夹或改用本部门模板",
            )
        current = table.template_version
        match template_compatibility(table, version):
            case "outdated":
                raise Unreadable(
                    "outdated_template",
                    f"「{table.title}」模板版本过旧（第{version}版），列已变化，请下载第{current}版模板重新填写",
                )
            case "newer":
                raise Unreadable(
                    "outdated_template",
                    f"「{table.title}」模板是第{version}版，本中心目前使用第{current}版，"
                    f"无法按新版读取；请改用模板目录中的第{current}版模板重新填写，"
                    "或联系大数据中心",
                )
        return table

    def _lineage(self, rows: pl.DataFrame) -> pl.DataFrame:
        return rows.with_columns(
            pl.lit(self.file.relative).alias("_source_file"),
            pl.lit(self.file.sha256).alias("_file_hash"),
            pl.lit(self.load_id).alias("_load_id"),
            pl.lit(self.received_at, dtype=pl.Datetime("us", "UTC")).alias("_loaded_at"),
        )

    # -- answering -------------------------------------------------------------------------------
    def conclude(self) -> None:
        """The receipt of a loaded file, once its batch has been applied to silver."""
        problems = pl.concat([pl.DataFrame(schema=PROBLEM_SCHEMA), *self.problems], how="diagonal")
        counts = self.counts
        status = "held" if self.verdict else receipts.status_of(counts["read"], counts["rejected"])
        self.receipt = self._receipt(
            status,
            counts,
            tuple(self.bronze),
            "\n".join(
                [
                    *([self.decision.note_zh] if self.decision else []),
                    _count_note(counts),
                    *_problem_notes(problems),
                    *self.notes,
                    *(self.changes[key] for key in self.bronze if key in self.changes),
                ]
            ),
            self.verdict.rule if self.verdict else None,
        )
        self.issues = (
            problems.rename({"_row_number": "row_number", "_sheet": "sheet", "_file_hash": "file_hash"})
            .with_columns(
                pl.lit(self.receipt_id).alias("receipt_id"),
                pl.lit(self.load_id).alias("load_id"),
                pl.lit(self.file.source).alias("source"),
                pl.lit(self.file.display_name).alias("file_name"),
                pl.lit(self.received_at, dtype=pl.Datetime("us", "UTC")).alias("recorded_at"),
            )
            .select(receipts.REJECTION_SCHEMA.keys())
            .cast(receipts.REJECTION_SCHEMA)
        )

    def answer(self, status: str, refusal: str | None, reason_zh: str, table: str | None = None) -> None:
        """A delivery with no rows to load (refused whole, a duplicate, or an empty increment): its
        receipt, recorded and filed away with its batch; ``table``: the table a refused file was
        recognised as (by its header, or its system's file-name pattern)."""
        self.receipt = self._receipt(status, Counter(), (table,) if table else (), reason_zh, refusal)

    def _named_table(self) -> str | None:
        """The one table the file's name says it is (``实有人口_*.csv``); a ledger's name says nothing."""
        tables = [t for t in candidates(self.contracts, self.file) if t.files and fnmatch(self.file.name, t.files)]
        return tables[0].key if len(tables) == 1 else None

    def _receipt(
        self, status: str, counts: Counter, tables: tuple[str, ...], reasons: str, refusal: str | None = None
    ) -> Receipt:
        file = self.file
        stored = file.kept or self._destination(kept=status != "rejected" or counts["read"] > 0)
        return Receipt(
            receipt_id=self.receipt_id,
            source=file.source,
            department=file.department,
            file_name=file.display_name,
            file_path=file.relative,
            file_hash=file.sha256,
            file_size=file.size,
            load_id=self.load_id,
            received_at=self.received_at,
            as_of=file.as_of,
            status=status,
            refusal=refusal,
            tables=tables,
            rows_read=counts["read"],
            rows_accepted=counts["read"] - counts["rejected"],
            rows_rejected=counts["rejected"],
            rows_warned=counts["warned"],
            rows_deduplicated=counts["deduplicated"],
            rows_skipped=counts["skipped"],
            reasons_zh=reasons + _name_note(file, stored),
            stored_as=str(stored.relative_to(self.home.root)),
        )

    def _destination(self, kept: bool) -> Path:
        """The archive (read files) or the rejected folder (unreadable ones), department kept, never
        overwriting: a name already there gets the content hash, then the load id."""
        root = self.home.archive(self.file.source) if kept else self.home.rejected(self.file.source)
        folder = root / self.file.department if self.file.department else root
        name = Path(self.file.name if storable_name(self.file) else stored_name(self.file))
        hashed = f"{name.stem}.{self.file.sha256[:12]}{name.suffix}"
        return next(
            (folder / n for n in (name.name, hashed) if not (folder / n).exists()),
            folder / f"{name.stem}.{self.file.sha256[:12]}.{self.load_id}{name.suffix}",
        )

    def file_away(self) -> None:
        """Write the sender's receipt beside the kept copy, then move the file (and its ``.ready``
        marker and data dictionary) out of the inbox, unless it was kept already. Nothing is deleted."""
        receipt = self.answered_receipt
        _write_receipt(self.home, self.contracts, receipt, self.issues)
        if self.file.kept:
            return
        target = self.home.root / receipt.stored_as
        if self.file.marker.exists():
            _keep_private(self.file.marker, target.with_name(target.name + self.file.marker.suffix), shutil.move)
        if not self.file.link and (dictionary := dictionary_of(self.file.path)) is not None:
            kept = target.with_suffix(DICT_SUFFIX)
            own = dictionary.name == self.file.path.stem + DICT_SUFFIX
            # a dataset's dictionary serves later files too
            _keep_private(dictionary, kept, shutil.move if own else shutil.copy2)
        if self.file.copy is None:  # a link: the link itself is kept, never what it points to
            shutil.move(self.file.path, target)
            return
        _keep_private(self.file.copy, target, shutil.move)  # exactly what was read
        shutil.rmtree(self.file.copy.parent, ignore_errors=True)
        if unchanged(self.file):
            self.file.path.unlink()
        else:  # written to again after it was read: the new content is a delivery of its own
            log.warning("%s changed after it was read: left in the inbox to be read again", self.file.relative)


def _keep_private(source: Path, target: Path, how) -> None:
    """Keep a delivered file as the owner's alone: a move keeps the mode its sender gave it."""
    how(source, target)
    target.chmod(PRIVATE_FILE_MODE)


def _name_note(file: InboxFile, stored: Path) -> str:
    """Where a file whose name could not be kept is, for its sender."""
    if storable_name(file):
        return ""
    why = "含有无法识别的字符（可能是GBK等非UTF-8编码的文件名）" if not file.name_readable else "过长"
    return f"\n文件名{why}，原件已保存为「{stored.name}」，回执同名；以后请使用较短的中文或英文文件名。"


def _write_receipt(home: Home, contracts: Contracts, receipt: Receipt, issues: pl.DataFrame) -> None:
    """The sender's copy of a receipt, beside the kept copy of the file (replaced when it changes)."""
    target = home.root / receipt.stored_as
    target.parent.mkdir(parents=True, exist_ok=True)
    department = contracts.departments.get(receipt.department or "")
    target.with_name(receipts.receipt_file_name(receipt, target.name)).write_text(
        receipts.render(receipt, issues, department), encoding="utf-8"
    )


# -- an analyst's decision on a held delivery ------------------------------------------------------
def release(home: Home, receipt_id: str, by: str, reason: str, contracts: Contracts | None = None) -> Receipt:
    """Apply a held delivery, on an analyst's word, as an ordinary load would have applied it when
    it came (a snapshot superseded since stays in bronze only, see :mod:`.holds`); returns its new
    receipt, which says who released it and why. Under the source's lock, like a load."""
    contracts = contracts or load_contracts()
    with source_lock(home, holds.waiting(home, receipt_id)["source"]):
        held, _ = _held(home, receipt_id)
        delivery = Delivery.kept(home, held, contracts)
        delivery.decision = holds.Decision.now(holds.RELEASED, by, reason)
        if not delivery.read():
            raise holds.CannotDecide(
                f"receipt {receipt_id}: the kept copy can no longer be read as it was "
                f"({delivery.answered_receipt.reasons_zh}); discard it and ask for the file again"
            )
        _load(home, contracts, [delivery])
        holds.decide(home, receipt_id, delivery.decision)
    return delivery.answered_receipt


def discard(home: Home, receipt_id: str, by: str, reason: str, contracts: Contracts | None = None) -> Receipt:
    """Refuse a held delivery, on an analyst's word: nothing is applied, the file stays archived and
    its rows in bronze; returns its new receipt, which says who discarded it and why."""
    contracts = contracts or load_contracts()
    with source_lock(home, holds.waiting(home, receipt_id)["source"]):
        held, issues = _held(home, receipt_id)
        decision = holds.Decision.now(holds.DISCARDED, by, reason)
        receipt = dataclasses.replace(held, status="discarded", reasons_zh=f"{decision.note_zh}\n{held.reasons_zh}")
        receipts.record(home, [receipt], issues)
        holds.decide(home, receipt_id, decision)
        _write_receipt(home, contracts, receipt, issues)
    return receipt


def _held(home: Home, receipt_id: str) -> tuple[Receipt, pl.DataFrame]:
    holds.waiting(home, receipt_id)
    return receipts.find(home, receipt_id)


def _unrouted_issues(group: list[Block], place: str, file_hash: str) -> pl.DataFrame:
    """Each record that belongs to no table is rejected, with why."""
    issues = []
    for b in group:
        assert b.rule is not None  # a block of no table always says why (layout._records)
        issues.append(
            b.rows.select(
                pl.lit(file_hash).alias("_file_hash"),
                "_row_number",
                "_sheet",
                pl.lit(None, dtype=pl.String).alias("column"),
                pl.lit(None, dtype=pl.String).alias("column_label"),
                pl.lit(b.rule).alias("rule"),
                pl.lit("error").alias("severity"),
                at_row(place, pl.lit(UNROUTED_RULES[b.rule][1])).alias("message_zh"),
            )
        )
    return pl.concat(issues)


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
    counted = (
        problems.group_by("severity", "rule", "column_label")
        .agg(pl.len().alias("n"))
        .sort("n", "rule", "column_label", descending=[True, False, False])
    )
    notes = []
    for severity, title in (("error", "拒收原因"), ("warning", "警告（已按空值接收）")):
        part = counted.filter(pl.col("severity") == severity)
        if part.height:
            notes.append(
                title
                + "："
                + "；".join(
                    f"{'「' + label + '」' if label else '记录'}{SHORT_NAMES[rule]}{n}处"
                    for _, rule, label, n in part.iter_rows()
                )
                + "。"
            )
    return notes


def _reading_notes(grids: list[Grid], found: list[Block], ignored: list[str], file: InboxFile) -> list[str]:
    notes = []
    if encodings := {g.encoding for g in grids if g.encoding}:
        notes.append("文件编码：" + "、".join(sorted(e.upper() for e in encodings)))
    if any(g.glossary for g in grids) and (
        dictionary := dictionary_of(file.kept or file.path)
    ):  # beside the delivery, not the copy read
        notes.append(f"已按数据字典「{dictionary.name}」识别字段。")
    if skipped := [aside for b in found for aside in b.skipped]:
        notes.append(
            f"{len(skipped)}行不是数据，未读入："
            + "、".join(
                f"{kind}{len(rows)}行（第{'、'.join(map(str, rows[:10]))}{'等' if len(rows) > 10 else ''}行）"
                for kind in NOT_DATA
                if (rows := sorted(n for n, k in skipped if k == kind))
            )
            + "。"
        )
    if extras := list(dict.fromkeys(e for b in found for e in b.extras)):
        notes.append("模板以外的列已原样保存在原始层，未进入标准表：" + "、".join(extras) + "。")
    if ignored:
        notes.append("工作表" + "、".join(f"「{s}」" for s in ignored) + "不是本中心的模板表格，未读入。")
    return notes


def _change_note(
    table: Table,
    change: history.Change,
    stale: bool | None,
    latest: dt.date | None,
    as_of: dt.date,
    *,
    held: bool = False,
) -> str:
    if held:  # another table of the delivery is held: nothing of it is applied
        return f"{table.title}：本文件待确认，暂未应用。"
    if stale is None:
        return f"{table.title}：本快照没有一行可用，未应用，当前数据仍以上一份快照为准。"
    if stale and latest == as_of:  # a held delivery released after its correction was applied
        return (
            f"{table.title}：本快照之后已加载了同一日期（{latest:%Y-%m-%d}）的更新快照，仅存入原始层，"
            "当前数据以较新的快照为准。"
        )
    if stale:
        return f"{table.title}：本快照日期早于已加载的{latest:%Y-%m-%d}快照，仅存入原始层，当前数据以较新的快照为准。"
    parts = [f"新增{change.opened}条", f"变更{change.changed}条"]
    if table.load == "snapshot":
        parts.append(f"不在本次名单中、已置为失效{change.closed}条")
    if change.late:
        parts.append(f"{change.late}条早于已有登记，仅存入原始层")
    note = f"{table.title}：" + "，".join(parts) + "。"
    if change.closed > change.opened + change.changed + change.unchanged:  # more gone than sent: a partial list?
        note += (
            f"注意：置为失效的{change.closed}条多于本次报送的条数。本表按整表报送处理，名单中没有的记录"
            "会被置为失效；如果只是补报部分记录，请重新报送完整的名单。"
        )
    return note
