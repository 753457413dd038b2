"""Inbox sensors: a file is taken only once complete (stable across two ticks, or a .ready marker),
the cursor survives a restart, and a re-sent file gets its own run (whose receipt says duplicate)."""

from __future__ import annotations

import os
from unittest import mock

import dagster as dg
import pytest

from redwall.assets.resources import RedwallHome
from redwall.home import Home
from redwall.pipelines.sensors import inbox_sensor


@pytest.fixture
def home(tmp_path) -> Home:
    return Home.at(tmp_path / "home").ensure()


def tick(home: Home, source: str, cursor: str | None):
    """One evaluation of the source's sensor. Files settle only over the ticks here (an interval
    longer than any test; the settling time itself is tested in test_hardening): a file is taken
    on the second tick that sees it unchanged, or with its marker."""
    sensor = inbox_sensor(source)
    resources = {"redwall": RedwallHome(root=str(home.root))}
    with (
        mock.patch.dict(os.environ, {"REDWALL_LIMIT_SETTLE_SECONDS": "3600"}),
        dg.build_sensor_context(cursor=cursor, instance=dg.DagsterInstance.ephemeral(), resources=resources) as ctx,
    ):
        result = sensor(ctx)
        return result, ctx.cursor


def drop(home: Home, name: str, data: bytes = "公民身份号码,姓名\n".encode("gb18030")):
    path = home.inbox("police") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_file_is_taken_once_it_stopped_growing(home):
    path = drop(home, "实有人口_20261120.csv")
    first, cursor = tick(home, "police", None)
    assert isinstance(first, dg.SkipReason)  # seen once: may still be copying

    with path.open("ab") as f:  # the copy goes on
        f.write("110102199001011237,张三\n".encode("gb18030"))
    growing, cursor = tick(home, "police", cursor)
    assert isinstance(growing, dg.SkipReason)

    # A restart: a fresh sensor evaluation with only the stored cursor still knows the last tick.
    stable, cursor = tick(home, "police", cursor)
    assert isinstance(stable, dg.RunRequest)
    assert stable.run_config["ops"]["ingest_police"]["config"]["files"] == ["inbox/police/实有人口_20261120.csv"]
    assert stable.tags["redwall/source"] == "police"


def test_a_ready_marker_means_complete_now(home):
    path = drop(home, "实有人口_20261127.csv")
    (path.parent / (path.name + ".ready")).touch()
    result, _ = tick(home, "police", None)
    assert isinstance(result, dg.RunRequest)
    assert result.run_config["ops"]["ingest_police"]["config"]["files"] == ["inbox/police/实有人口_20261127.csv"]


def test_a_resent_file_gets_a_new_run_key(home):
    path = drop(home, "实有人口_20261120.csv")
    _, cursor = tick(home, "police", None)
    first, cursor = tick(home, "police", cursor)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # dropped again
    _, cursor = tick(home, "police", cursor)
    again, _ = tick(home, "police", cursor)
    assert isinstance(first, dg.RunRequest) and isinstance(again, dg.RunRequest)
    assert first.run_key != again.run_key


def test_ledger_sensor_sees_department_folders(home):
    folder = home.inbox("ledgers", "civil_affairs")
    folder.mkdir(parents=True)
    (folder / "独居老人台账.xlsx").write_bytes(b"PK\x03\x04")
    (folder / "独居老人台账.xlsx.ready").touch()
    result, _ = tick(home, "ledgers", None)
    assert result.run_config["ops"]["ingest_ledgers"]["config"]["files"] == [
        "inbox/ledgers/civil_affairs/独居老人台账.xlsx"
    ]


def test_the_run_a_sensor_requests_takes_in_exactly_those_files(home, monkeypatch):
    from redwall import lake
    from redwall.generator import generate
    from redwall.pipelines.definitions import defs

    monkeypatch.setenv("REDWALL_HOME", str(home.root))
    generate(home, scale="small", seed=5, days=2)
    _, cursor = tick(home, "police", None)
    request, _ = tick(home, "police", cursor)
    half_copied = drop(home, "实有人口_20261130.csv", "公民身份号码,姓名\n".encode("gb18030"))  # arrives after

    result = defs.resolve_job_def("ingest_police_job").execute_in_process(
        run_config=request.run_config, instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    assert [p.name for p in home.inbox("police").iterdir()] == [half_copied.name]  # not taken yet
    receipts = lake.read(home, "ops", "file_receipt")
    assert receipts.height == len(request.run_config["ops"]["ingest_police"]["config"]["files"]) == 2
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)


def test_a_feed_that_lost_a_required_column_blocks_publishing(home, monkeypatch):
    from redwall.pipelines.definitions import defs

    monkeypatch.setenv("REDWALL_HOME", str(home.root))
    drop(home, "实有人口_20261120.csv", "姓名,性别\n张三,男\n".encode("gb18030"))  # 公民身份号码 vanished
    result = defs.resolve_job_def("ingest_police_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "feed_layout_intact"]
    assert not check.passed and check.metadata["files_with_changed_layout"].value == 1
    # Blocking: the marts and the warehouse downstream do not run on a broken feed.
    ingest = next(a for a in defs.assets if getattr(a, "node_def", None) and a.node_def.name == "ingest_police")
    assert next(c for c in ingest.check_specs if c.name == "feed_layout_intact").blocking


def test_a_source_with_a_load_still_queued_waits_and_then_takes_every_file_in_one_run(home):
    from redwall.pipelines.definitions import defs

    first, second = drop(home, "实有人口_20261120.csv"), drop(home, "实有人口_20261127.csv")
    for path in (first, second):
        (path.parent / (path.name + ".ready")).touch()
    with dg.instance_for_test() as instance:
        queued = instance.create_run_for_job(defs.resolve_job_def("ingest_police_job"), run_config={})
        sensor = inbox_sensor("police")
        with dg.build_sensor_context(instance=instance, resources={"redwall": RedwallHome(root=str(home.root))}) as ctx:
            assert isinstance(sensor(ctx), dg.SkipReason)  # no second run behind the queued one
            instance.report_run_canceled(queued)
            request = sensor(ctx)
    assert request.run_config["ops"]["ingest_police"]["config"]["files"] == [
        "inbox/police/实有人口_20261120.csv",
        "inbox/police/实有人口_20261127.csv",
    ]
