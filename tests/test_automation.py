"""The one trigger story, evaluated by Dagster itself (``evaluate_automation_conditions`` and the
real sensors on the real definitions and a real instance): a delivery is followed by the marts,
the quality loop, the directory and the warehouse; a failing blocking check holds back its
dependants and nothing else; an ingestion run materialises only the tables its deliveries
touched; a refused or duplicate file's receipt is published all the same; a failed rebuild is run
again until it succeeds, a few times at most."""

from __future__ import annotations

import os
import shutil

import dagster as dg
import duckdb
import pytest

from redwall import lake
from redwall.assets import keys
from redwall.assets.resources import RedwallHome
from redwall.generator import generate
from redwall.home import Home
from redwall.ingest.receipts import OPS, RECEIPTS
from redwall.pipelines import retries
from redwall.pipelines.automation import AUTOMATION_SENSOR
from redwall.pipelines.definitions import defs
from redwall.pipelines.jobs import DOWNSTREAM_GROUPS, ingest_job_name
from redwall.schemas import load_contracts

GRAPH = defs.resolve_asset_graph()
ALL_KEYS = set(GRAPH.get_all_asset_keys())
DOWNSTREAM = set(dg.AssetSelection.groups(*DOWNSTREAM_GROUPS).resolve(GRAPH))
MARTS = set(dg.AssetSelection.groups("marts").resolve(GRAPH))
PUBLISHED = {keys.WAREHOUSE, keys.DASHBOARD}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A small street's deliveries with some held back to arrive later: ``(home, instance, later)``."""
    home = Home.at(tmp_path_factory.mktemp("service") / "home").ensure()
    generate(home, scale="small", seed=5, days=2)
    later = tmp_path_factory.mktemp("later")
    for pattern in ("police/实有人口_*.csv", "grid_app/grid_app_*.jsonl", "municipal/mz_death_*"):
        found = sorted((home.root / "inbox").glob(pattern))
        for path in found[-1:] if "mz_death" not in pattern else found:  # the last of each; mz_death whole
            (later / path.parent.name).mkdir(exist_ok=True)
            shutil.move(path, later / path.parent.name / path.name)
    settings = {"REDWALL_HOME": str(home.root), "REDWALL_PSEUDONYM_KEY": "a test key, not the demo one"}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    with dg.instance_for_test() as instance:
        yield home, instance, later
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name)
        else:
            os.environ[name] = value


def take_in(instance, source: str) -> dg.ExecuteInProcessResult:
    """The run an inbox sensor starts (here: for every file waiting)."""
    return defs.resolve_job_def(ingest_job_name(source)).execute_in_process(instance=instance, raise_on_error=False)


def deliver(home: Home, later, pattern: str) -> None:
    for path in sorted(later.glob(pattern)):
        shutil.move(path, home.inbox(path.parent.name) / path.name)


def tick(instance, cursor=None) -> tuple[set[dg.AssetKey], object]:
    """One evaluation of the automation sensor: the assets it would request now."""
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    return {key for key in ALL_KEYS if result.get_num_requested(key)}, result.cursor


def materialised_in(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {event.asset_key for event in result.get_asset_materialization_events()}


def retry_tick(instance) -> tuple[list[dg.RunRequest], str | None]:
    """One evaluation of the sensor that runs failed work again: its requests, or why none."""
    home = os.environ["REDWALL_HOME"]
    with dg.build_sensor_context(
        instance=instance, definitions=defs, resources={"redwall": RedwallHome(root=home)}
    ) as context:
        tick = defs.get_sensor_def(retries.SENSOR).evaluate_tick(context)
    return tick.run_requests or [], tick.skip_message


def published_receipts(home: Home) -> dict[str, str]:
    """File name → receipt status, as the shared warehouse shows them."""
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        return dict(con.sql("SELECT file_name, status FROM ops.file_receipt").fetchall())


def rebuild(instance, selection, tags=None) -> dg.ExecuteInProcessResult:
    """The run the automation (or the retry sensor) starts: ``selection`` of everything downstream."""
    return defs.resolve_job_def("build_all").execute_in_process(
        instance=instance, asset_selection=sorted(selection, key=str), tags=tags, raise_on_error=False
    )


def test_the_automation_sensor_is_on_by_default_and_nothing_else_triggers():
    sensor = defs.get_sensor_def(AUTOMATION_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert not defs.get_repository_def().schedule_defs  # one story: no nightly rebuild beside it
    # every asset downstream of ingestion is automated; ingestion itself is started by the inbox sensors
    automated = {key for key in ALL_KEYS if GRAPH.get(key).automation_condition is not None}
    assert automated == DOWNSTREAM


def test_deliveries_are_followed_and_a_failing_blocking_check_holds_back_only_its_dependants(service):
    home, instance, later = service
    contracts = load_contracts()

    # Nothing delivered yet: nothing to build.
    requested, cursor = tick(instance)
    assert requested == set()

    # The first deliveries: everything downstream follows, the quality loop included, in one tick.
    for source in contracts.sources:
        assert take_in(instance, source).success
    # A police load still queued (a busy service nearly always has one): its checks are planned,
    # not failed, and hold nothing back.
    instance.create_run_for_job(defs.resolve_job_def(ingest_job_name("police")), run_config={})
    requested, cursor = tick(instance, cursor)
    assert requested == DOWNSTREAM
    assert dg.AssetKey(["quality", "issue"]) in requested and dg.AssetKey(["warehouse", "redwall"]) in requested
    built = defs.resolve_job_def("build_all").execute_in_process(instance=instance)
    assert materialised_in(built) == DOWNSTREAM
    requested, cursor = tick(instance, cursor)
    assert requested == set()  # built: nothing is due until the next delivery

    # The police feed lost a required column: the file is refused and its blocking check fails.
    (home.inbox("police") / "实有人口_20991231.csv").write_bytes("姓名,性别\n张三,男\n".encode("gb18030"))
    broken = take_in(instance, "police")
    assert not broken.success
    (check,) = [c for c in broken.get_asset_check_evaluations() if c.check_name == "feed_layout_intact"]
    assert not check.passed
    police = contracts.source_tables("police")[0].source
    assert materialised_in(broken) == {keys.receipts(police)}  # a refused file touches no table, only its receipt
    # Only the publish follows, with the refusal's receipt and the marts as they stand.
    requested, cursor = tick(instance, cursor)
    assert requested == PUBLISHED
    assert rebuild(instance, requested).success
    assert published_receipts(home)["实有人口_20991231.csv"] == "rejected"
    requested, cursor = tick(instance, cursor)
    assert requested == set()  # the tick after the request: its run is done here (a real one takes longer)
    # A blocking check's answer is not an accident: the failed load is not run again.
    assert retry_tick(instance)[0] == []

    # The grid app keeps delivering and is taken in; what depends on police waits: the marts (built
    # in one step, all of them), the quality loop and the catalogue — nothing of them is requested.
    deliver(home, later, "grid_app/*")
    grid = take_in(instance, "grid_app")
    assert grid.success and materialised_in(grid)
    requested, cursor = tick(instance, cursor)
    assert requested == PUBLISHED  # its receipts are published, the marts are not rebuilt
    assert rebuild(instance, requested).success
    requested, cursor = tick(instance, cursor)
    assert requested == set()

    # A good police snapshot clears the check: everything follows again.
    deliver(home, later, "police/*")
    assert take_in(instance, "police").success
    requested, cursor = tick(instance, cursor)
    assert requested == DOWNSTREAM - {dg.AssetKey(["catalog", "ledger_templates"])}  # no district delivery


def test_a_run_materialises_only_the_tables_its_deliveries_touched(service):
    home, instance, later = service
    municipal = {t.key: t for t in load_contracts().source_tables("municipal")}

    # A monthly death register alone: its tables move, the minimum-income register's do not.
    deliver(home, later, "municipal/mz_death_*")
    deaths = take_in(instance, "municipal")
    assert deaths.success
    death = municipal["municipal.mz_death"]
    assert materialised_in(deaths) == {keys.bronze(death), keys.silver(death), keys.receipts("municipal")}
    # Every table's checks still ran: they judge the table as it stands.
    judged = {(c.asset_key.path[-1], c.check_name) for c in deaths.get_asset_check_evaluations()}
    assert {(t.bronze_name, "current_keys_unique") for t in municipal.values()} <= judged

    # The same file sent again: answered as a duplicate, nothing materialised, so nothing looks fresher.
    archived = next((home.root / "archive" / "municipal").glob("mz_death_*.parquet"))
    shutil.copy(archived, home.inbox("municipal") / f"again_{archived.name}")
    again = take_in(instance, "municipal")
    assert again.success and materialised_in(again) == {keys.receipts("municipal")}  # its answer only
    assert lake.read(home, "ops", "file_receipt").sort("received_at")["status"][-1] == "duplicate"


def test_a_duplicate_files_receipt_reaches_the_warehouse_without_a_real_delivery(service):
    home, instance, _ = service
    assert rebuild(instance, DOWNSTREAM).success  # the state so far, published
    _, cursor = tick(instance)
    archived = next((home.root / "archive" / "municipal").glob("mz_death_*.parquet"))
    shutil.copy(archived, home.inbox("municipal") / f"once_more_{archived.name}")
    assert take_in(instance, "municipal").success
    # What reads receipts follows: the quality loop (refused rows are issues), the catalogue's
    # department view and the publish; the marts, built from silver, do not.
    requested, cursor = tick(instance, cursor)
    assert requested == {keys.QUALITY_ISSUE, keys.QUALITY_METRICS, keys.CATALOG, *PUBLISHED}
    assert rebuild(instance, requested).success
    assert published_receipts(home)[f"once_more_{archived.name}"] == "duplicate"


def test_a_failed_rebuild_is_run_again_until_it_succeeds_and_a_few_times_at_most(service, monkeypatch):
    home, instance, _ = service
    monkeypatch.setattr(retries, "BACKOFF_SECONDS", 0)  # the waits between attempts, not what is tested

    def attempt() -> dg.ExecuteInProcessResult:
        (request,), _ = retry_tick(instance)
        assert set(request.asset_selection) == PUBLISHED  # the stale part only: the marts were built
        return rebuild(instance, request.asset_selection, request.tags)

    # The publish fails (here: the pseudonym key is missing), on a first run and on a retry.
    monkeypatch.delenv("REDWALL_PSEUDONYM_KEY")
    assert not rebuild(instance, PUBLISHED).success
    assert not (second := attempt()).success
    assert second.dagster_run.tags[retries.ATTEMPT_TAG] == "2"
    # The cause is fixed: the next attempt publishes, without any new delivery.
    monkeypatch.setenv("REDWALL_PSEUDONYM_KEY", "a test key, not the demo one")
    assert attempt().success
    assert retry_tick(instance) == ([], "没有需要重试的失败运行")
    assert set(published_receipts(home)) == set(lake.read(home, OPS, RECEIPTS)["file_name"])

    # A permanent failure: three runs in all, then the sensor stops and says why.
    monkeypatch.delenv("REDWALL_PSEUDONYM_KEY")
    assert not rebuild(instance, PUBLISHED).success
    assert not attempt().success
    assert not attempt().success
    requests, stopped = retry_tick(instance)
    assert requests == [] and "不再重试" in stopped and "MissingKeyError" in stopped
