"""The one entry point: every asset, job, sensor and schedule of redwall, with the resources for
this environment. Nothing else wires definitions together."""

from __future__ import annotations

import dagster as dg

from assets.dashboard import dashboard_assets
from assets.directory import directory_assets
from assets.ingest import all_ingest_assets
from assets.marts import mart_assets
from assets.quality import quality_assets
from pipelines.jobs import build_all, ingest_jobs, publish_job
from pipelines.recovery import recover_dead_runs
from pipelines.resources import resources_for_environment
from pipelines.schedules import nightly_build
from pipelines.sensors import inbox_sensors

defs = dg.Definitions(
    assets=[*all_ingest_assets(), *mart_assets(), *quality_assets(), *directory_assets(),
            *dashboard_assets()],
    jobs=[*ingest_jobs(), publish_job, build_all],
    sensors=[*inbox_sensors(), recover_dead_runs],
    schedules=[nightly_build],
    resources=resources_for_environment(),
)
