"""The one trigger story: inbox sensors start each source's ingestion run (``pipelines.sensors``);
everything downstream — marts, quality loop, data directory, warehouse — follows by declarative
automation, evaluated by the sensor below, which is on by default. The condition each asset carries
is :func:`redwall.assets.automation.follows_deliveries`.

An asset is requested when one of its inputs took a delivery since it was last requested, and
only while no blocking check of an input has failed. On one tick the whole chain below a delivery
is requested together, in one run; a blocking check
failing inside that run stops what follows it in the run (Dagster skips those steps), and on
later ticks keeps its dependants waiting until the check passes again. Nothing else is stopped:
other sources keep loading, and their own dependants keep following them.
"""

from __future__ import annotations

import dagster as dg

AUTOMATION_SENSOR = "follow_deliveries"
TICK_SECONDS = 10  # how often the graph is evaluated (under a second of CPU); a run it starts costs far more
# A rebuild goes before the loads queued with it: it publishes what is already in, while the loads
# behind it only gather more files for their next run (the service benchmark's run queue phase).
REBUILD_TAGS = {"redwall/trigger": "delivery", "dagster/priority": "1"}


follow_deliveries = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR,
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=TICK_SECONDS,
    emit_backfills=False,
    run_tags=REBUILD_TAGS,
    description="文件报送入库后，自动重建下游：主题库、质量闭环、资源目录、共享数据仓库和驾驶舱（每次检查合并为一次运行）；"
    "上游有阻断性检查未通过时，只暂停依赖它的资产，其余照常。",
)
