"""The one trigger story: inbox sensors start each source's ingestion run (``pipelines.sensors``);
everything downstream — marts, quality loop, data directory, warehouse — follows by declarative
automation, evaluated by the sensor below, which is on by default.

An asset is requested when one of its inputs took a delivery since it was last requested, and
only while no blocking check of an input has failed. On
one tick the whole chain below a delivery is requested together, in one run; a blocking check
failing inside that run stops what follows it in the run (Dagster skips those steps), and on
later ticks keeps its dependants waiting until the check passes again. Nothing else is stopped:
other sources keep loading, and their own dependants keep following them.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

AUTOMATION_SENSOR = "follow_deliveries"
TICK_SECONDS = 15  # how often the graph is evaluated; a run it starts costs far more


def _checks_clear() -> dg.AutomationCondition:
    """An asset's blocking checks passed on its latest materialisation (or will run this tick), or
    it was never materialised: a source that has not delivered yet (its checks never ran) holds
    nothing to block, and waiting for it would keep every mart unbuilt on a new home."""
    return dg.AutomationCondition.all_checks_match(
        dg.AutomationCondition.check_passed() | dg.AutomationCondition.will_be_requested(),
        blocking_only=True,
    ).with_label("all_blocking_checks_passed") | dg.AutomationCondition.missing()


def follows_deliveries(step_inputs: Iterable[dg.AssetKey] = ()) -> dg.AutomationCondition:
    """The condition of every asset downstream of ingestion. Unlike ``eager()`` it does not wait
    for every input to exist (a ledger type nobody has sent yet must not hold back the marts), it
    does not build an asset just because it is missing (there is nothing to build it from before
    a delivery), and it respects blocking checks — Dagster's ``all_deps_blocking_checks_passed``,
    but an input never delivered does not gate.

    ``step_inputs``: for an asset built in one step with others (the marts), the inputs of the
    whole step. Dagster requests such a step whole when any of its assets is due, so each of its
    assets must be held back by the blocking checks of all of them, not only of its own inputs."""
    step_inputs = sorted(step_inputs, key=lambda k: k.to_user_string())
    if step_inputs:
        gate = dg.AutomationCondition.asset_matches(step_inputs[0], _checks_clear())
        for key in step_inputs[1:]:
            gate = gate & dg.AutomationCondition.asset_matches(key, _checks_clear())
        gate = gate.with_label("blocking checks of the step's inputs passed (an input never delivered does not gate)")
    else:
        gate = dg.AutomationCondition.all_deps_match(_checks_clear()).with_label(
            "all_deps_blocking_checks_passed (a dependency never delivered does not gate)")
    # Not waiting for inputs still loading (as eager() does): six sources deliver at all hours,
    # and some load is nearly always running, so the marts would wait for ever. They read silver
    # as its last commits left it; a delivery landing meanwhile is followed by the next rebuild.
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.in_progress()
        & gate
    ).with_label("follows_deliveries")


follow_deliveries = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR, target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=TICK_SECONDS, emit_backfills=False,
    run_tags={"redwall/trigger": "delivery"},
    description="文件报送入库后，自动重建下游：主题库、质量闭环、资源目录、共享数据仓库和驾驶舱（每次检查合并为一次运行）；"
                "上游有阻断性检查未通过时，只暂停依赖它的资产，其余照常。",
)
