"""What a failed run left undone is run again, a few times, and then left with its reason.

A run that fails leaves its assets stale: a rebuild that hit a transient error (a file lock, a
full disk, a killed process) would otherwise wait for the next delivery, which may be days away,
and a load's files would stay in the inbox (the inbox sensor asks once per set of files). So the
``retry_failed_runs`` sensor looks at every asset whose latest planned materialization was in a
run that failed, and requests that run's work again — the same load's files still in the inbox, or
the stale part of the rebuild — after :data:`BACKOFF_SECONDS`, doubled on each attempt, up to
:data:`ATTEMPTS` runs in all. Then it stops and says so on its tick, with the error: a permanent
failure (a missing pseudonym key, a bug) loops no further, and the asset's page shows the failed
run. The next delivery starts afresh; so does ``build_all`` by hand once the cause is fixed.

Not run again: a run stopped by a failing blocking check (that is the data's answer, not an
accident: the check keeps its dependants waiting until a later delivery passes it), and a run
Dagster's own run retries will run again (its process died before a step failed, see
``run_retries`` in :mod:`redwall.home`).
"""

from __future__ import annotations

import time
from typing import Any

import dagster as dg
from dagster._utils.error import SerializableErrorInfo

from redwall.assets.resources import RedwallHome
from redwall.home import Home
from redwall.pipelines.automation import REBUILD_TAGS
from redwall.pipelines.jobs import DOWNSTREAM_GROUPS, build_all

SENSOR = "retry_failed_runs"
TICK_SECONDS = 30
ATTEMPTS = 3  # runs in all, the failed one included
BACKOFF_SECONDS = 60  # before the first retry; doubled for the next
ATTEMPT_TAG = "redwall/attempt"
RETRY_OF_TAG = "redwall/retry_of"
WILL_RETRY_TAG = "dagster/will_retry"  # set by Dagster on a run its run-retry daemon will run again
CHECK_FAILED = "DagsterAssetCheckFailedError"
ACTIVE = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def failed_runs(instance: dg.DagsterInstance, asset_keys) -> dict[str, list[dg.AssetKey]]:
    """Failed run id → the assets it was to materialise and did not: an asset counts only while
    that run is still its latest plan (a later run of it supersedes the failure)."""
    out: dict[str, list[dg.AssetKey]] = {}
    done = {
        r.asset_entry.asset_key: r.asset_entry.last_materialization_storage_id or 0
        for r in instance.get_asset_records(list(asset_keys))
    }
    planned = {}  # asset → its latest plan, when no materialization came after it
    for key in asset_keys:
        plan = instance.get_latest_planned_materialization_info(key)
        if plan is not None and plan.storage_id > done.get(key, 0):
            planned[key] = plan
    run_ids = {plan.run_id for plan in planned.values()}
    runs = {
        r.dagster_run.run_id: r.dagster_run
        for r in (instance.get_run_records(dg.RunsFilter(run_ids=list(run_ids))) if run_ids else [])
    }
    for key, plan in planned.items():
        run = runs.get(plan.run_id)
        if run is not None and run.status == dg.DagsterRunStatus.FAILURE:
            out.setdefault(run.run_id, []).append(key)
    return out


def why_failed(instance: dg.DagsterInstance, run_id: str) -> tuple[bool, str]:
    """Whether the run failed on a blocking check alone (the data's answer), and what failed: the
    innermost error of its first failed step (or of the run), its class and first line."""
    failures = instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE})
    errors = [error for entry in failures if (error := _error(entry))]
    steps = [
        error
        for entry in failures
        if entry.dagster_event
        and entry.dagster_event.event_type == dg.DagsterEventType.STEP_FAILURE
        and (error := _error(entry))
    ]
    if not errors:  # a run that never got to a step (its launch failed): what the run's end says
        said = next((e.message.strip().splitlines()[0] for e in failures if e.message.strip()), "未记录错误")
        return False, said[:200]
    error = (steps or errors)[0]
    while error.cause is not None:
        error = error.cause
    message = (error.message.strip().splitlines() or [""])[0].removeprefix(f"{error.cls_name}: ")
    return bool(steps) and all(s.cls_name == CHECK_FAILED for s in steps), f"{error.cls_name}: {message[:200]}"


def _error(entry: dg.EventLogEntry) -> SerializableErrorInfo | None:
    data: Any = entry.dagster_event.event_specific_data if entry.dagster_event else None
    return getattr(data, "error", None)


def retry_request(
    instance: dg.DagsterInstance, run: dg.DagsterRun, stale: list[dg.AssetKey], downstream: set[dg.AssetKey], now: float
) -> dg.RunRequest | str | None:
    """The request running a failed run's work again, or why not now (a reason), or None when it
    is nobody's to retry (a blocking check's answer, Dagster's own retry). A load is run again as
    itself (its files, its source's queue); a rebuild as the part of it still stale, a run of
    ``build_all`` queued like every rebuild."""
    if run.tags.get(WILL_RETRY_TAG) == "true":
        return None
    by_check, error = why_failed(instance, run.run_id)
    if by_check:
        return None
    attempt = int(run.tags.get(ATTEMPT_TAG, "1"))
    names = "、".join(sorted(k.to_user_string() for k in stale)[:5]) + ("等" if len(stale) > 5 else "")
    if attempt >= ATTEMPTS:
        return (
            f"{names}：运行 {run.run_id[:8]} 失败（{error}），已自动运行 {attempt} 次，不再重试；"
            "排除原因后手动运行 build_all（或对应来源的接收作业），或等待下一次报送"
        )
    # A run queued or running meanwhile may do the work, or fail too: judge again once it ended.
    is_load = run.job_name != build_all.name and "redwall/source" in run.tags
    line = (
        dg.RunsFilter(job_name=run.job_name, statuses=ACTIVE)
        if is_load
        else dg.RunsFilter(statuses=ACTIVE, tags={"redwall/trigger": "delivery"})
    )
    if instance.get_runs_count(line):
        return f"{names}：运行 {run.run_id[:8]} 失败（{error}），待排队和进行中的运行结束后再重试"
    record = instance.get_run_record_by_id(run.run_id)
    ended = record.end_time if record and record.end_time else now
    due = ended + BACKOFF_SECONDS * 2 ** (attempt - 1)
    if now < due:
        return f"{names}：运行 {run.run_id[:8]} 失败（{error}），将于 {due - now:.0f} 秒后第 {attempt} 次重试"
    tags = {
        **{k: v for k, v in run.tags.items() if k.startswith("redwall/") and k not in (ATTEMPT_TAG, RETRY_OF_TAG)},
        ATTEMPT_TAG: str(attempt + 1),
        RETRY_OF_TAG: run.run_id,
    }
    if is_load:
        return dg.RunRequest(run_key=f"retry:{run.run_id}", job_name=run.job_name, run_config=run.run_config, tags=tags)
    selection = sorted(set(stale) & downstream, key=lambda k: k.to_user_string())
    if not selection:
        return None  # not a rebuild (an analyst's decision, say): nothing of it is the automation's
    return dg.RunRequest(
        run_key=f"retry:{run.run_id}",
        job_name=build_all.name,
        asset_selection=selection,
        tags={**tags, **REBUILD_TAGS},
    )


def retry_failed_runs(jobs) -> dg.SensorDefinition:
    """The sensor, able to start ``jobs`` (``build_all`` and every source's load)."""

    @dg.sensor(
        name=SENSOR,
        jobs=jobs,
        minimum_interval_seconds=TICK_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"运行失败（阻断性检查未通过的除外）后，未完成的资产自动重试：间隔 {BACKOFF_SECONDS} 秒起、"
        f"每次加倍，连同首次最多运行 {ATTEMPTS} 次；仍失败则停止重试，并在本传感器的记录中写明原因。",
    )
    def _sensor(context: dg.SensorEvaluationContext, redwall: RedwallHome):
        assert context.repository_def is not None  # a sensor is always evaluated in its repository
        graph = context.repository_def.asset_graph
        downstream = set(dg.AssetSelection.groups(*DOWNSTREAM_GROUPS).resolve(graph))
        materialisable = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
        instance, now, home = context.instance, time.time(), redwall.home()
        requests, reasons = [], []
        for run_id, stale in failed_runs(instance, materialisable).items():
            run = instance.get_run_by_id(run_id)
            if run is None or _files_left(home, run) == []:
                continue  # gone, or a load whose every file has been taken since
            answer = retry_request(instance, run, stale, downstream, now)
            if isinstance(answer, dg.RunRequest):
                requests.append(answer)
            elif answer:
                reasons.append(answer)
        if requests:
            return dg.SensorResult(run_requests=requests)
        return dg.SkipReason("；".join(reasons) if reasons else "没有需要重试的失败运行")

    return _sensor


def _files_left(home: Home, run: dg.DagsterRun) -> list[str] | None:
    """The inbox files a load was handed that are still in the inbox (None: it was handed none,
    and takes whatever is waiting)."""
    ops: Any = (run.run_config or {}).get("ops") or {}
    for op in ops.values():
        files = (op.get("config") or {}).get("files") if isinstance(op, dict) else None
        if files:
            return [f for f in files if (home.root / f).exists()]
    return None
