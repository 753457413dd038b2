"""``redwall``: the project's command line.

    redwall generate --scale street|district [--seed N] [--days D]   synthetic feeds into the inbox
    redwall process [--source S]                                     take in every inbox file now
    redwall build [--job J]                                          run the main job (build_all)
    redwall demo [--scale S] [--fresh]                               generate + build, in a fresh home
    redwall ui                                                       the Dagster UI on this home

Every command works on the data home ``--home`` (default ``$REDWALL_HOME``, else ``./.redwall``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from redwall.home import Home
from redwall.report import redwall_command

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _home(args: argparse.Namespace) -> Home:
    if args.home:
        os.environ["REDWALL_HOME"] = str(Path(args.home).resolve())
    home = Home.from_env().ensure()
    os.environ["REDWALL_HOME"] = str(home.root)
    os.environ["DAGSTER_HOME"] = str(home.dagster_home)
    return home


def cmd_generate(args: argparse.Namespace) -> int:
    from redwall.generator import generate

    home = _home(args)
    summary = generate(home, scale=args.scale, seed=args.seed, days=args.days)
    print(f"generated {args.scale} feeds into {home.root / 'inbox'} (ground truth in {home.truth})")
    for key, value in summary.items():
        print(f"  {key}: {value}")
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    from redwall.ingest import process_source
    from schemas import load_contracts

    home = _home(args)
    sources = [args.source] if args.source else load_contracts().sources
    for source in sources:
        for r in process_source(home, source):
            print(f"  {source:<10} {r.status:<18} read {r.rows_read:>8} accepted {r.rows_accepted:>8} "
                  f"rejected {r.rows_rejected:>6}  {r.file_name}")
    return 0


def build(home: Home, job_name: str = "build_all") -> "dg.ExecuteInProcessResult":  # noqa: F821
    """Run a job (the main one, ``build_all``, unless named) in this process, recorded in the home's Dagster instance (so the UI shows it).

    Runs that an earlier build or run worker left behind when it was killed are closed first and
    their pool slots freed (:mod:`pipelines.recovery`), each with a line saying so; then the build
    waits, sleeping, for pools other live runs hold. The job runs in a worker thread so that
    SIGTERM and SIGINT reach this one at any time (Dagster defers them in its main-thread
    executor, and a run waiting for a pool slot would never see them): the run is then reported
    canceled, its slots are freed, and the process exits — what a kill leaves is safe to repeat."""
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.recovery import process_tags, recover, wait_for_pools

    job = defs.resolve_job_def(job_name)
    run_id = str(uuid.uuid4())
    with dg.DagsterInstance.get() as instance:
        for line in recover(instance):
            print(line, flush=True)
        pools = sorted({pool for node in job.graph.node_defs if (pool := getattr(node, "pool", None))})
        outcome: dict[str, object] = {}

        def execute() -> None:
            # The run's events go to the instance (the UI shows them); the terminal gets warnings only.
            quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
            try:
                outcome["result"] = job.execute_in_process(
                    run_config=quiet, instance=instance, raise_on_error=False, run_id=run_id, tags=process_tags())
            except BaseException as error:  # handed to the main thread
                outcome["error"] = error

        def stop(signum: int, _frame) -> None:
            name = signal.Signals(signum).name
            if (run := instance.get_run_by_id(run_id)) is not None and not run.is_finished:
                instance.report_run_canceled(run, f"redwall build stopped by {name}")
                instance.event_log_storage.free_concurrency_slots_for_run(run_id)
            print(f"{job_name} stopped by {name} (run {run_id}); its pool slots are free, "
                  "and the next build takes up where it stopped", file=sys.stderr, flush=True)
            os._exit(128 + signum)

        handlers = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            wait_for_pools(instance, pools, run_id, say=lambda line: print(line, flush=True))
            worker = threading.Thread(target=execute, name=job_name, daemon=True)
            worker.start()
            while worker.is_alive():
                worker.join(0.5)
        finally:
            for s, handler in handlers.items():
                signal.signal(s, handler)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def explain_failure(result: "dg.ExecuteInProcessResult", home: Home) -> str:  # noqa: F821
    """What stopped a build, for the terminal: failed checks (a blocking one keeps the shared
    warehouse as last published), failed steps with their error's first line, skipped steps."""
    lines = [f"{result.job_def.name} FAILED (run {result.run_id}); the warehouse still holds the last good publish."]
    for check in result.get_asset_check_evaluations():
        if not check.passed:
            facts = ", ".join(f"{k}={v.value}" for k, v in check.metadata.items() if k != "dagster/details")
            lines.append(f"  check failed: {check.asset_key.to_user_string()} {check.check_name}"
                         f" [{check.severity.value}] {facts}")
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        first = (error.message if error else "").strip().splitlines()[:1]
        lines.append(f"  step failed: {event.step_key}: {first[0] if first else ''}")
    if skipped := [e.step_key for e in result.get_step_skipped_events()]:
        lines.append(f"  skipped: {', '.join(skipped)}")
    lines.append(f"  details: {redwall_command(home, 'ui')}  → Runs → {result.run_id}")
    return "\n".join(lines)


def cmd_build(args: argparse.Namespace) -> int:
    home = _home(args)
    started = time.perf_counter()
    result = build(home, args.job)
    if not result.success:
        print(explain_failure(result, home), file=sys.stderr)
        return 1
    print(f"{args.job} succeeded in {time.perf_counter() - started:.1f}s")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from redwall.generator import generate
    from redwall.privacy import mark_demo
    from redwall.report import print_summary

    home = _home(args)
    if any((home.root / d).exists() and any((home.root / d).iterdir()) for d in ("inbox", "archive", "lake")):
        if not args.fresh:
            again = redwall_command(home, "demo", "--fresh", *(["--scale", args.scale] if args.scale != "street" else []))
            print(f"{home.root} already holds data; run `{again}` to start it again", file=sys.stderr)
            return 2
        shutil.rmtree(home.root)
        home = _home(args)
    started = time.perf_counter()
    print(f"[1/2] generating {args.scale}-scale feeds into {home.root / 'inbox'} …", flush=True)
    generate(home, scale=args.scale, seed=args.seed, days=args.days)
    mark_demo(home)  # what was generated here, and only that, may be published with the demo key
    print(f"      done in {time.perf_counter() - started:.1f}s", flush=True)
    print("[2/2] running build_all: inbox → bronze → silver → marts → warehouse …", flush=True)
    result = build(home)
    if not result.success:
        print(explain_failure(result, home), file=sys.stderr)
        return 1
    print_summary(home, seconds=time.perf_counter() - started)
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    home = _home(args)
    env = {**os.environ, "DAGSTER_HOME": str(home.dagster_home), "REDWALL_HOME": str(home.root)}
    workspace = PROJECT_ROOT / "workspace.yaml"
    # From a checkout, the workspace file; from an installed package, the module itself.
    where = ["-w", str(workspace)] if workspace.exists() else ["-m", "pipelines.definitions"]
    cmd = [str(Path(sys.executable).parent / "dagster"), "dev", *where, "-p", str(args.port)]
    # dagster dev started from a script ignores SIGINT/SIGTERM unless the defaults are restored.
    proc = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT,
                            preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL),
                                                signal.signal(signal.SIGTERM, signal.SIG_DFL)))
    return proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="redwall", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", help="data home (default $REDWALL_HOME, else ./.redwall)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="write synthetic feeds and their ground truth")
    p.add_argument("--scale", default="street")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--days", type=int, default=14)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("process", help="take in every file waiting in the inbox, now")
    p.add_argument("--source", help="one source only")
    p.set_defaults(func=cmd_process)

    p = sub.add_parser("build", help="run the main job build_all (or another job of the definitions)")
    p.add_argument("--job", default="build_all", help="e.g. ingest_police_job: one source's ingestion")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("demo", help="generate street-scale feeds into a fresh home and build everything")
    p.add_argument("--scale", default="street")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--fresh", action="store_true", help="wipe the home first if it holds data")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("ui", help="serve the Dagster UI for this home")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_ui)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
