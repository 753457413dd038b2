"""Kill a load at random moments and check that the next one repairs everything.

    python benchmarks/kill_at_random.py [--kills 8] [--seed 1] [--dagster 2]

Generates a small street once, takes it in uninterrupted (the reference), then for each kill: a
fresh home with the same inbox, ``redwall process`` (or, for the last ``--dagster`` kills,
``redwall build --job ingest_<source>_job``) killed with SIGKILL at a random moment of its run,
then ``redwall process`` again to the end. Each attack holds when the receipts (what each says),
silver (every row, less when it was loaded) and the inbox (empty) equal the reference's, and
nothing is stuck (a Dagster run left STARTED holding a slot is recovered by the next build).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redwall import lake  # noqa: E402
from redwall.generator import generate  # noqa: E402
from redwall.home import Home  # noqa: E402
from redwall.ingest import receipts  # noqa: E402
from redwall.schemas import load_contracts  # noqa: E402

REDWALL = str(Path(sys.executable).parent / "redwall")
STABLE = [
    "source",
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


def state(home: Home) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    answered = (
        lake.read(home, receipts.OPS, receipts.RECEIPTS)
        .select(STABLE)
        .with_columns(pl.col("reasons_zh").str.replace_all(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "<time>"))
        .sort(STABLE)
    )
    silver = {}
    contracts = load_contracts()
    for table in contracts.feeds + contracts.ledgers:
        if lake.exists(home, "silver", table.bronze_name):
            frame = lake.read(home, "silver", table.bronze_name).drop("_load_id", "_loaded_at")
            silver[table.key] = frame.select(sorted(frame.columns)).sort(pl.all())
    return answered, silver


def run(home: Home, *args: str, kill_after: float | None = None) -> tuple[int, str]:
    env = {
        **os.environ,
        "REDWALL_HOME": str(home.root),
        "DAGSTER_HOME": str(home.dagster_home),
        "REDWALL_LIMIT_SETTLE_SECONDS": "0",
    }
    proc = subprocess.Popen(
        [REDWALL, "--home", str(home.root), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    return proc.returncode, out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--dagster", type=int, default=2, help="how many of the kills hit a Dagster build")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="redwall-kills-"))
    feeds = Home.at(work / "feeds").ensure()
    generate(feeds, scale="small", seed=11, days=3)
    sources = load_contracts().sources

    def fresh(name: str) -> Home:
        home = Home.at(work / name).ensure()
        shutil.copytree(feeds.root / "inbox", home.root / "inbox", dirs_exist_ok=True)
        return home

    reference = fresh("reference")
    started = time.perf_counter()
    assert run(reference, "process")[0] == 0
    duration = time.perf_counter() - started
    expected = state(reference)
    rows = sum(f.height for f in expected[1].values())
    print(f"reference: {expected[0].height} receipts, {rows} silver rows, process took {duration:.1f}s")

    held = broke = 0
    for n in range(args.kills):
        home = fresh(f"attack{n}")
        dagster = n >= args.kills - args.dagster
        at = rng.uniform(0.5, duration)
        if dagster:
            source = rng.choice(sources)
            code, _ = run(home, "build", "--job", f"ingest_{source}_job", kill_after=at + 8)  # + Dagster's start
        else:
            code, _ = run(home, "process", kill_after=at)
        recovered = ""
        if dagster:
            code2, out = run(home, "build", "--job", f"ingest_{source}_job")
            recovered = "; ".join(re.findall(r"recovered: .*", out))
            assert code2 == 0, out
        assert run(home, "process")[0] == 0
        got = state(home)
        lost = sum(max(expected[1][k].height - got[1].get(k, pl.DataFrame()).height, 0) for k in expected[1])
        same = (
            got[0].equals(expected[0])
            and got[1].keys() == expected[1].keys()
            and all(got[1][k].equals(expected[1][k]) for k in expected[1])
        )
        left = [p for p in (home.root / "inbox").rglob("*") if p.is_file()]
        ok = same and not left
        held += ok
        broke += not ok
        what = f"build ingest_{source}_job" if dagster else "process"
        print(
            f"kill {n + 1}: {what} killed at {at:.1f}s (exit {code}) → {'held' if ok else 'BROKE'}"
            f"{'' if same else ' (state differs)'}{f', {len(left)} files left' if left else ''}, rows lost {lost}"
            f"{f' [{recovered}]' if recovered else ''}"
        )
    print(f"attacks {args.kills}: held {held}, broke {broke}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if not broke else 1


if __name__ == "__main__":
    sys.exit(main())
