"""Faults and hostile input, each really tried: processes killed outright at the commit points and
while waiting for a pool, two loads at once, files still being written, poison names and oversized
files. Every attack must leave the home consistent, answer every file and lose no row."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from redwall import lake
from redwall.generator import generate
from redwall.home import Home
from redwall.identifiers import id_check_char
from redwall.ingest import process_source, receipts
from redwall.pipelines.recovery import HOST_TAG, PID_TAG
from redwall.schemas import load_contracts

REDWALL = str(Path(sys.executable).parent / "redwall")
# What a receipt says that must not depend on whether a run was interrupted.
LOAD_FACTS = ["_load_id", "_loaded_at"]  # when and in which attempt a row was loaded
STABLE = [
    "file_name",
    "status",
    "refusal",
    "rows_read",
    "rows_accepted",
    "rows_rejected",
    "rows_warned",
    "rows_deduplicated",
    "rows_skipped",
    "reasons_zh",
]


@pytest.fixture(scope="module")
def feeds(tmp_path_factory) -> Path:
    """A small generated street's inbox, to copy into each attacked home."""
    home = Home.at(tmp_path_factory.mktemp("feeds")).ensure()
    generate(home, scale="small", seed=11, days=3)
    return home.root / "inbox"


def fresh_home(root: Path, feeds: Path, *sources: str) -> Home:
    home = Home.at(root).ensure()
    for source in sources:
        shutil.copytree(feeds / source, home.inbox(source))
    return home


def redwall(home: Home, *args: str, crash_at: str | None = None, **popen) -> subprocess.Popen:
    env = {**os.environ, "REDWALL_HOME": str(home.root), "DAGSTER_HOME": str(home.dagster_home)}
    env.pop("REDWALL_CRASH_AT", None)
    if crash_at:
        env["REDWALL_CRASH_AT"] = crash_at
    return subprocess.Popen(
        [REDWALL, "--home", str(home.root), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def finished(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def receipt_table(home: Home, source: str | None = None) -> pl.DataFrame:
    """Every receipt (of one source), less what differs between two homes: a duplicate names when
    the first copy loaded."""
    found = lake.read(home, receipts.OPS, receipts.RECEIPTS)
    if source:
        found = found.filter(pl.col("source") == source)
    return (
        found.select(STABLE)
        .with_columns(pl.col("reasons_zh").str.replace_all(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "<time>"))
        .sort("file_name", "reasons_zh")
    )


def instance_of(home: Home) -> dg.DagsterInstance:
    os.environ["DAGSTER_HOME"] = str(home.dagster_home)
    return dg.DagsterInstance.get()


# -- 1. nothing stays stuck ----------------------------------------------------------------------
def test_a_build_killed_mid_load_frees_its_pool_and_the_next_build_completes(tmp_path, feeds, uninterrupted):
    home = fresh_home(tmp_path / "home", feeds, "police")
    # killed outright (SIGKILL, as the OOM killer does) just after its silver commit, holding inbox_police
    code, _ = finished(redwall(home, "build", "--job", "ingest_police_job", crash_at="silver"))
    assert code == -signal.SIGKILL
    with instance_of(home) as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.STARTED
        assert instance.event_log_storage.get_concurrency_info("inbox_police").claimed_slots

    code, out = finished(redwall(home, "build", "--job", "ingest_police_job"))
    assert code == 0, out
    assert f"recovered: run {run.run_id} (ingest_police_job)" in out
    assert "freed pool slot(s) inbox_police" in out
    with instance_of(home) as instance:
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_info("inbox_police").claimed_slots
    assert not any(home.inbox("police").iterdir())
    # the retry answers each file as the uninterrupted run did
    assert_frame_equal(receipt_table(home), receipt_table(uninterrupted, "police"))


def _hold_pool(home: Home, pid: int) -> str:
    """A STARTED run of process ``pid`` holding the inbox_police slot, as a live load would."""
    run_id = str(uuid.uuid4())
    with instance_of(home) as instance:
        instance.add_run(
            dg.DagsterRun(
                job_name="ingest_police_job",
                run_id=run_id,
                status=dg.DagsterRunStatus.STARTED,
                tags={PID_TAG: str(pid), HOST_TAG: socket.gethostname()},
            )
        )
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default("inbox_police")
        assert storage.claim_concurrency_slot("inbox_police", run_id, "ingest_police").is_claimed
    return run_id


def _wait_for(proc: subprocess.Popen, text: str, timeout: float = 120) -> list[str]:
    """The output lines of ``proc`` up to the one containing ``text``."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"never printed {text!r}: {''.join(lines)}")


def test_a_build_waiting_for_a_pool_stops_on_sigterm(tmp_path, feeds):
    home = fresh_home(tmp_path / "home", feeds, "police")
    holder = _hold_pool(home, os.getpid())  # this test process: alive, so the build must wait
    build = redwall(home, "build", "--job", "ingest_police_job")
    _wait_for(build, f"pool inbox_police held by run {holder}")
    started = time.monotonic()
    build.send_signal(signal.SIGTERM)
    code, _ = finished(build, timeout=30)
    assert code == 128 + signal.SIGTERM and time.monotonic() - started < 10
    assert any(home.inbox("police").iterdir())  # nothing was taken


def test_a_build_waiting_for_a_killed_run_recovers_its_slot(tmp_path, feeds):
    home = fresh_home(tmp_path / "home", feeds, "police")
    holder_process = subprocess.Popen(["sleep", "600"])
    holder = _hold_pool(home, holder_process.pid)
    build = redwall(home, "build", "--job", "ingest_police_job")
    _wait_for(build, f"pool inbox_police held by run {holder}")
    holder_process.kill()
    holder_process.wait()
    code, out = finished(build)
    assert code == 0, out
    assert f"recovered: run {holder}" in out and "freed pool slot(s) inbox_police" in out


# -- 3. receipts replay the truth ----------------------------------------------------------------
SOURCES = ("police", "floating", "grid_app", "municipal", "district", "ledgers")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, feeds) -> Home:
    """Every source taken in without a fault: what each receipt must say after any crash."""
    home = fresh_home(tmp_path_factory.mktemp("uninterrupted"), feeds, *SOURCES)
    for source in SOURCES:
        process_source(home, source)
    return home


def _process_killed_at(home: Home, source: str, step: str) -> None:
    """``process_source`` in a process of its own, killed outright just after ``step`` commits."""
    script = (
        "import sys; from redwall.home import Home; from redwall.ingest import process_source; "
        "process_source(Home.at(sys.argv[1]), sys.argv[2])"
    )
    env = {**os.environ, "REDWALL_CRASH_AT": step}
    done = subprocess.run([sys.executable, "-c", script, str(home.root), source], env=env, capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


@pytest.mark.parametrize(
    ("source", "step"),
    [
        ("grid_app", "silver"),
        ("police", "silver"),
        ("ledgers", "silver"),
        ("floating", "receipts"),
        ("municipal", "registry"),
        ("district", "bronze"),
    ],
)
def test_a_retry_after_a_kill_answers_as_the_uninterrupted_run(tmp_path, feeds, uninterrupted, source, step):
    home = fresh_home(tmp_path, feeds, source)
    _process_killed_at(home, source, step)
    process_source(home, source)
    assert_frame_equal(receipt_table(home), receipt_table(uninterrupted, source))
    assert not [p for p in home.inbox(source).rglob("*") if p.is_file()]  # every file answered and filed away
    stored = lake.read(home, receipts.OPS, receipts.RECEIPTS)["stored_as"]
    assert all((home.root / s).exists() for s in stored)
    for table in load_contracts().source_tables(source):  # silver as the uninterrupted run left it
        if lake.exists(uninterrupted, "silver", table.bronze_name):
            ours, theirs = (
                lake.read(h, "silver", table.bronze_name).drop(LOAD_FACTS).sort(pl.all()) for h in (home, uninterrupted)
            )
            assert_frame_equal(ours, theirs, check_column_order=False)


# -- 2. one readiness rule, one lock per source ----------------------------------------------------
POLICE_HEADER = (
    "公民身份号码,姓名,性别,民族,出生日期,户籍地址,居住地址,人户一致标识,人员类型,联系电话,登记日期,注销日期,注销原因\n"
)


def police_rows(n: int, start: int = 0) -> list[str]:
    rows = []
    for i in range(start, start + n):  # valid IDs of men born 1950–1960 (an odd sequence number)
        body = f"110102{19500101 + i % 28 + (i // 28) * 10000:08d}{(i % 400) * 2 + 101:03d}"
        rows.append(
            f"{body}{id_check_char(body)},居民{i},男,汉族,{body[6:14]},北京市西城区府右街{i}号,"
            f"北京市西城区府右街{i}号,01,户籍人口,,2020-01-01,,\n"
        )
    return rows


def test_a_file_still_being_written_is_left_until_it_settles(tmp_path, monkeypatch):
    monkeypatch.setenv("REDWALL_LIMIT_SETTLE_SECONDS", "2")
    home = Home.at(tmp_path).ensure()
    path = home.inbox("police") / "实有人口_20261120.csv"
    path.parent.mkdir(parents=True)
    rows = police_rows(300)

    def write():  # a slow copy: a line every 20 ms, never pausing for the settling interval
        with path.open("w", encoding="gb18030") as f:
            f.write(POLICE_HEADER)
            for row in rows:
                f.write(row)
                f.flush()
                time.sleep(0.02)

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.5)
    assert process_source(home, "police") == []  # still growing: not taken
    assert path.exists()
    writer.join()
    (receipt,) = process_source(home, "police")  # settled now
    assert receipt.rows_read == receipt.rows_accepted == 300
    stored = home.root / receipt.stored_as
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == receipt.file_hash
    assert not path.exists()


def test_a_file_that_changes_after_it_was_read_is_read_again(tmp_path, monkeypatch):
    home = Home.at(tmp_path).ensure()
    path = home.inbox("police") / "实有人口_20261120.csv"
    path.parent.mkdir(parents=True)
    path.write_text(POLICE_HEADER + "".join(police_rows(5)), encoding="gb18030")
    from redwall.ingest import load

    conclude = load.Delivery.conclude

    def append_meanwhile(self):  # the sender writes again while the first content is being loaded
        with path.open("a", encoding="gb18030") as f:
            f.write("".join(police_rows(3, start=5)))
        conclude(self)

    monkeypatch.setattr(load.Delivery, "conclude", append_meanwhile)
    (first,) = process_source(home, "police")
    monkeypatch.undo()
    assert first.rows_read == 5 and (home.root / first.stored_as).exists()
    assert hashlib.sha256((home.root / first.stored_as).read_bytes()).hexdigest() == first.file_hash
    assert path.exists()  # changed after it was read: not filed away as loaded
    (second,) = process_source(home, "police")
    assert second.rows_read == 8 and second.status == "accepted" and not path.exists()


def test_two_loads_of_one_source_at_once_corrupt_nothing(tmp_path, feeds):
    home = fresh_home(tmp_path, feeds, "grid_app", "ledgers")
    script = (
        "import sys; from redwall.home import Home; from redwall.ingest import process_source; "
        "[process_source(Home.at(sys.argv[1]), s) for s in sys.argv[2:]]"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(home.root), *order], stderr=subprocess.PIPE)
        for order in (("grid_app", "ledgers"), ("ledgers", "grid_app"))
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    found = lake.read(home, receipts.OPS, receipts.RECEIPTS)
    delivered = [
        p
        for source in ("grid_app", "ledgers")
        for p in (feeds / source).rglob("*")
        if p.is_file() and not p.name.endswith((".ready", ".dict.json"))
    ]
    assert found.height == len(delivered) == found["receipt_id"].n_unique()  # each file answered once
    assert all((home.root / s).exists() for s in found["stored_as"])
    registry = lake.read(home, receipts.OPS, receipts.REGISTRY)
    assert registry.height == registry["file_hash"].n_unique()
    assert not [p for p in home.inbox("grid_app").rglob("*") if p.is_file()]


# Each writer stands for one source's loads: it records a receipt with its rows' problems, records
# it again (a retry after a crash rewrites its own receipt), and compacts the ops tables, as every
# load does. Their rows share files: without one writer at a time, Delta refuses some of the
# rewrites and lets two compactions of the same files both commit, doubling their rows.
CONCURRENT_WRITER = """
import datetime as dt, sys, time
import polars as pl
from redwall import lake
from redwall.home import Home
from redwall.ingest import receipts

home, source, rounds = Home.at(sys.argv[1]), sys.argv[2], int(sys.argv[3])
print("ready", flush=True)  # imported: told when to start, the same moment as the others
start = float(sys.stdin.readline())
while time.time() < start:
    time.sleep(0.005)
for n in range(rounds):
    for attempt in ("first", "retry"):
        receipt = receipts.Receipt(
            f"{source}-{n}", source, None, f"{source}_{n}.csv", f"{source}/{source}_{n}.csv", f"{source}{n:060d}",
            10, f"{attempt}-{n}", dt.datetime.now(dt.UTC), dt.date(2026, 11, 20), "partially_accepted", None,
            (f"{source}.table",), 10, 9, 1, 0, 0, 0, attempt, f"archive/{source}_{n}.csv",
        )
        issue = pl.DataFrame([{
            "receipt_id": receipt.receipt_id, "load_id": receipt.load_id, "file_hash": receipt.file_hash,
            "source": source, "table": f"{source}.table", "file_name": receipt.file_name, "sheet": None,
            "row_number": 3, "column": "phone", "column_label": "联系电话", "rule": "phone_format",
            "severity": "error", "message_zh": attempt, "recorded_at": receipt.received_at,
        }], schema=receipts.REJECTION_SCHEMA)
        receipts.record(home, [receipt], issue)
    for name in (receipts.RECEIPTS, receipts.REJECTIONS):
        lake.compact(home, receipts.OPS, name, min_files=4)
"""


def test_loads_of_several_sources_writing_the_ops_tables_at_once_lose_nothing(tmp_path):
    home = Home.at(tmp_path).ensure()
    sources, rounds = ("police", "floating", "grid_app", "ledgers"), 6
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_WRITER, str(home.root), source, str(rounds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for source in sources
    ]
    assert [proc.stdout.readline() for proc in procs] == ["ready\n"] * len(sources)  # every writer imported
    start = time.time() + 0.5  # then all begin at once
    for proc in procs:
        proc.stdin.write(f"{start}\n")
        proc.stdin.flush()
    logs = [proc.communicate(timeout=300)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * len(sources), "\n".join(logs)[-3000:]
    commits = [c["operation"] for c in lake.open_table(home, receipts.OPS, receipts.RECEIPTS).history()]
    assert commits.count("OPTIMIZE") >= 2  # compacted while others wrote
    found = lake.read(home, receipts.OPS, receipts.RECEIPTS)
    assert found.height == found["receipt_id"].n_unique() == len(sources) * rounds
    assert set(found["reasons_zh"]) == {"retry"}  # each receipt as its last recording left it
    problems = lake.read(home, receipts.OPS, receipts.REJECTIONS)
    assert problems.height == len(sources) * rounds and set(problems["message_zh"]) == {"retry"}


# -- 4. one bad file harms only itself ----------------------------------------------------------------
def drop_police(home: Home, name: str | bytes, data: bytes) -> Path:
    folder = home.inbox("police")
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(os.fsdecode(os.path.join(os.fsencode(folder), os.fsencode(name))))
    path.write_bytes(data)
    return path


def good_police(n: int = 3) -> bytes:
    return (POLICE_HEADER + "".join(police_rows(n))).encode("gb18030")


def test_poison_names_are_answered_and_kept_and_harm_no_other_file(tmp_path):
    home = Home.at(tmp_path / "home").ensure()
    outside = tmp_path / "outside.csv"  # never to be read: outside the home
    outside.write_bytes(good_police(2))
    drop_police(home, "实有人口_20261101.csv".encode("gbk"), good_police(3))  # a GBK name on a UTF-8 disk
    long_name = "实有人口_20261102_" + "很长的文件名" * 12 + "很长.csv"  # 248 bytes: no room for a receipt name
    assert 240 < len(long_name.encode()) <= 255
    drop_police(home, long_name, good_police(4))
    drop_police(home, "..实有人口_20261103.csv", good_police(5))
    link = home.inbox("police") / "实有人口_20261104.csv"
    link.symlink_to(outside)
    drop_police(home, "实有人口_20261105.csv", good_police(6))  # a good file among them

    answered = {r.file_name: r for r in process_source(home, "police")}
    assert len(answered) == 5 and not any(home.inbox("police").iterdir())  # each answered, none left
    gbk = answered["实有人口_20261101.csv".encode("gbk").decode("utf-8", "backslashreplace")]  # \xca\xb5…
    assert gbk.rows_accepted == 3 and "文件名含有无法识别的字符" in gbk.reasons_zh
    assert answered[long_name].rows_accepted == 4 and "文件名过长" in answered[long_name].reasons_zh
    assert answered["..实有人口_20261103.csv"].refusal == "hidden_name"
    symlink = answered["实有人口_20261104.csv"]
    assert symlink.refusal == "symlink" and symlink.rows_read == 0
    assert (home.root / symlink.stored_as).is_symlink() and outside.exists()  # the link kept, not followed
    assert answered["实有人口_20261105.csv"].rows_accepted == 6
    for receipt in answered.values():  # each kept, with the sender's receipt beside it
        kept = home.root / receipt.stored_as
        assert kept.is_symlink() or kept.exists()
        assert kept.with_name(kept.name + ".receipt.json").exists()
        assert len(os.fsencode(kept.name + ".receipt.json")) <= 255
    assert lake.read(home, receipts.OPS, receipts.RECEIPTS).height == 5


def test_a_poison_name_with_a_bad_row_and_a_copy_of_it_harm_no_later_file(tmp_path):
    """The rejected row of a GBK-named file, and the duplicate that names it, carry its name as
    written in receipts (``\\xNN``): text that cannot be stored must never stop the source."""
    home = Home.at(tmp_path / "home").ensure()
    inbox = home.inbox("grid_app")
    inbox.mkdir(parents=True)
    payload = {
        "event_id": "SJ1101020012026112000001",
        "source": "热线",
        "major_code": "01",
        "minor_code": "02",
        "address": "府右街12号院3号楼",
        "description": "暴露垃圾",
        "photo_count": 1,
    }
    record = {
        "record_id": "r1",
        "type": "event",
        "recorded_at": "2026-11-20T09:00:00+08:00",
        "worker_id": "ZX11010200101",
        "grid_code": "110102001008001",
        "payload": payload,
    }
    content = (json.dumps(record, ensure_ascii=False) + '\n{"record_id": "r2", broken\n').encode()
    with open(os.path.join(os.fsencode(inbox), "网格_坏名.jsonl".encode("gbk")), "wb") as gbk:  # a GBK name
        gbk.write(content)
    (first,) = process_source(home, "grid_app")  # its bad row is recorded under the name as written
    assert first.status == "partially_accepted" and "\\x" in first.file_name
    problems = lake.read(home, receipts.OPS, receipts.REJECTIONS)
    assert problems.height == 1 and problems["file_name"][0] == first.file_name
    (inbox / "grid_app_2026112010.jsonl").write_bytes(content)  # the same content under a good name
    (inbox / "grid_app_2026112011.jsonl").write_bytes(content.replace(b"r1", b"r3").replace(b"00001", b"00002"))
    copy, later = process_source(home, "grid_app")  # the copy's receipt names the first file
    assert copy.status == "duplicate" and first.file_name in copy.reasons_zh
    assert later.status == "partially_accepted" and not any(inbox.iterdir())


def test_a_quoted_delimiter_without_a_final_newline_is_complete(tmp_path):
    home = Home.at(tmp_path / "home").ensure()
    rows = police_rows(2)
    rows[0] = rows[0].replace(
        "北京市西城区府右街0号,", '"北京市西城区府右街0号,3号楼",', 1
    )  # a quoted comma in the address
    drop_police(home, "实有人口_20261120.csv", (POLICE_HEADER + "".join(rows)).rstrip("\n").encode("gb18030"))
    (receipt,) = process_source(home, "police")
    assert receipt.refusal is None and receipt.rows_accepted == 2
    # still refused when the last line really is cut off
    drop_police(home, "实有人口_20261127.csv", (POLICE_HEADER + "".join(rows))[:-40].encode("gb18030"))
    (cut,) = process_source(home, "police")
    assert cut.refusal == "incomplete"


def _zip_bomb(path: Path, unpacked_mb: int) -> None:
    """A workbook whose sheet unpacks to ``unpacked_mb`` MB of blank cells."""
    import zipfile

    from openpyxl import Workbook

    Workbook().save(path)
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    row = b"<row>" + b'<c t="inlineStr"><is><t> </t></is></c>' * 100 + b"</row>"
    sheet = parts["xl/worksheets/sheet1.xml"]
    head, tail = sheet.split(b"<sheetData/>") if b"<sheetData/>" in sheet else sheet.split(b"</sheetData>")
    body = row * (unpacked_mb * 1024 * 1024 // len(row))
    parts["xl/worksheets/sheet1.xml"] = head + b"<sheetData>" + body + b"</sheetData>" + tail
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in parts.items():
            z.writestr(name, data)


@pytest.mark.parametrize(
    ("attack", "refusal"),
    [
        ("one_line", "line_too_long"),
        ("wide", "too_many_columns"),
        ("zip_bomb", "unpacks_too_large"),
        ("large", "too_large"),
    ],
)
def test_oversized_input_is_refused_before_it_is_parsed(tmp_path, monkeypatch, attack, refusal):
    monkeypatch.setenv("REDWALL_LIMIT_MAX_FILE_BYTES", str(64 * 1024 * 1024))
    home = Home.at(tmp_path / "home").ensure()
    folder = home.inbox("ledgers") / "safety"
    folder.mkdir(parents=True)
    path = folder / ("bad.xlsx" if attack == "zip_bomb" else "bad.csv")
    if attack == "one_line":  # 27 MB on one line
        path.write_bytes(("a," * (27 * 512 * 1024)).encode())
    elif attack == "wide":
        path.write_bytes((",".join(f"列{i}" for i in range(5000)) + "\n").encode() * 3)
    elif attack == "zip_bomb":
        _zip_bomb(path, 300)
        assert path.stat().st_size < 2 * 1024 * 1024
    else:
        with path.open("wb") as f:
            f.truncate(65 * 1024 * 1024)
    # taken in by a process of its own, whose peak memory (VmHWM: of this program, not of the
    # process it was forked from, as ru_maxrss would be) is measured
    script = (
        "import re, sys; from redwall.home import Home; from redwall.ingest import process_source; "
        "process_source(Home.at(sys.argv[1]), 'ledgers'); "
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"
    )
    done = subprocess.run([sys.executable, "-c", script, str(home.root)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stdout.split()[-1]) / 1024
    (answer,) = lake.read(home, receipts.OPS, receipts.RECEIPTS).iter_rows(named=True)
    assert answer["refusal"] == refusal and answer["status"] == "rejected", answer["reasons_zh"]
    assert (home.root / answer["stored_as"]).exists()
    assert peak_mb < 600, f"peak memory {peak_mb:.0f} MB"


def test_a_stray_file_never_fails_the_build_and_a_broken_layout_blocks_until_fixed(tmp_path, monkeypatch):
    from redwall.pipelines.definitions import defs

    monkeypatch.setenv("REDWALL_HOME", str(tmp_path / "home"))
    home = Home.at(tmp_path / "home").ensure()
    ledgers = home.inbox("ledgers") / "safety"
    ledgers.mkdir(parents=True)
    (ledgers / "会议纪要.csv").write_text("会议时间,地点,内容\n2026-11-20,三楼,安全工作\n", encoding="utf-8")

    def layout_check(job: str) -> dg.AssetCheckEvaluation:
        result = defs.resolve_job_def(job).execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
        )
        return next(c for c in result.get_asset_check_evaluations() if c.check_name == "feed_layout_intact")

    stray = layout_check("ingest_ledgers_job")
    assert stray.passed and stray.metadata["stray_files"].value == 1

    drop_police(home, "实有人口_20261120.csv", "姓名,性别\n张三,男\n".encode("gb18030"))  # 公民身份号码 vanished
    broken = layout_check("ingest_police_job")
    assert not broken.passed and broken.metadata["tables_with_changed_layout"].value == "police.population"
    again = layout_check("ingest_police_job")  # nothing fixed, nothing new: still blocking
    assert not again.passed
    drop_police(home, "实有人口_20261127.csv", good_police(3))  # the next snapshot has its columns again
    assert layout_check("ingest_police_job").passed


def test_an_analyst_releases_a_broken_layout_and_the_next_refusal_blocks_again(tmp_path, monkeypatch):
    import contextlib
    import io

    from redwall.cli import main
    from redwall.ingest import layouts
    from redwall.pipelines.definitions import defs

    monkeypatch.setenv("REDWALL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    home = Home.at(tmp_path / "home").ensure()

    def run(job: str, config: dict | None = None) -> dg.ExecuteInProcessResult:
        return defs.resolve_job_def(job).execute_in_process(
            run_config=config, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
        )

    def layout_check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
        return next(c for c in result.get_asset_check_evaluations() if c.check_name == "feed_layout_intact")

    def cli(*args: str) -> tuple[int, str]:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            code = main(["--home", str(home.root), *args])
        return code, printed.getvalue()

    drop_police(home, "实有人口_20261113.csv", good_police(3))
    assert run("ingest_police_job").success
    drop_police(home, "实有人口_20261120.csv", "姓名,性别\n张三,男\n".encode("gb18030"))  # 公民身份号码 vanished
    broken = layout_check(run("ingest_police_job"))
    assert not broken.passed
    (refused,) = broken.metadata["refused_receipts"].value.split(", ")
    code, listed = cli("held")
    assert code == 0 and refused in listed and "police.population" in listed

    # Released in the UI's way (the job and its config): the check passes in that run, and from then on.
    config = {"receipt_id": refused, "by": "李分析", "reason": "公安已确认本期导出有误，下周照常报送"}
    released = run("release_layout", {"ops": {"release_broken_layout": {"config": config}}})
    assert released.success and layout_check(released).passed
    assert layout_check(run("ingest_police_job")).passed
    (entry,) = layouts.released(home).iter_rows(named=True)
    assert (entry["decided_by"], entry["decision_reason"], entry["tables"]) == (
        "李分析",
        config["reason"],
        ["police.population"],
    )
    assert run("release_layout", {"ops": {"release_broken_layout": {"config": config}}}).success is False  # once

    # The next refusal of the table blocks anew; released through the CLI this time, saying who and why.
    drop_police(home, "实有人口_20261127.csv", "姓名,性别,民族\n李四,男,汉族\n".encode("gb18030"))
    again = layout_check(run("ingest_police_job"))
    assert not again.passed
    (second,) = again.metadata["refused_receipts"].value.split(", ")
    assert second != refused
    assert cli("discard", second, "--why", "作废")[0] == 2  # a refused file applies nothing: nothing to discard
    assert cli("release", second, "--why", "")[0] == 1  # a release says why
    code, told = cli("release", second, "--by", "王分析", "--why", "导出格式临时变更，已通知公安")
    assert code == 0 and "released by 王分析" in told, told
    assert layout_check(run("ingest_police_job")).passed
    code, history = cli("held", "--all")
    assert refused in history and second in history and "released by 李分析" in history
    # the refused files stay refused: nothing of theirs reached silver
    assert lake.read(home, "silver", "police_population").height == 3
