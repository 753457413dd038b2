"""The one entry point: every asset, job and sensor of redwall, with the resources for this
environment (and the executor for the deployment, :mod:`redwall.pipelines.executors`). Nothing else
wires definitions together."""

from __future__ import annotations

import dagster as dg

from redwall.assets.dashboard import dashboard_assets
from redwall.assets.directory import directory_assets
from redwall.assets.ingest import all_ingest_assets
from redwall.assets.marts import mart_assets
from redwall.assets.quality import quality_assets
from redwall.assets.streets import street_assets
from redwall.pipelines.automation import follow_deliveries
from redwall.pipelines.executors import executor_for_environment
from redwall.pipelines.jobs import (
    build_all,
    ingest_jobs,
    rebuild_street,
    release_delivery,
    release_layout,
    share_upward,
)
from redwall.pipelines.recovery import recover_dead_runs
from redwall.pipelines.resources import resources_for_environment
from redwall.pipelines.retries import retry_failed_runs
from redwall.pipelines.sensors import inbox_sensors

loads = ingest_jobs()
defs = dg.Definitions(
    assets=[
        *all_ingest_assets(),
        *mart_assets(),
        *quality_assets(),
        *directory_assets(),
        *dashboard_assets(),
        *street_assets(),
    ],
    jobs=[*loads, build_all, share_upward, rebuild_street, release_delivery, release_layout],
    sensors=[*inbox_sensors(), follow_deliveries, recover_dead_runs, retry_failed_runs([build_all, *loads])],
    resources=resources_for_environment(),
    executor=executor_for_environment(),
)
