"""Inbox sensors, one per source: a file is taken once it is complete, by the rule ``redwall
process`` follows too (:func:`redwall.ingest.inbox.is_ready`) — a ``<name>.ready`` marker beside
it, or the same size and modification time on two ticks in a row or for ``settle_seconds`` (a copy
in progress keeps growing). The cursor holds the last tick's observations, so it survives restarts.

Duplicates are the ingestion's business, not the sensor's: a re-sent file gets its own run, whose
receipt says 重复文件 and which loads nothing (the file registry is keyed by content hash).
"""

import hashlib
import json

import dagster as dg

from redwall.assets.resources import RedwallHome
from redwall.ingest.inbox import inbox_files, ready_files
from redwall.pipelines.jobs import ingest_job_name
from redwall.schemas import load_contracts

TICK_SECONDS = 10  # a delivery with its .ready marker waits this long at most to be taken
WAITING = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED]  # requested, not yet started


def inbox_sensor(source: str) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"inbox_{source}",
        job_name=ingest_job_name(source),
        minimum_interval_seconds=TICK_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"监视 inbox/{source}：文件报送完整（有 .ready 标记，或连续两次检查大小和时间不变）后启动 ingest_{source}_job。",
    )
    def _sensor(context: dg.SensorEvaluationContext, redwall: RedwallHome):
        home = redwall.home()
        previous = json.loads(context.cursor) if context.cursor else {}
        ready, seen = ready_files(inbox_files(home, source), previous)
        context.update_cursor(json.dumps(seen))
        if not ready:
            return dg.SkipReason(f"inbox/{source} 中暂无报送完整的文件")
        # One load of a source waits in the queue at most: files complete meanwhile go together in
        # the next run, not a run each (starting a run costs more than loading a few files).
        if context.instance.get_runs_count(dg.RunsFilter(job_name=ingest_job_name(source), statuses=WAITING)):
            return dg.SkipReason(f"inbox/{source} 的上一次接收仍在排队：{len(ready)} 个完整的文件将在其开始后一并接收")
        if not all(f.name_readable for f in ready):  # run config is text: such a run takes every ready file
            return dg.RunRequest(
                run_key=hashlib.sha256(json.dumps(seen).encode()).hexdigest(),
                tags={"redwall/source": source, "redwall/files": str(len(ready))},
            )
        rel = sorted(str(f.path.relative_to(home.root)) for f in ready)
        # The key changes when a file is dropped again (new mtime), so a re-sent file is answered.
        run_key = hashlib.sha256(json.dumps([[r, seen[str(home.root / r)]] for r in rel]).encode()).hexdigest()
        return dg.RunRequest(
            run_key=run_key,
            run_config={"ops": {f"ingest_{source}": {"config": {"files": rel}}}},
            tags={"redwall/source": source, "redwall/files": str(len(rel))},
        )

    return _sensor


def inbox_sensors() -> list[dg.SensorDefinition]:
    return [inbox_sensor(source) for source in load_contracts().sources]
