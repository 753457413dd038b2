"""Runs whose process is gone: found, closed and made to let go of what they held.

A run killed outright (``kill -9``, the out-of-memory killer) never reports its end. It stays
STARTED in the instance and keeps its pool slot (``inbox_<source>``), and every later run of that
pool would wait for it for ever. Dagster's run monitoring (``run_monitoring`` in the instance's
``dagster.yaml``, see :mod:`redwall.home`) frees the slots of runs that have *ended*, but with the
default run launcher it cannot tell whether a run's process still lives. This module tells:

- every run records the process it runs in: ``redwall build`` tags its runs with
  :func:`process_tags` (pid, host, process start), and Dagster's run workers log their pid in the
  run's engine events ("Started process for run (pid: N)");
- a run of this machine that is STARTED, STARTING or CANCELING while that process is gone (or the
  pid now belongs to a process started later) is reported failed, with what was found;
- every ended run still holding pool slots has them freed.

``redwall build`` calls :func:`recover` before it starts; the ``recover_dead_runs`` sensor does
the same in the daemon. One Dagster instance (the home's ``dagster/``) belongs to one machine: a
pid is only judged on the host that recorded it.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import dagster as dg
from dagster._core.events import EngineEventData
from dagster._core.storage.dagster_run import FINISHED_STATUSES

PID_TAG = "redwall/pid"
HOST_TAG = "redwall/host"
PROCESS_START_TAG = "redwall/process_started"  # seconds since the epoch, to tell a reused pid
LIVE_STATUSES = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING]
RECOVERY_SECONDS = 60
# The engine events in which the process running a whole run logs its pid.
RUN_WORKER_MESSAGES = (
    "Started process for run",
    "Executing steps in process",
    "Executing steps using multiprocess executor: parent process",
)


def process_tags() -> dict[str, str]:
    """Tags naming this process, for a run executed in it."""
    started = _started_at(os.getpid())
    return {
        PID_TAG: str(os.getpid()),
        HOST_TAG: socket.gethostname(),
        **({PROCESS_START_TAG: f"{started:.0f}"} if started is not None else {}),
    }


def recover(instance: dg.DagsterInstance) -> list[str]:
    """Close the runs of this machine whose process is gone and free every slot an ended run still
    holds; one line per thing recovered, saying what."""
    lines = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=LIVE_STATUSES)):
        run = record.dagster_run
        gone = _gone(instance, run)
        if gone is None:
            continue
        held = _held_pools(instance, run.run_id)
        instance.report_run_failed(
            run, f"redwall: the run's process {gone} is gone (killed?); marked failed so that what it held is freed"
        )
        line = f"recovered: run {run.run_id} ({run.job_name}) — process {gone} is gone; marked failed"
        if held:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            line += f", freed pool slot(s) {', '.join(sorted(held))}"
        lines.append(line)
    if instance.event_log_storage.supports_global_concurrency_limits:
        holders = instance.event_log_storage.get_concurrency_run_ids()
        ended = (
            instance.get_run_records(dg.RunsFilter(run_ids=list(holders), statuses=FINISHED_STATUSES))
            if holders
            else []
        )
        for record in ended:
            held = _held_pools(instance, record.dagster_run.run_id)
            instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
            if held:
                lines.append(
                    f"recovered: run {record.dagster_run.run_id} ended "
                    f"({record.dagster_run.status.value}) still holding pool slot(s) "
                    f"{', '.join(sorted(held))}; freed"
                )
    return lines


def held_by_others(instance: dg.DagsterInstance, pools: list[str], run_id: str) -> dict[str, list[str]]:
    """Pool → the other runs holding a slot of it (for a run about to wait for them)."""
    if not instance.event_log_storage.supports_global_concurrency_limits:
        return {}
    known = set(instance.event_log_storage.get_concurrency_keys())
    held = {}
    for pool in pools:
        if pool in known:
            info = instance.event_log_storage.get_concurrency_info(pool)
            others = sorted({s.run_id for s in info.claimed_slots if s.run_id != run_id})
            if others and len(info.claimed_slots) >= (info.slot_count or 0):
                held[pool] = others
    return held


def _held_pools(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return set()
    return {
        pool
        for pool in storage.get_concurrency_keys()
        if any(s.run_id == run_id for s in storage.get_concurrency_info(pool).claimed_slots)
    }


def _gone(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """``"pid N"`` when the run's process is known and no longer runs, else None (alive, unknown,
    or of another host)."""
    if run.tags.get(HOST_TAG, socket.gethostname()) != socket.gethostname():
        return None
    pid: int | None
    if PID_TAG in run.tags:
        pid = int(run.tags[PID_TAG])
        since = float(run.tags[PROCESS_START_TAG]) if PROCESS_START_TAG in run.tags else None
    else:
        pid, since = _logged_pid(instance, run.run_id)
        if pid is None:
            return None
    return None if _alive(pid, since) else f"pid {pid}"


def _logged_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int | None, float | None]:
    """The newest process id a run worker logged for the run, and when (a process started after
    that is another one)."""
    for entry in reversed(instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)):
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if not entry.message.startswith(RUN_WORKER_MESSAGES) or not isinstance(data, EngineEventData):
            continue  # step processes log their pids too, and end before the run does
        if (pid := data.metadata.get("pid")) is not None:
            return int(str(pid.value)), entry.timestamp  # Dagster logs it as text
    return None, None


def _alive(pid: int, since: float | None) -> bool:
    """Whether ``pid`` is a running process that started no later than ``since`` (when known)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return True
    fields = stat.read_text().rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    started = _started_at(pid)
    return since is None or started is None or started <= since + 2


def _started_at(pid: int) -> float | None:
    """When a process started (seconds since the epoch), from /proc; None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
        )
    except (OSError, StopIteration, IndexError):
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


@dg.sensor(
    name="recover_dead_runs",
    minimum_interval_seconds=RECOVERY_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="把进程已被终止的运行标记为失败，并释放其占用的并发池名额（否则同一来源的后续运行会一直等待）。",
)
def recover_dead_runs(context: dg.SensorEvaluationContext):
    lines = recover(context.instance)
    for line in lines:
        context.log.info(line)
    return dg.SkipReason("; ".join(lines) if lines else "没有进程已终止而仍显示运行中的运行")


def wait_for_pools(instance: dg.DagsterInstance, pools: list[str], run_id: str, say) -> None:
    """Wait (sleeping, so a signal stops it) until no other live run holds one of ``pools``,
    recovering dead holders meanwhile; ``say`` is told once what is waited for."""
    told = None
    while True:
        for line in recover(instance):
            say(line)
        held = held_by_others(instance, pools, run_id)
        if not held:
            return
        if held != told:
            say("waiting: " + "; ".join(f"pool {p} held by run {', '.join(r)}" for p, r in held.items()))
            told = held
        time.sleep(2)
