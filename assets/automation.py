"""The automation condition of every asset downstream of ingestion: when a delivery makes it due.
The sensor that evaluates it is :mod:`redwall.pipelines.automation`; the trigger story is told there.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg


def _no_blocking_check_failed() -> dg.AutomationCondition:
    """None of an asset's blocking checks failed on its latest materialisation, or the asset will be
    built on this tick (its checks then run in the same run, which stops what follows a failure).

    Not Dagster's ``check_passed``: a check whose run is still queued counts as in progress there,
    and with loads queued nearly all the time the marts would never be built; a check that never
    ran (a source that has not delivered yet) does not hold anything back either."""
    failed = dg.AutomationCondition.any_checks_match(dg.AutomationCondition.check_failed(), blocking_only=True)
    return (~failed | dg.AutomationCondition.will_be_requested()).with_label("no blocking check failed")


def follows_deliveries(step_inputs: Iterable[dg.AssetKey] = ()) -> dg.AutomationCondition:
    """The condition of every asset downstream of ingestion. Unlike ``eager()`` it does not wait
    for every input to exist (a ledger type nobody has sent yet must not hold back the marts), nor
    for loads still running (some nearly always are), it does not build an asset just because it is
    missing (there is nothing to build it from before a delivery), and it is held back by a failed
    blocking check of an input (see :func:`_no_blocking_check_failed`).

    ``step_inputs``: for an asset built in one step with others (the marts), the inputs of the
    whole step. Dagster requests such a step whole when any of its assets is due, so each of its
    assets must be held back by the blocking checks of all of them, not only of its own inputs."""
    step_inputs = sorted(step_inputs, key=lambda k: k.to_user_string())
    gate: dg.AutomationCondition
    if step_inputs:
        gate = dg.AutomationCondition.asset_matches(step_inputs[0], _no_blocking_check_failed())
        for key in step_inputs[1:]:
            gate = gate & dg.AutomationCondition.asset_matches(key, _no_blocking_check_failed())
        gate = gate.with_label("no blocking check of the step's inputs failed")
    else:
        gate = dg.AutomationCondition.all_deps_match(_no_blocking_check_failed()).with_label(
            "no blocking check of an input failed"
        )
    # A delivery landing while the rebuild runs is followed by the next one: the marts read silver
    # as its last commits left it. So only a request settles a delivery, not the rebuild's end
    # (Dagster's ``since_last_handled`` also resets when the asset is materialised, and drops a
    # delivery that landed on the tick the rebuild ended, after the rebuild had read silver).
    requested = (dg.AutomationCondition.newly_requested() | dg.AutomationCondition.initial_evaluation()).with_label(
        "requested"
    )
    return (
        dg.AutomationCondition.any_deps_updated().since(requested) & ~dg.AutomationCondition.in_progress() & gate
    ).with_label("follows_deliveries")
