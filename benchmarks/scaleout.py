"""Benchmark: the same build on one desk and spread out, in one run.

    python benchmarks/scaleout.py --scale street      # ~50k persons
    python benchmarks/scaleout.py --scale district    # ~1.1M persons (long)

One generated world is taken in and built twice, each time from a fresh copy of the generated
inboxes, both launched as an operator launches them (``redwall process``, then ``dagster job
execute … build_all`` on the real definitions):

- **desk**: the lake on local files, the instance on SQLite, every step in one process;
- **spread**: the lake on a SeaweedFS S3 server on 127.0.0.1, the instance on the local PostgreSQL,
  the rebuild's steps on two ``dagster-celery`` workers behind the local RabbitMQ.

It prints the wall time of the intake and of the rebuild for both, the ratio, and each step's time
as the instance recorded it, so where the spread-out time goes (object-store round trips, task
hand-offs) is visible. Needs PostgreSQL on 127.0.0.1:5432 and RabbitMQ on 127.0.0.1:5672.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.servers import PREPARE_INSTANCE, postgres_database, rabbitmq_broker, s3_server  # noqa: E402

BIN = Path(sys.executable).parent
KEY = "bench" * 8
STEP_TIMES = """
import json, sys, dagster as dg
with dg.DagsterInstance.get() as instance:
    run = instance.get_runs(limit=1)[0]
    print(json.dumps({s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(run.run_id)}))
"""


class Load:
    """The machine's 1-minute load average, sampled every 10 s while the benchmark runs: on a shared
    machine every figure is inflated by what else runs, so each phase says what it ran beside."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), os.getloadavg()[0]))
            self._stop.wait(10)

    def between(self, start: float, end: float) -> str:
        seen = [load for at, load in self.samples if start <= at <= end] or [os.getloadavg()[0]]
        return f"{min(seen):.1f}–{max(seen):.1f} (mean {sum(seen) / len(seen):.1f})"


LOAD = Load()
PHASES: dict[str, tuple[float, float]] = {}  # "desk intake" → (start, end), for the load during each


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] load {os.getloadavg()[0]:.1f}: {message}", flush=True)


def timed(command: list, env: dict[str, str], phase: str = "") -> float:
    progress(f"{phase or command[0]} …")
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    ended = time.perf_counter()
    PHASES[phase] = (started, ended)
    progress(f"{phase or command[0]}: {ended - started:.1f} s")
    return ended - started


def place(generated: Path, home: Path, env: dict[str, str]) -> dict[str, str]:
    """A copy of the generated home at ``home``, its instance ready (on PostgreSQL its tables made
    once, as `redwall serve` makes them, before workers and runs open it together); its environment."""
    shutil.copytree(generated, home)
    env = {**env, "REDWALL_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    subprocess.run([BIN / "python", "-c", PREPARE_INSTANCE], env=env, check=True)
    return env


def build(name: str, home: Path, env: dict[str, str]) -> dict:
    intake = timed([BIN / "redwall", "--home", str(home), "process"], env, f"{name} intake")
    rebuild = timed(
        [BIN / "dagster", "job", "execute", "-m", "redwall.pipelines.definitions", "-j", "build_all"],
        env,
        f"{name} rebuild",
    )
    steps = subprocess.run([BIN / "python", "-c", STEP_TIMES], env=env, capture_output=True, text=True, check=True)
    measured = {"intake": intake, "rebuild": rebuild, "steps": json.loads(steps.stdout.strip().splitlines()[-1])}
    progress(f"{name}: {json.dumps(measured)}")
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="street", choices=("small", "street", "district"))
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--keep", type=Path, help="work in this new folder and keep it (both homes) for a look afterwards"
    )
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REDWALL_", "DAGSTER_"))}
    base |= {"PATH": f"{BIN}{os.pathsep}{base.get('PATH', '')}", "REDWALL_PSEUDONYM_KEY": KEY}
    base["REDWALL_LIMIT_SETTLE_SECONDS"] = "0"
    if args.keep:
        args.keep.mkdir(parents=True)  # a new folder: never an earlier run's homes
    scratch_folder = (
        contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory(prefix="redwall-scaleout-")
    )
    with scratch_folder as scratch:
        scratch = Path(scratch)
        generated = scratch / "generated"
        timed(
            [BIN / "redwall", "--home", str(generated), "generate", "--scale", args.scale, "--days", str(args.days)],
            base,
            "generate",
        )
        desk = build("desk", scratch / "desk", place(generated, scratch / "desk", base))

        broker = rabbitmq_broker()
        with s3_server(scratch / "s3") as storage, postgres_database() as instance_db:
            queue = f"redwall-bench-{os.getpid()}"
            spread_env = (
                base
                | storage
                | {
                    "REDWALL_LAKE_URI": "s3://redwall/bench/lake",
                    "REDWALL_INSTANCE_DB": instance_db,
                    "REDWALL_EXECUTOR": "celery",
                    "REDWALL_CELERY_BROKER": broker,
                    "REDWALL_CELERY_QUEUE": queue,
                }
            )
            spread_env = place(generated, scratch / "spread", spread_env)
            worker_config = ROOT / "deploy" / "celery-worker.yaml"
            logs = [scratch / f"worker{n}.log" for n in range(1, args.workers + 1)]
            workers = [
                subprocess.Popen(
                    [BIN / "dagster-celery", "worker", "start", "-A", "dagster_celery.app", "-y", worker_config,
                     "-q", queue, "-n", f"{queue}-{n}@%h"],
                    env=spread_env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
                )
                for n, log in enumerate(logs, start=1)
            ]  # fmt: skip
            try:
                spread = build("spread", scratch / "spread", spread_env)
            finally:
                for worker in workers:
                    os.killpg(worker.pid, 15)
                for worker in workers:
                    worker.wait(60)
            taken = [log.read_text(encoding="utf-8", errors="replace").count(" succeeded in ") for log in logs]

    print(f"\nredwall scale-out benchmark — {args.scale} scale, {args.days} days, {os.cpu_count()} cores")
    generated_in = PHASES["generate"][1] - PHASES["generate"][0]
    print(f"generate: {generated_in:.1f} s, load {LOAD.between(*PHASES['generate'])}\n")
    print(
        f"| phase | desk (local files, SQLite, 1 process) | spread (S3, PostgreSQL, {args.workers} Celery workers) | ratio |"
        " load average (1 min) desk / spread |"
    )
    print("|---|---|---|---|---|")
    for phase in ("intake", "rebuild"):
        loads = f"{LOAD.between(*PHASES[f'desk {phase}'])} / {LOAD.between(*PHASES[f'spread {phase}'])}"
        print(
            f"| {phase} | {desk[phase]:.1f} s | {spread[phase]:.1f} s | {spread[phase] / desk[phase]:.2f} | {loads} |"
        )
    beyond = {name: m["rebuild"] - sum(m["steps"].values()) for name, m in (("desk", desk), ("spread", spread))}
    print(
        f"| rebuild beyond its steps' own time (launch, hand-offs) | {beyond['desk']:.1f} s | {beyond['spread']:.1f} s "
        f"| {beyond['spread'] / beyond['desk']:.2f} | |"
    )
    for step in sorted(desk["steps"]):
        one, two = desk["steps"][step], spread["steps"].get(step, float("nan"))
        print(f"| step {step} | {one:.1f} s | {two:.1f} s | {two / one:.2f} | |")
    print(f"\nsteps each Celery worker ran: {taken}")


if __name__ == "__main__":
    main()
