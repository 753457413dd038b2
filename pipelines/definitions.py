"""The one entry point: every asset, job and sensor of redwall, with the resources for this
environment. Nothing else wires definitions together.

Runs execute in one process: on a street centre's machine a run is a handful of steps that each
use every core they get, and a process per step costs seconds of imports for nothing."""

from __future__ import annotations

import dagster as dg

from assets.dashboard import dashboard_assets
from assets.directory import directory_assets
from assets.ingest import all_ingest_assets
from assets.marts import mart_assets
from assets.quality import quality_assets
from pipelines.automation import follow_deliveries
from pipelines.jobs import build_all, ingest_jobs, release_delivery
from pipelines.recovery import recover_dead_runs
from pipelines.resources import resources_for_environment
from pipelines.sensors import inbox_sensors

defs = dg.Definitions(
    assets=[*all_ingest_assets(), *mart_assets(), *quality_assets(), *directory_assets(),
            *dashboard_assets()],
    jobs=[*ingest_jobs(), build_all, release_delivery],
    sensors=[*inbox_sensors(), follow_deliveries, recover_dead_runs],
    resources=resources_for_environment(),
    executor=dg.in_process_executor,
)
