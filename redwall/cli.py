"""``redwall``: the project's command line.

    redwall generate [--scale S] [--seed N] [--days D] [--street C]  synthetic feeds into the inbox
    redwall process [--source S]                                     take in every inbox file now
    redwall build [--job J]                                          every inbox, then build_all (or one job)
    redwall demo [--scale S] [--fresh]                               generate + build, in a fresh home
    redwall ui [--port P]                                            the Dagster UI and daemon (a desk)
    redwall serve [--host H] [--port P]                              webserver + daemon (production)
    redwall held [--all]                                             deliveries held, layouts refused
    redwall release|discard RECEIPT --why TEXT [--by NAME]           decide on one of them
    redwall check|regenerate [NAME ...]                              generated files: stale? rewrite them
    redwall evaluate                                                 resolution and address figures vs the truth

Every command works on the data home ``--home`` (default ``$REDWALL_HOME``, else ``./.redwall``),
given before or after the command; ``redwall COMMAND --help`` shows its options and their defaults.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from redwall.home import Home
from redwall.report import program, redwall_command

if TYPE_CHECKING:  # imported where used: a command that runs no job never waits for Dagster to load
    import dagster as dg

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Mistake(Exception):
    """A user's mistake (an unknown name, a home that cannot be one, nothing to do): said in one
    plain line on stderr with exit status 2, never as a traceback."""


def _home(args: argparse.Namespace) -> Home:
    if args.home:
        os.environ["REDWALL_HOME"] = str(Path(args.home).resolve())
    try:
        home = Home.from_env().ensure()
    except OSError as error:
        raise Mistake(
            f"cannot use {Home.from_env().root} as a data home: {error.strerror} ({error.filename})"
        ) from None
    os.environ["REDWALL_HOME"] = str(home.root)
    os.environ["DAGSTER_HOME"] = str(home.dagster_home)
    return home


def cmd_generate(args: argparse.Namespace) -> int:
    from redwall.generator import generate

    home = _home(args)
    try:
        summary = generate(home, scale=args.scale, seed=args.seed, days=args.days, street=args.street)
    except ValueError as why:  # the generator refuses only what it was asked for: a scale, days, a street
        raise Mistake(str(why)) from None
    print(f"generated {args.scale} feeds into {home.root / 'inbox'} (ground truth in {home.truth})")
    for key, value in summary.items():
        print(f"  {key}: {value}")
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    from redwall.ingest import process_source
    from redwall.ingest.inbox import inbox_files
    from redwall.schemas import load_contracts

    home = _home(args)
    sources = [args.source] if args.source else load_contracts().sources
    if not any(inbox_files(home, source) for source in sources):
        print(
            f"nothing waiting in {home.inbox(args.source) if args.source else home.root / 'inbox'}: "
            + empty_inbox(home, args.source)
        )
        return 0
    for source in sources:
        for r in process_source(home, source):
            print(
                f"  {source:<10} {r.status:<18} read {r.rows_read:>8} accepted {r.rows_accepted:>8} "
                f"rejected {r.rows_rejected:>6}  {r.file_name}"
            )
    return 0


def empty_inbox(home: Home, source: str | None = None) -> str:
    """What to do when there is nothing to take in: where deliveries go, or how to make some."""
    from redwall.schemas import load_contracts

    if source:
        where = f"drop its deliveries into {home.inbox(source)}/"
    else:
        where = (
            f"drop deliveries into {home.root / 'inbox'}/<source>/ ({', '.join(load_contracts().sources)}; "
            "ledgers into inbox/ledgers/<department>/)"
        )
    return f"{where}, or write synthetic feeds with `{redwall_command(home, 'generate')}`"


def build(home: Home, job_name: str | None = None) -> list[dg.ExecuteInProcessResult]:
    """Take in every inbox — one ingestion run per source, as the inbox sensors start them — then
    run ``build_all``, then ``rebuild_street`` once per street (its rectification lists, its part of
    the shared warehouse and its package for the district), so every asset is built; or run
    only the job named. An ingestion run that failed (a blocking check included) keeps ``build_all``
    from running, as it keeps the automation from building past it, and a failed ``build_all`` keeps
    the packages as they were. Returns the runs made, in order (see :func:`run_job`)."""
    from redwall.package import streets
    from redwall.pipelines.jobs import ingest_job_name
    from redwall.schemas import load_contracts

    if job_name:
        return [run_job(home, job_name)]
    results = [run_job(home, ingest_job_name(source)) for source in load_contracts().sources]
    if all(r.success for r in results):
        results.append(run_job(home, "build_all"))
        if results[-1].success:
            results += [run_job(home, "rebuild_street", partition_key=street) for street in streets(home)]
    return results


def run_job(
    home: Home, job_name: str, config: dict | None = None, partition_key: str | None = None
) -> dg.ExecuteInProcessResult:
    """Run a job in this process (with ``config``, the run config of its ops; ``partition_key`` for
    a partitioned job: a street), recorded in the home's Dagster instance (so the UI shows it).

    Runs that an earlier build or run worker left behind when it was killed are closed first and
    their pool slots freed (:mod:`pipelines.recovery`), each with a line saying so; then the build
    waits, sleeping, for pools other live runs hold. The job runs in a worker thread so that
    SIGTERM and SIGINT reach this one at any time (Dagster defers them in its main-thread
    executor, and a run waiting for a pool slot would never see them): the run is then reported
    canceled, its slots are freed, and the process exits — what a kill leaves is safe to repeat."""
    import dagster as dg

    from redwall.pipelines.definitions import defs
    from redwall.pipelines.recovery import process_tags, recover, wait_for_pools

    job = defs.resolve_job_def(job_name)
    run_id = str(uuid.uuid4())
    with dg.DagsterInstance.get() as instance:
        for line in recover(instance):
            print(line, flush=True)
        pools = sorted({pool for node in job.graph.node_defs if (pool := getattr(node, "pool", None))})
        # what the worker thread ended with: the run's result, or the error to raise here
        outcome: dict[str, dg.ExecuteInProcessResult | BaseException] = {}

        def execute() -> None:
            # The run's events go to the instance (the UI shows them with every stack trace); the
            # terminal gets what stopped the run from :func:`explain_failure`, in a few lines.
            quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}} | (config or {})
            try:
                outcome["ended"] = job.execute_in_process(
                    run_config=quiet,
                    instance=instance,
                    raise_on_error=False,
                    run_id=run_id,
                    tags=process_tags(),
                    partition_key=partition_key,
                )
            except dg.DagsterInvalidConfigError as error:  # e.g. a secret its resources read is not set
                outcome["ended"] = Mistake(
                    f"{job_name} not started: " + "; ".join(e.message.strip().splitlines()[0] for e in error.errors)
                )
            except BaseException as error:  # handed to the main thread
                outcome["ended"] = error

        def stop(signum: int, _frame) -> None:
            name = signal.Signals(signum).name
            if (run := instance.get_run_by_id(run_id)) is not None and not run.is_finished:
                instance.report_run_canceled(run, f"redwall build stopped by {name}")
                instance.event_log_storage.free_concurrency_slots_for_run(run_id)
            print(
                f"{job_name} stopped by {name} (run {run_id}); its pool slots are free, "
                "and the next build takes up where it stopped",
                file=sys.stderr,
                flush=True,
            )
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
    ended = outcome["ended"]
    if isinstance(ended, BaseException):
        raise ended
    return ended


def explain_failure(result: dg.ExecuteInProcessResult, home: Home) -> str:
    """What stopped a build, for the terminal: failed checks (a blocking one keeps the shared
    warehouse as last published), failed steps with their error's first line, skipped steps."""
    lines = [f"{result.job_def.name} FAILED (run {result.run_id}); the warehouse still holds the last good publish."]
    for check in result.get_asset_check_evaluations():
        if not check.passed:
            facts = ", ".join(f"{k}={v.value}" for k, v in check.metadata.items() if k != "dagster/details")
            lines.append(
                f"  check failed: {check.asset_key.to_user_string()} {check.check_name}"
                f" [{check.severity.value}] {facts}"
            )
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None and error.cause is not None:  # Dagster's wrapping, down to what was raised
            error = error.cause
        first = next(iter((error.message if error else "").strip().splitlines()), "")
        raised, _, said = first.partition(": ")
        if error is not None and error.cls_name and raised.endswith(error.cls_name) and said:
            first = said  # the message, without the exception's module path
        lines.append(f"  step failed: {event.step_key}: {first}")
    # a step's event always names its step (step_key is None only on a run's own events)
    if skipped := [e.step_key for e in result.get_step_skipped_events() if e.step_key is not None]:
        lines.append(f"  skipped: {', '.join(skipped)}")
    lines.append(f"  details: {redwall_command(home, 'ui')}  → Runs → {result.run_id}")
    return "\n".join(lines)


def explain_build(results: list[dg.ExecuteInProcessResult], home: Home) -> str | None:
    """None when every run of :func:`build` succeeded, else what stopped it, run by run."""
    failed = [explain_failure(r, home) for r in results if not r.success]
    if failed and len(results) > 1 and "build_all" not in {r.job_def.name for r in results}:
        failed.append(
            "build_all not run: the marts, quality loop and warehouse wait until the failed "
            "load above is fixed; the warehouse still holds the last good publish."
        )
    return "\n".join(failed) or None


def cmd_build(args: argparse.Namespace) -> int:
    from redwall import lake
    from redwall.ingest.inbox import inbox_files
    from redwall.ingest.receipts import OPS, RECEIPTS
    from redwall.schemas import load_contracts

    home = _home(args)
    taken_in = lake.exists(home, OPS, RECEIPTS)
    if not taken_in and not any(inbox_files(home, source) for source in load_contracts().sources):
        raise Mistake(
            f"nothing to build: {home.root} has taken nothing in yet and its inbox is empty; {empty_inbox(home)}"
        )
    started = time.perf_counter()
    if failure := explain_build(build(home, args.job), home):
        print(failure, file=sys.stderr)
        return 1
    print(f"{args.job or 'build'} succeeded in {time.perf_counter() - started:.1f}s")
    print(held_notice(home), end="")
    return 0


def held_notice(home: Home) -> str:
    """A line for the terminal when deliveries wait for an analyst's decision, else nothing."""
    from redwall.ingest import holds

    waiting = holds.pending(home)
    if waiting.is_empty():
        return ""
    return (
        f"{waiting.height} delivery(ies) held for a decision, not applied "
        f"({', '.join(sorted(set(waiting['table'])))}): {redwall_command(home, 'held')}\n"
    )


def cmd_held(args: argparse.Namespace) -> int:
    from redwall.ingest import holds

    home = _home(args)
    listed = holds.listing(home) if args.all else holds.pending(home)
    print_broken_layouts(home, args.all)
    if listed.is_empty():
        print("no delivery is held" if not args.all else "no delivery was ever held")
        return 0
    for e in listed.iter_rows(named=True):
        where = f" in {e['scope']}" if e["scope"] else ""
        print(f"{e['receipt_id']}  {e['status']:<9} {e['table']:<24} as of {e['as_of']}  {e['file_name']}")
        print(
            f"    would close {e['records_closing']} of {e['records_current']} current records{where} "
            f"({e['closing_share']:.1%}, limit {e['closing_limit']:.0%}); "
            f"refused {e['rows_rejected']} of {e['rows_read']} rows "
            f"({e['refused_share']:.1%}, limit {e['refused_limit']:.0%})"
        )
        if e["decided_by"]:
            print(
                f"    {e['status']} by {e['decided_by']} at {e['decided_at']:%Y-%m-%d %H:%M} UTC: "
                f"{e['decision_reason']}"
            )
    if not args.all:
        print(
            f"decide: {redwall_command(home, 'release', '<receipt>', '--why', 'TEXT')}  |  "
            f"{redwall_command(home, 'discard', '<receipt>', '--why', 'TEXT')}"
        )
    return 0


def print_broken_layouts(home: Home, also_released: bool) -> None:
    """List the tables a delivery refused for its layout blocks (and with ``also_released`` the
    releases made)."""
    from redwall.ingest import layouts

    broken = layouts.broken(home)
    for e in broken.iter_rows(named=True):
        print(f"{e['receipt_id']}  refused   {e['table']:<24} {e['refusal']}  {e['file_name']}")
        print(f"    its layout changed: publishing waits until a delivery of {e['table']} loads, or it is released")
    if broken.height:
        print(f"release: {redwall_command(home, 'release', '<receipt>', '--why', 'TEXT')}")
    for e in layouts.released(home).iter_rows(named=True) if also_released else ():
        print(f"{e['receipt_id']}  released  {', '.join(e['tables']):<24} {e['refusal']}  {e['file_name']}")
        print(f"    released by {e['decided_by']} at {e['decided_at']:%Y-%m-%d %H:%M} UTC: {e['decision_reason']}")


def cmd_decide(args: argparse.Namespace) -> int:
    """Release or discard a held delivery through the ``release_delivery`` job, or release a table
    a delivery refused for its layout blocks through the ``release_layout`` job; run in this
    process and recorded in the home's Dagster instance: the UI shows who decided, the check clears."""
    from redwall.ingest import holds, layouts

    home = _home(args)
    if args.receipt in set(layouts.broken(home)["receipt_id"]):
        if args.command != "release":
            print(f"{args.receipt} was refused and applies nothing: release it to stop it blocking", file=sys.stderr)
            return 2
        release = {"receipt_id": args.receipt, "by": args.by, "reason": args.why}
        result = run_job(home, "release_layout", {"ops": {"release_broken_layout": {"config": release}}})
        if not result.success:
            print(explain_failure(result, home), file=sys.stderr)
            return 1
        (entry,) = [e for e in layouts.released(home).iter_rows(named=True) if e["receipt_id"] == args.receipt]
        print(
            f"{args.receipt}: released by {entry['decided_by']} (run {result.run_id}); "
            f"{', '.join(entry['tables'])} no longer block publishing, the file stays refused"
        )
        return 0
    try:
        holds.waiting(home, args.receipt)
    except holds.CannotDecide as why:
        print(why, file=sys.stderr)
        return 2
    decision = {"receipt_id": args.receipt, "decision": args.command, "by": args.by, "reason": args.why}
    result = run_job(home, "release_delivery", {"ops": {"decide_held_delivery": {"config": decision}}})
    if not result.success:
        print(explain_failure(result, home), file=sys.stderr)
        return 1
    (entry,) = [e for e in holds.listing(home).iter_rows(named=True) if e["receipt_id"] == args.receipt]
    print(
        f"{args.receipt}: {entry['status']} by {entry['decided_by']} (run {result.run_id}); "
        f"the receipt beside {entry['stored_as']} says so"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from redwall.generator import generate
    from redwall.privacy import mark_demo
    from redwall.report import print_summary

    home = _home(args)
    if any((home.root / d).exists() and any((home.root / d).iterdir()) for d in ("inbox", "archive", "lake")):
        if not args.fresh:
            again = redwall_command(
                home, "demo", "--fresh", *(["--scale", args.scale] if args.scale != "street" else [])
            )
            print(f"{home.root} already holds data; run `{again}` to start it again", file=sys.stderr)
            return 2
        shutil.rmtree(home.root)
        home = _home(args)
    started = time.perf_counter()
    print(f"[1/2] generating {args.scale}-scale feeds into {home.root / 'inbox'} …", flush=True)
    generate(home, scale=args.scale, seed=args.seed, days=args.days)
    mark_demo(home)  # what was generated here, and only that, may be published with the demo key
    print(f"      done in {time.perf_counter() - started:.1f}s", flush=True)
    print("[2/2] taking in every inbox, then build_all: bronze → silver → marts → warehouse …", flush=True)
    if failure := explain_build(build(home), home):
        print(failure, file=sys.stderr)
        return 1
    print_summary(home, seconds=time.perf_counter() - started)
    print(held_notice(home), end="")
    return 0


def _checkout() -> Path:
    from redwall.generated import PROJECT_ROOT

    if not (PROJECT_ROOT / "pyproject.toml").exists():
        raise Mistake(f"generated files live in a checkout of redwall; {PROJECT_ROOT} is an installed copy")
    return PROJECT_ROOT


def cmd_check(args: argparse.Namespace) -> int:
    from redwall.generated import ALL, Workshop

    root = _checkout()
    workshop = Workshop()
    try:
        problems = [line for name in args.names or ALL for line in ALL[name].problems(root, workshop)]
    finally:
        workshop.close()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"refresh them: {program('redwall')} regenerate {' '.join(args.names)}".rstrip(), file=sys.stderr)
        return 1
    print(f"fresh: {', '.join(args.names or ALL)}")
    return 0


def cmd_regenerate(args: argparse.Namespace) -> int:
    from redwall.generated import ALL, Workshop

    root = _checkout()
    workshop = Workshop()
    try:
        for name in args.names or ALL:
            generated = ALL[name]
            # named: rewritten whatever its state; else only when stale or missing (a model trains for minutes)
            if args.names or generated.problems(root, workshop):
                for path in generated.regenerate(root, workshop):
                    print(f"wrote {path.relative_to(root)}")
    except ValueError as why:  # a template changed without a version bump: the developer decides
        raise Mistake(str(why)) from None
    finally:
        workshop.close()
    return 0


TRUTH = ("persons.parquet", "records.parquet", "addresses.parquet")  # what the generator writes beside the inbox


def cmd_evaluate(args: argparse.Namespace) -> int:
    from redwall.marts.evaluate import measure_addresses
    from redwall.marts.resolution.evaluate import measure

    home = _home(args)
    if missing := [name for name in TRUTH if not (home.truth / name).exists()]:
        raise Mistake(
            f"{home.truth} has no ground truth ({', '.join(missing)} missing): evaluate a home that "
            f"{program('redwall')} generate or demo wrote, once its feeds are taken in"
        )
    print(json.dumps({"resolution": measure(home), "addresses": measure_addresses(home)}, indent=2))
    return 0


def _code_location() -> list[str]:
    # From a checkout, the workspace file; from an installed package, the module itself.
    workspace = PROJECT_ROOT / "workspace.yaml"
    return ["-w", str(workspace)] if workspace.exists() else ["-m", "redwall.pipelines.definitions"]


def cmd_ui(args: argparse.Namespace) -> int:
    from redwall.service import run_service

    home = _home(args)
    dagster = str(Path(sys.executable).parent / "dagster")
    return run_service(
        home,
        "ui",
        args.host,
        args.port,
        cwd=PROJECT_ROOT,
        children=[[dagster, "dev", *_code_location(), "-h", args.host, "-p", str(args.port)]],
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from redwall.service import run_service

    home = _home(args)
    bin_dir = Path(sys.executable).parent
    return run_service(
        home,
        "serve",
        args.host,
        args.port,
        cwd=PROJECT_ROOT,
        children=[
            [str(bin_dir / "dagster-webserver"), *_code_location(), "-h", args.host, "-p", str(args.port)],
            [str(bin_dir / "dagster-daemon"), "run", *_code_location()],
        ],
    )


class _Help(argparse.RawDescriptionHelpFormatter):
    """The docstring as written, and every option's default beside its help (unless it says its
    own, or there is none: a flag off, an option that is not given)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        said = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in said or not action.option_strings:
            return said
        return f"{said} (default: %(default)s)"


class _Names(list):
    """Choices named by the contracts or the generator, found only when asked for (a help page, a
    check of the value given): most commands never need them, and finding them costs imports."""

    def __init__(self, find) -> None:
        super().__init__()
        self._find = find

    def _found(self) -> None:
        if not self:
            self.extend(self._find())

    def __contains__(self, name: object) -> bool:
        if name == []:  # no names given: Python 3.11's argparse checks the empty list of `nargs="*"` too
            return True
        self._found()
        return super().__contains__(name)

    def __iter__(self):
        self._found()
        return super().__iter__()


def _scales() -> list[str]:
    from redwall.generator import SCALES

    return list(SCALES)


def _sources() -> list[str]:
    from redwall.schemas import load_contracts

    return load_contracts().sources


def _build_jobs() -> list[str]:
    from redwall.pipelines.jobs import ingest_job_name

    return [ingest_job_name(source) for source in _sources()] + ["build_all"]


def _generated() -> list[str]:
    from redwall.generated import ALL

    return list(ALL)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="redwall", description=__doc__, formatter_class=_Help)
    home_help = "data home (default: $REDWALL_HOME, else ./.redwall)"
    top.add_argument("--home", help=home_help)
    # ``--home`` after the subcommand too; SUPPRESS keeps a subcommand without it from erasing the one before it
    anywhere = argparse.ArgumentParser(add_help=False)
    anywhere.add_argument("--home", default=argparse.SUPPRESS, help=home_help)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, what: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=what, description=what, parents=[anywhere], formatter_class=_Help)
        p.set_defaults(func=func)
        return p

    def feeds(p: argparse.ArgumentParser) -> None:
        p.add_argument("--scale", default="street", choices=_Names(_scales), help="how many persons and streets")
        p.add_argument("--seed", type=int, default=7, help="the same seed writes the same feeds")
        p.add_argument("--days", type=int, default=14, help="days of deliveries, ending 2026-11-20 (at least 2)")

    p = command("generate", "write synthetic feeds into the inbox, and their ground truth", cmd_generate)
    feeds(p)
    p.add_argument("--street", help="a one-street world in another street than 西长安街 (a code of street.csv)")

    p = command("process", "take in every file waiting in the inbox, now", cmd_process)
    p.add_argument("--source", choices=_Names(_sources), help="one source only (default: every source)")

    p = command("build", "take in every inbox, then rebuild everything (build_all)", cmd_build)
    p.add_argument(
        "--job",
        choices=_Names(_build_jobs),
        metavar="JOB",
        help="run this job alone, one source's ingestion or build_all: %(choices)s",
    )

    p = command("demo", "generate feeds into a fresh home and build everything", cmd_demo)
    feeds(p)
    p.add_argument("--fresh", action="store_true", help="wipe the home first if it holds data")

    p = command("held", "list the deliveries held for a decision and the layouts refused that block", cmd_held)
    p.add_argument("--all", action="store_true", help="also those already released or discarded")

    for name, what in (
        ("release", "apply a held delivery as an ordinary load would have, or stop a refused layout blocking"),
        ("discard", "keep a held delivery archived and never apply it"),
    ):
        p = command(name, what, cmd_decide)
        p.add_argument("receipt", help="the receipt id `redwall held` lists")
        p.add_argument("--why", required=True, help="the reason, recorded with the decision")
        p.add_argument("--by", default=getpass.getuser(), help="who decides (default: the login name)")

    p = command("ui", "the Dagster UI and daemon on this home, for a desk (dagster dev)", cmd_ui)
    p.add_argument("--port", type=int, default=3000, help="port of the UI")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")

    p = command("serve", "the production service on this home: dagster-webserver and dagster-daemon", cmd_serve)
    p.add_argument("--port", type=int, default=3000, help="port of the webserver")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 serves the centre's network")

    command(
        "evaluate",
        "measure person resolution (pairwise precision, recall, F1) and address matching of a generated home "
        "against its ground truth, as JSON figures (no values)",
        cmd_evaluate,
    )

    for name, what, func in (
        ("check", "list the generated files of this checkout that are stale or missing (exit 1 if any)", cmd_check),
        (
            "regenerate",
            "rewrite the generated files of this checkout that are stale or missing (those named: whatever their state)",
            cmd_regenerate,
        ),
    ):
        p = sub.add_parser(name, help=what, description=f"{what}; see redwall/generated.py", formatter_class=_Help)
        p.add_argument("names", nargs="*", choices=_Names(_generated), metavar="NAME", help="only these: %(choices)s")
        p.set_defaults(func=func)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except Mistake as why:
        print(f"redwall {args.command}: {why}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
