"""Schedules. Ingestion is sensor-driven and marts follow their inputs (eager automation); the
nightly build is the safety net that republishes even when no sensor fired."""

from __future__ import annotations

import dagster as dg

from pipelines.jobs import build_all

nightly_build = dg.ScheduleDefinition(
    name="nightly_build", job=build_all, cron_schedule="0 2 * * *",
    execution_timezone="Asia/Shanghai",
    description="Every night at 02:00: take in whatever is waiting, rebuild and republish.",
)
