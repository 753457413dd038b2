"""Where a run's steps execute, chosen for the deployment in one place (``REDWALL_EXECUTOR``).

- ``in_process`` (the default, a street centre's desk): every step in the run's own process. A
  run is a handful of steps that each use every core they get; a process per step would cost
  seconds of imports for nothing.
- ``multiprocess``: one process per step on this machine, as many at once as it has cores: the
  marts, the quality loop and the directory of one rebuild side by side. Each step process is
  forked from a forkserver that imported the definitions once (Dagster's ``start_method:
  forkserver``): spawned, every step imported Dagster and the project again, 20–30 s a step
  under load.
- ``celery``: each step is a task on a Celery queue (broker ``REDWALL_CELERY_BROKER``, RabbitMQ or
  Redis; results over ``REDWALL_CELERY_BACKEND``, default ``rpc://``), taken by ``dagster-celery``
  workers on any machine that shares the instance database (``REDWALL_INSTANCE_DB``) and the lake
  (``REDWALL_LAKE_URI``). A worker works for one data home (it builds its resources from the
  home's environment), so each home has its own queue, ``REDWALL_CELERY_QUEUE`` (default
  ``dagster``), and its workers listen on that queue only. See ``deploy/README.md``.

Only the Dagster executors that ship with Dagster and dagster-celery are used: nothing here
schedules work itself.
"""

from __future__ import annotations

import os

import dagster as dg

EXECUTOR_ENV = "REDWALL_EXECUTOR"
EXECUTORS = ("in_process", "multiprocess", "celery")
CELERY_BROKER_ENV, CELERY_BACKEND_ENV, CELERY_QUEUE_ENV = (
    "REDWALL_CELERY_BROKER",
    "REDWALL_CELERY_BACKEND",
    "REDWALL_CELERY_QUEUE",
)


def executor_for_environment() -> dg.ExecutorDefinition:
    kind = os.environ.get(EXECUTOR_ENV, "in_process")
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "multiprocess":
        return dg.multiprocess_executor.configured({"start_method": {"forkserver": {}}}, name="multiprocess")
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_config(), name="celery")
    raise ValueError(f"{EXECUTOR_ENV} must be one of {', '.join(EXECUTORS)}, not {kind!r}")


def celery_config() -> dict:
    """The executor's (and the workers', ``dagster-celery worker start -y``) config: the broker and
    the result backend by environment variable, so no URL with a password is written anywhere."""
    if not os.environ.get(CELERY_BROKER_ENV):
        raise ValueError(f"{EXECUTOR_ENV}=celery needs {CELERY_BROKER_ENV} (e.g. pyamqp://guest@127.0.0.1:5672//)")
    config: dict = {"broker": {"env": CELERY_BROKER_ENV}}
    if os.environ.get(CELERY_BACKEND_ENV):
        config["backend"] = {"env": CELERY_BACKEND_ENV}
    if queue := os.environ.get(CELERY_QUEUE_ENV):
        config["config_source"] = {"task_default_queue": queue}
    return config
