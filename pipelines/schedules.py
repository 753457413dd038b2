"""Schedules. Ingestion is sensor-driven and marts follow their inputs (eager automation); the
nightly build is the safety net that republishes even when no sensor fired."""

from __future__ import annotations

import dagster as dg

from pipelines.jobs import build_all

nightly_build = dg.ScheduleDefinition(
    name="nightly_build", job=build_all, cron_schedule="0 2 * * *",
    execution_timezone="Asia/Shanghai",
    description="每晚02:00（北京时间）：接收收件箱中所有待处理文件，重建并重新发布，即使当天没有传感器触发。",
)
