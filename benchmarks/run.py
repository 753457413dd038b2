"""Benchmark: generate a scale, run every stage of the build, print wall time and peak memory.

    python benchmarks/run.py --scale street            # ~50k persons
    python benchmarks/run.py --scale district          # ~1.1M persons (several minutes)
    python benchmarks/run.py --scale street --dagster  # also time `redwall build` through Dagster

Each stage runs in its own process, so its peak RSS is its own. Targets (DEVELOPERS' brief, issue 2):
street end to end < 60 s; district < 10 min within 8 GB on 2 cores.

A day's increment: the files dated on the last generated day are held back from the first build,
then taken in and the marts, quality loop and warehouse rebuilt, so the increment's cost can be set
against the full build's (it should follow the increment, not the size of the lake).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGE = r"""
import json, resource, sys, time
from redwall.home import Home
home = Home.at(sys.argv[1]).ensure()
stage, arg = sys.argv[2], sys.argv[3]
started = time.perf_counter()
facts = {}
if stage == "generate":
    from redwall.generator import generate
    scale, seed, days = arg.split(":")
    generate(home, scale=scale, seed=int(seed), days=int(days))
    from redwall.privacy import mark_demo
    mark_demo(home)  # generated data: the demo pseudonym key may publish it
elif stage == "ingest":
    from redwall.ingest import process_source
    receipts = process_source(home, arg)
    facts = {"files": len(receipts), "rows": sum(r.rows_read for r in receipts)}
elif stage == "marts":
    import polars as pl
    from redwall import lake
    from redwall.marts import STATE, build_marts
    from redwall.marts.resolution.linkage import EXACT_ID
    cost = {}
    facts = {"rows": sum(build_marts(home, cost=cost).values()),
             "processed": sum(d for d, _ in cost.values()), "held": sum(r for _, r in cost.values()),
             "marts": sum(1 for d, _ in cost.values() if d),
             "scored": int(lake.read(home, *STATE)["scored"].sum()),
             "without_id": lake.read(home, "mart", "person_link").filter(pl.col("match_rule") != EXACT_ID).height}
elif stage == "resolution":
    from redwall.marts.resolution.evaluate import measure
    facts = {"resolution": measure(home)}
elif stage == "quality":
    from redwall.quality.loop import run_loop
    from redwall.quality.outbox import write_outbox
    cost = {}
    issues = run_loop(home, cost=cost)
    write_outbox(home, issues)
    facts = {"rows": issues.height, "processed": sum(d for d, _ in cost.values()), "held": sum(r for _, r in cost.values())}
elif stage == "directory":
    from redwall.catalog import publish_catalog
    from redwall.templates import publish_templates
    facts = {"rows": publish_catalog(home)["resources"] + len(publish_templates(home))}
elif stage == "publish":
    from redwall.warehouse import publish
    cost = {}
    facts = {"tables": len(publish(home, cost=cost)), "processed": sum(d for d, _ in cost.values()), "held": len(cost)}
elif stage == "dagster":
    import os
    os.environ["REDWALL_HOME"] = sys.argv[1]
    os.environ["DAGSTER_HOME"] = str(home.dagster_home)
    from redwall.cli import build, explain_build
    if failure := explain_build(build(home), home):
        raise SystemExit(failure)
facts["seconds"] = time.perf_counter() - started
facts["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(facts))
"""


def run_stage(home: Path, stage: str, arg: str) -> dict:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", STAGE, str(home), stage, arg], capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"stage {stage} {arg} failed")
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    facts = json.loads(line[len("RESULT ") :])
    facts["wall"] = time.perf_counter() - started  # includes interpreter start and imports
    return facts


DATED = r"_(\d{8})(?:\d{2})?\."


def hold_back_last_day(home: Path) -> tuple[str, list[tuple[Path, Path]], tuple[Path, Path]]:
    """Move every inbox file named with the last date any file carries aside; returns that date,
    (held, original) path pairs, and the pair of the day's last hourly grid-app file (held apart:
    it is delivered alone after the day)."""
    inbox = home / "inbox"
    dated = [(m.group(1), p) for p in inbox.rglob("*") if p.is_file() and (m := re.search(DATED, p.name))]
    last = max(day for day, _ in dated)
    for day, path in dated:
        if day == last:
            held = home / "held" / path.relative_to(inbox)
            held.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, held)
    return held_back(home)


def held_back(home: Path) -> tuple[str, list[tuple[Path, Path]], tuple[Path, Path]]:
    """The files :func:`hold_back_last_day` moved aside and not yet delivered: their date, the
    (held, original) pairs of the day, and the pair of the day's last hourly grid-app file."""
    moved = [(p, home / "inbox" / p.relative_to(home / "held")) for p in (home / "held").rglob("*") if p.is_file()]
    last = max(m.group(1) for p, _ in moved if (m := re.search(DATED, p.name)))
    hour = max((pair for pair in moved if pair[1].parent.name == "grid_app"), key=lambda pair: pair[1].name)
    moved.remove(hour)
    return last, moved, hour


def print_stages(rows: list[tuple[str, dict]]) -> None:
    """One line per stage; ``done`` is what the stage processed of what the lake holds: mart rows
    computed of mart rows held, silver rows and rejections judged by the quality loop of those held, tables
    made by the publish of tables published."""
    print(f"\n{'stage':<20}{'wall s':>9}{'work s':>9}{'peak MB':>9}{'rows':>11}{'rows/s':>11}{'done':>20}")
    for name, f in rows:
        rate = f"{f['rows'] / f['seconds']:,.0f}" if f.get("rows") else ""
        done = f"{f['processed']:,} of {f['held']:,}" if "processed" in f else ""
        print(
            f"{name:<20}{f['wall']:>9.1f}{f['seconds']:>9.1f}{f['peak_rss_mb']:>9.0f}{f.get('rows', ''):>11}"
            f"{rate:>11}{done:>20}"
        )


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="street")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--home", help="data home to use (default: a new temporary folder)")
    parser.add_argument(
        "--dagster", action="store_true", help="also time redwall build through Dagster on a second copy"
    )
    parser.add_argument(
        "--from",
        dest="start",
        choices=("generate", "marts", "increment"),
        default="generate",
        help="marts: rerun from the marts on an already loaded --home; increment: take in only the "
        "day's increment and the hourly file still held back in a --home built by an earlier run "
        "(a copy of it made after its full build)",
    )
    parser.add_argument(
        "--generated",
        help="a folder holding a generated home: copied (or, if absent, generated and then kept there) "
        "so a second run measures the same feeds without generating them again",
    )
    parser.add_argument(
        "--keep-built",
        help="a folder to copy the home to once its full build is done, for later runs "
        "--from increment on copies of it (profiling the increment without building again)",
    )
    args = parser.parse_args()

    from redwall.schemas import load_contracts

    home = Path(args.home or tempfile.mkdtemp(prefix=f"redwall-bench-{args.scale}-"))
    print(f"benchmark {args.scale} (seed {args.seed}, {args.days} days) in {home}; load average {load_average()}")
    rows, pipeline, increment = [], [], []
    held: list[tuple[Path, Path]] = []
    sources = load_contracts().sources
    hourly = []
    if args.start == "generate":
        kept = Path(args.generated) if args.generated else None
        if kept and kept.exists():
            shutil.rmtree(home, ignore_errors=True)
            shutil.copytree(kept, home, symlinks=True)
        else:
            rows.append(("generate", run_stage(home, "generate", f"{args.scale}:{args.seed}:{args.days}")))
            if kept:
                shutil.copytree(home, kept, symlinks=True)
        last_day, held, hour = hold_back_last_day(home)
        for source in sources:
            pipeline.append((f"ingest {source}", run_stage(home, "ingest", source)))
    if args.start == "increment":
        last_day, held, hour = held_back(home)
        resolution = {}
    else:
        for stage in ("marts", "quality", "directory", "publish"):
            pipeline.append((stage, run_stage(home, stage, "-")))
        rows += pipeline
        resolution = run_stage(home, "resolution", "-")["resolution"]
        if args.keep_built:
            shutil.copytree(home, args.keep_built, symlinks=True)
    if held:
        for held_path, original in held:
            shutil.move(held_path, original)
        for source in sorted({original.relative_to(home / "inbox").parts[0] for _, original in held}):
            increment.append((f"ingest {source}", run_stage(home, "ingest", source)))
        for stage in ("marts", "quality", "publish"):
            increment.append((stage, run_stage(home, stage, "-")))
        # then the day's last hourly grid-app file, alone: what one file costs to reach the warehouse
        shutil.move(*hour)
        hourly.append(("ingest grid_app", run_stage(home, "ingest", "grid_app")))
        for stage in ("marts", "quality", "publish"):
            hourly.append((stage, run_stage(home, stage, "-")))

    total = float("nan")
    if pipeline:
        print_stages(rows)
        total = sum(f["wall"] for _, f in pipeline)
        peak = max(f["peak_rss_mb"] for _, f in pipeline)
        print(f"\nend to end ({pipeline[0][0]} → publish): {total:.1f} s wall, peak {peak:.0f} MB in one stage")
        print(
            "person resolution on ground truth (pairwise; model = pairs with a record without an ID): "
            + ", ".join(f"{k} {v}" for k, v in resolution.items())
        )
    if increment:
        print(f"\na day's increment: the {len(held)} files dated {last_day}, taken in after the build above")
        print_stages(increment)
        marts = dict(increment)["marts"]
        day = sum(f["wall"] for _, f in increment)
        first = dict(pipeline)["marts"]["wall"] if pipeline else float("nan")
        print(
            f"increment end to end: {day:.1f} s wall, {day / total:.1%} of the full build above; marts "
            f"{marts['wall']:.1f} s against {first:.1f} s for the first build ({marts['marts']} of "
            f"{len(load_contracts().marts)} marts computed), "
            f"{marts['scored']:,} of {marts['without_id']:,} records without an ID scored again"
        )
        print(f"\none hourly grid-app file ({hour[1].name}) after the day, to the warehouse")
        print_stages(hourly)
        one = sum(f["seconds"] for _, f in hourly)
        print(
            f"hourly file: {sum(f['wall'] for _, f in hourly):.1f} s wall, {one:.1f} s of pipeline time "
            f"(work, without interpreter starts), {one / total:.1%} of the full build"
        )
    print(f"load average at the end (1, 5, 15 min): {load_average()}")

    if args.dagster:
        copy = Path(tempfile.mkdtemp(prefix="redwall-bench-dagster-"))
        run_stage(copy, "generate", f"{args.scale}:{args.seed}:{args.days}")
        f = run_stage(copy, "dagster", "-")
        print(
            f"redwall build through Dagster (in-process executor): {f['wall']:.1f} s wall, peak {f['peak_rss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
