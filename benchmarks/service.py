"""Benchmark: redwall as a service. Starts ``redwall serve`` on a street-scale home and feeds it the
generator's deliveries at an accelerated pace, one planted destructive delivery among them, while a
dashboard polls the warehouse; then prints what an operator would ask.

    python benchmarks/service.py                      # street scale, 14 days, a day per minute
    python benchmarks/service.py --day-seconds 30     # faster
    python benchmarks/service.py --days 3             # street scale, a quick rerun (about 10 minutes)
    python benchmarks/service.py --scale small --days 3 --day-seconds 20   # a quick try

Deliveries keep the generator's calendar: a file named with a date (``_YYYYMMDD``, grid-app hour
files ``_YYYYMMDDHH``) arrives on that day of the accelerated clock, the hour files spread over it;
monthly files (``_YYYYMM``) and the department ledgers, whose names carry no day, arrive on the
last day, when a month's state and a fortnight's ledgers are sent. A system feed's file is complete
when its ``.ready`` marker is written (after the file, as the feeds do); a clerk's ledger, dropped
without a marker, when it has been copied — the inbox sensor then waits for it to stop changing.

The planted destructive delivery: a police snapshot holding 30 % of the register, dated between
the first two real snapshots (a half-written export). It must be held, not applied. The generator
plants its own too: whole-list ledgers (独居老人) whose IDs a spreadsheet turned into numbers, which
must be held as well; the holds are listed by file.

Printed: files delivered and answered; median and worst time from a file being complete to the
warehouse reflecting it (its receipt in the published ``ops.file_receipt``, which is published with
the marts built from it); runs failed; rows lost (every row read is accepted or rejected, and
every row read is in bronze); deliveries held; whether the dashboards' tables were readable on
every poll; the machine's load average meanwhile (the figures are wall clock: on a shared machine
they grow with the load); and where the time from complete to warehouse went, phase by phase, read
from the Dagster instance's own run records and events (see :func:`phases`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REDWALL = str(Path(sys.executable).parent / "redwall")
DAY_IN_NAME = re.compile(r"_(\d{8})(\d{2})?\.")
MONTH_IN_NAME = re.compile(r"_(\d{6})\.")
MARKER = ".ready"
SIDECAR = ".dict.json"  # a municipal file's data dictionary: copied just before the file
POLL_SECONDS = 2.0
DRAIN_SECONDS = 600  # after the last delivery, how long to wait for the warehouse to reflect it
SHARE_KEPT = 0.3


@dataclass
class Delivery:
    source: str
    relative: str  # inside the inbox: <source>/[<department>/]<name>, as receipts record it
    staged: Path
    at: float  # seconds after the start of the feed
    marker: bool
    completed: float | None = None  # wall clock when complete
    reflected: float | None = None  # wall clock when first seen in the published warehouse


PORTS = range(3300, 3400)  # the webserver's port: this benchmark's own range on a shared machine


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def generate(home: Path, scale: str, seed: int, days: int) -> None:
    subprocess.run(
        [REDWALL, "--home", str(home), "generate", "--scale", scale, "--seed", str(seed), "--days", str(days)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def plant_destructive_snapshot(staged: Path) -> Path:
    """A police snapshot with the header and 30 % of the persons of the first one, dated halfway
    to the second: what a half-written export looks like."""
    snapshots = sorted((staged / "police").glob("实有人口_*.csv"))
    first, second = snapshots[0], snapshots[1]
    day = lambda p: time.strptime(p.stem.split("_")[1], "%Y%m%d")  # noqa: E731
    middle = (time.mktime(day(first)) + time.mktime(day(second))) / 2
    lines = first.read_bytes().split(b"\n")
    kept = lines[: 1 + int((len(lines) - 1) * SHARE_KEPT)]
    planted = staged / "police" / f"实有人口_{time.strftime('%Y%m%d', time.localtime(middle))}.csv"
    planted.write_bytes(b"\n".join(kept) + b"\n")
    return planted


def schedule(staged: Path, day_seconds: float) -> list[Delivery]:
    files = [p for p in staged.rglob("*") if p.is_file() and not p.name.endswith(SIDECAR)]
    days = sorted({m.group(1) for p in files if (m := DAY_IN_NAME.search(p.name))})
    first = time.mktime(time.strptime(days[0], "%Y%m%d"))
    last_day = (time.mktime(time.strptime(days[-1], "%Y%m%d")) - first) / 86400
    out = []
    for path in files:
        relative = str(path.relative_to(staged))
        source = relative.split("/")[0]
        if m := DAY_IN_NAME.search(path.name):
            day = (time.mktime(time.strptime(m.group(1), "%Y%m%d")) - first) / 86400
            hour = int(m.group(2)) if m.group(2) else 8  # a day's files are sent in the morning
            at = (day + hour / 24) * day_seconds
        else:  # monthly state and ledgers: on the last day, in the afternoon
            at = (last_day + 15 / 24) * day_seconds
        out.append(Delivery(source, relative, path, at, marker=source != "ledgers"))
    return sorted(out, key=lambda d: d.at)


def deliver(delivery: Delivery, inbox: Path) -> None:
    target = inbox / delivery.relative
    target.parent.mkdir(parents=True, exist_ok=True)
    sidecar = delivery.staged.with_name(delivery.staged.name.rsplit(".", 1)[0] + SIDECAR)
    if sidecar.exists():
        shutil.copy(sidecar, target.with_name(sidecar.name))
    partial = target.with_name("." + target.name + ".part")  # hidden while it is copied
    shutil.copy(delivery.staged, partial)
    os.replace(partial, target)
    if delivery.marker:
        (target.parent / (target.name + MARKER)).touch()
    delivery.completed = time.time()


def wait_ready(port: int, service: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise SystemExit(f"the service ended with status {service.returncode} before it answered")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"the service did not answer on port {port} within {timeout:.0f}s")


class Dashboard:
    """A dashboard's reader: every poll opens the warehouse read-only, reads every table's row count
    and the published receipts, and closes it (DuckDB caches an open file per process)."""

    def __init__(self, warehouse: Path):
        self.warehouse = warehouse
        self.polls = self.unreadable = 0
        self.errors: list[str] = []

    def poll(self) -> set[str] | None:
        import duckdb

        if not self.warehouse.exists():
            return None  # nothing published yet: not a reading failure
        self.polls += 1
        try:
            with duckdb.connect(str(self.warehouse), read_only=True) as con:
                tables = con.sql(
                    "SELECT schema_name, table_name FROM duckdb_tables() "
                    "WHERE schema_name IN ('mart', 'quality', 'catalog', 'ops')"
                ).fetchall()
                for schema, table in tables:
                    con.sql(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()
                return {path for (path,) in con.sql("SELECT file_path FROM ops.file_receipt").fetchall()}
        except Exception as error:
            self.unreadable += 1
            self.errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
            return None


def lost_rows(home: Path) -> tuple[int, int]:
    """Rows lost, and files whose rows are not all in bronze: for every receipt, rows read must be
    accepted + rejected, and the rows of a file read must all be in bronze (by its content hash)."""
    import polars as pl

    from redwall import lake
    from redwall.home import Home

    h = Home.at(home)
    receipts = lake.read(h, "ops", "file_receipt").filter(pl.col("status") != "duplicate")
    unbalanced = int((receipts["rows_read"] - receipts["rows_accepted"] - receipts["rows_rejected"]).abs().sum())
    in_bronze: dict[str, int] = {}
    for table in (home / "lake" / "bronze").iterdir():
        counts = lake.scan(h, "bronze", table.name).group_by("_file_hash").len().collect()
        for file_hash, n in counts.iter_rows():
            in_bronze[file_hash] = in_bronze.get(file_hash, 0) + n
    missing = [(r["rows_read"] - in_bronze.get(r["file_hash"], 0)) for r in receipts.iter_rows(named=True)]
    return unbalanced + sum(m for m in missing if m > 0), sum(1 for m in missing if m > 0)


def run_figures(home: Path) -> tuple[dict[str, int], list[str]]:
    """Runs by status, and for each failed run its job and the first line of what failed."""
    import dagster as dg

    by_status: dict[str, int] = {}
    failures = []
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        for record in instance.get_run_records():
            run = record.dagster_run
            by_status[run.status.value] = by_status.get(run.status.value, 0) + 1
            if run.status == dg.DagsterRunStatus.FAILURE:
                errors = [
                    e.dagster_event.event_specific_data.error.message.splitlines()[0][:160]
                    for e in instance.all_logs(
                        run.run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
                    )
                    if getattr(e.dagster_event.event_specific_data, "error", None)
                ]
                failures.append(f"{run.job_name} {run.run_id[:8]}: {errors[0] if errors else 'no error recorded'}")
    return by_status, failures


ACTIVE = ("NOT_STARTED", "QUEUED", "STARTING", "STARTED", "CANCELING")
IDLE_TIMEOUT_SECONDS = 300


def wait_idle(home: Path, timeout: float = IDLE_TIMEOUT_SECONDS) -> int:
    """Wait until no run is queued or running (so stopping the service kills none); return how many
    still were at the timeout."""
    import dagster as dg

    statuses = [dg.DagsterRunStatus(s) for s in ACTIVE]
    deadline = time.monotonic() + timeout
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        while (active := instance.get_runs_count(dg.RunsFilter(statuses=statuses))) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
    return active


PHASES = {
    "detect": "complete → load requested (inbox sensor tick)",
    "load_queue": "load requested → launched (run queue)",
    "load_startup": "load launched → running (run-worker process start-up, imports)",
    "load": "load running → ended (taking the file in)",
    "follow": "load ended → rebuild requested (automation tick)",
    "rebuild_queue": "rebuild requested → launched (run queue: the rebuild before it)",
    "rebuild_startup": "rebuild launched → running (run-worker process start-up, imports)",
    "rebuild": "rebuild running → published (marts, quality, directory, warehouse)",
    "seen": "published → seen by the dashboard (its poll)",
}


def phases(home: Path, deliveries: list[Delivery]) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Where each reflected delivery's time went, from the instance's records: the load that took
    the file (the inbox sensor names its files in the run config), and the rebuild whose publish
    the dashboard first saw it in (the last warehouse materialization before that poll). Also the
    rebuild runs' step durations. A delivery taken by a load that named no files is left out."""
    import dagster as dg

    kinds = {
        dg.DagsterEventType.RUN_DEQUEUED,
        dg.DagsterEventType.RUN_STARTING,
        dg.DagsterEventType.RUN_START,
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_SUCCESS,
        dg.DagsterEventType.STEP_FAILURE,
    }
    out: dict[str, list[float]] = {name: [] for name in PHASES}
    steps: dict[str, list[float]] = {}
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        runs = {r.dagster_run.run_id: r for r in instance.get_run_records()}
        events: dict[str, dict[str, float]] = {}
        step_times: dict[str, dict[str, list[float]]] = {}

        def moments(run_id: str) -> dict[str, float]:
            if run_id not in events:
                seen: dict[str, float] = {}
                for entry in instance.all_logs(run_id, of_type=kinds):
                    kind = entry.dagster_event.event_type_value
                    if kind.startswith("STEP_"):
                        step_times.setdefault(run_id, {}).setdefault(entry.step_key, []).append(entry.timestamp)
                    else:
                        seen.setdefault(kind, entry.timestamp)
                events[run_id] = seen
            return events[run_id]

        loads: dict[str, str] = {}  # inbox-relative file → the run that took it (the first)
        for run_id, record in sorted(runs.items(), key=lambda item: item[1].create_timestamp):
            config = record.dagster_run.run_config or {}
            for op in (config.get("ops") or {}).values():
                for path in (op.get("config") or {}).get("files", []):
                    loads.setdefault(path.removeprefix("inbox/"), run_id)
        published = sorted(
            (r.timestamp, r.run_id)
            for r in instance.fetch_materializations(dg.AssetKey(["warehouse", "redwall"]), limit=10_000).records
        )
        rebuilds = set()
        for d in deliveries:
            if d.reflected is None or d.relative not in loads:
                continue
            load = runs[loads[d.relative]]
            before = [p for p in published if p[0] <= d.reflected]
            if not before or load.end_time is None:
                continue
            publish_at, rebuild_id = before[-1]
            rebuild = runs[rebuild_id]
            rebuilds.add(rebuild_id)
            lm, rm = moments(load.dagster_run.run_id), moments(rebuild_id)
            load_created, rebuild_created = load.create_timestamp.timestamp(), rebuild.create_timestamp.timestamp()
            load_launched = lm.get("PIPELINE_DEQUEUED", lm.get("PIPELINE_STARTING", load_created))
            rebuild_launched = rm.get("PIPELINE_DEQUEUED", rm.get("PIPELINE_STARTING", rebuild_created))
            load_running, rebuild_running = lm.get("PIPELINE_START", load_launched), rm.get("PIPELINE_START")
            for name, value in (
                ("detect", load_created - d.completed),
                ("load_queue", load_launched - load_created),
                ("load_startup", load_running - load_launched),
                ("load", load.end_time - load_running),
                ("follow", rebuild_created - load.end_time),
                ("rebuild_queue", rebuild_launched - rebuild_created),
                ("rebuild_startup", (rebuild_running or rebuild_launched) - rebuild_launched),
                ("rebuild", publish_at - (rebuild_running or rebuild_launched)),
                ("seen", d.reflected - publish_at),
            ):
                out[name].append(value)
        for run_id in rebuilds:
            for step, (start, *ends) in step_times.get(run_id, {}).items():
                if ends:
                    steps.setdefault(step, []).append(ends[-1] - start)
    return out, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="street")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--day-seconds", type=float, default=60.0, help="how long a generated day lasts")
    parser.add_argument("--home", help="data home to use (default: a new temporary folder)")
    parser.add_argument("--no-destructive", action="store_true", help="do not plant the destructive delivery")
    args = parser.parse_args()
    # Stopped from outside: still stop the service (the finally below), never leave it running.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))

    home = Path(args.home or tempfile.mkdtemp(prefix=f"redwall-service-{args.scale}-")).resolve()
    print(
        f"service benchmark {args.scale} (seed {args.seed}, {args.days} days, a day every "
        f"{args.day_seconds:.0f} s) in {home}",
        flush=True,
    )
    generate(home, args.scale, args.seed, args.days)
    staged = home.parent / (home.name + "-deliveries")
    shutil.rmtree(staged, ignore_errors=True)
    shutil.move(home / "inbox", staged)
    (home / "inbox").mkdir()
    planted = None if args.no_destructive else plant_destructive_snapshot(staged)
    deliveries = schedule(staged, args.day_seconds)
    print(
        f"  {len(deliveries)} deliveries staged, planted: {planted.relative_to(staged) if planted else 'none'}",
        flush=True,
    )

    port = free_port()
    log = (home / "service.log").open("w")
    started = time.monotonic()
    # As in production: the pseudonym key comes from the environment (a fresh one, thrown away after).
    env = {**os.environ, "REDWALL_PSEUDONYM_KEY": secrets.token_hex(32)}
    service = subprocess.Popen(
        [REDWALL, "--home", str(home), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=ROOT,
    )
    try:
        wait_ready(port, service)
        print(f"  redwall serve answered on port {port} after {time.monotonic() - started:.0f} s", flush=True)
        dashboard = Dashboard(home / "warehouse" / "redwall.duckdb")
        feed_start = time.time()
        pending = list(deliveries)
        last_delivery = feed_start + deliveries[-1].at
        load: list[float] = []
        while True:
            now = time.time()
            load.append(os.getloadavg()[0])
            while pending and feed_start + pending[0].at <= now:
                deliver(pending.pop(0), home / "inbox")
            published = dashboard.poll()
            if published is not None:
                seen = time.time()
                for d in deliveries:
                    if d.completed and d.reflected is None and d.relative in published:
                        d.reflected = seen
            waiting = [d for d in deliveries if d.reflected is None]
            if not pending and (not waiting or now > last_delivery + DRAIN_SECONDS):
                break
            if service.poll() is not None:
                print(f"  the service ended by itself (status {service.returncode})", flush=True)
                break
            time.sleep(POLL_SECONDS)
        feed_seconds = time.time() - feed_start
        still_active = wait_idle(home)
    finally:
        if service.poll() is None:
            service.send_signal(signal.SIGTERM)
            stopped = service.wait(timeout=120)
        else:
            stopped = service.returncode
        log.close()

    sys.path.insert(0, str(ROOT))
    import polars as pl

    from redwall import lake
    from redwall.home import Home

    receipts = lake.read(Home.at(home), "ops", "file_receipt")
    answered = set(receipts["file_path"])
    latencies = sorted(d.reflected - d.completed for d in deliveries if d.reflected)
    lost, files_short = lost_rows(home)
    runs, failures = run_figures(home)
    spent, steps = phases(home, deliveries)
    held = receipts.filter(pl.col("status") == "held")
    statuses = dict(receipts.group_by("status").len().iter_rows())
    figures = {
        "files_delivered": len(deliveries),
        "files_answered": sum(1 for d in deliveries if d.relative in answered),
        "receipts_by_status": statuses,
        "reflected_in_warehouse": len(latencies),
        "median_seconds_complete_to_warehouse": round(statistics.median(latencies), 1) if latencies else None,
        "worst_seconds_complete_to_warehouse": round(latencies[-1], 1) if latencies else None,
        "runs_by_status": runs,
        "runs_failed": runs.get("FAILURE", 0),
        "rows_lost": lost,
        "files_not_wholly_in_bronze": files_short,
        "held_deliveries": held.height,
        # besides the planted one, the generator's own: whole-list ledgers whose IDs a spreadsheet wrecked
        "held_files": sorted(held["file_name"]),
        "planted_delivery_status": receipts.filter(pl.col("file_name") == planted.name)["status"].to_list()
        if planted
        else None,
        "dashboard_polls": dashboard.polls,
        "dashboard_polls_unreadable": dashboard.unreadable,
        "feed_seconds": round(feed_seconds),
        "runs_active_at_stop": still_active,
        "load_average_1min": {
            "median": round(statistics.median(load), 1),
            "min": round(min(load), 1),
            "max": round(max(load), 1),
        },
        "cores": os.cpu_count(),
        "phases_median_seconds": {k: round(statistics.median(v), 1) for k, v in spent.items() if v},
        "rebuild_steps_median_seconds": {k: round(statistics.median(v), 1) for k, v in sorted(steps.items())},
        "service_exit_status": stopped,
    }
    print("\nRESULT " + json.dumps(figures, ensure_ascii=False))
    print(f"""
files delivered / answered          {figures["files_delivered"]} / {figures["files_answered"]}  {statuses}
reflected in the warehouse          {figures["reflected_in_warehouse"]} of {figures["files_delivered"]}
complete → warehouse, median/worst  {figures["median_seconds_complete_to_warehouse"]} s / {figures["worst_seconds_complete_to_warehouse"]} s
runs failed                         {figures["runs_failed"]} (all runs: {runs})
rows lost                           {lost} ({files_short} files not wholly in bronze)
deliveries held                     {held.height} (planted {planted.name if planted else "none"}: {figures["planted_delivery_status"]}; all held: {", ".join(figures["held_files"])})
dashboard tables readable           {"on every poll" if not dashboard.unreadable else "NOT on every poll"} ({dashboard.polls} polls, {dashboard.unreadable} failed)
service stopped with status         {stopped}""")
    print(
        f"load average (1 min) meanwhile      median {figures['load_average_1min']['median']}, "
        f"{figures['load_average_1min']['min']}–{figures['load_average_1min']['max']} on {os.cpu_count()} cores"
    )
    for error in dashboard.errors[:5]:
        print(f"  unreadable: {error}")
    for failure in failures:
        print(f"  failed run: {failure}")
    measured = len(next(iter(spent.values()), []))
    print(f"\nwhere the time went ({measured} deliveries traced; median, 90th percentile, seconds)")
    for name, label in PHASES.items():
        if spent[name]:
            values = sorted(spent[name])
            print(f"  {label:<72} {statistics.median(values):7.1f} {values[int(0.9 * (len(values) - 1))]:7.1f}")
    print("rebuild steps (median seconds over the rebuilds that published a traced delivery)")
    for step, values in sorted(steps.items()):
        print(f"  {step:<72} {statistics.median(values):7.1f}")


if __name__ == "__main__":
    main()
