"""End to end on the real definitions: `redwall demo` (small scale) takes every generated feed in,
answers every file, builds the marts and publishes the warehouse; re-sending a file changes nothing."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from redwall import lake
from redwall.cli import main
from redwall.home import Home
from redwall.package import SOURCE as PACKAGE_SOURCE
from redwall.schemas import load_contracts


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "home"
    saved = {k: os.environ.get(k) for k in ("REDWALL_HOME", "DAGSTER_HOME")}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        assert main(["--home", str(root), "demo", "--scale", "small", "--days", "7"]) == 0
    (root / "demo_output.txt").write_text(printed.getvalue(), encoding="utf-8")
    yield Home.at(root)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_demo_answers_every_file_and_empties_the_inbox(demo_home):
    left = [p for p in (demo_home.root / "inbox").rglob("*") if p.is_file()]
    assert left == []
    receipts = lake.read(demo_home, "ops", "file_receipt")
    taken = [
        p
        for d in ("archive", "rejected")
        for p in (demo_home.root / d).rglob("*")
        if p.is_file() and "回执" not in p.name and not p.name.endswith((".receipt.json", ".dict.json"))
    ]
    assert receipts.height == len(taken) > 0
    # every source a street centre receives; street packages go to a district's home (test_streets)
    assert set(receipts["source"]) == set(load_contracts().sources) - {PACKAGE_SOURCE}
    # Nothing is lost: every row read is accepted or rejected with a reason.
    assert (receipts["rows_read"] == receipts["rows_accepted"] + receipts["rows_rejected"]).all()
    rejections = lake.read(demo_home, "ops", "rejection")
    rejected_rows = (
        rejections.filter(pl.col("severity") == "error").select("receipt_id", "table", "row_number").unique()
    )
    assert rejected_rows.height == receipts["rows_rejected"].sum() > 0


def test_every_asset_materialized_and_checks_passed(demo_home):
    """Every asset downstream of the lake is built; a bronze or silver table is materialised
    exactly when a delivery touched it (a ledger type nobody sent has none)."""
    from redwall.assets import keys as asset_keys

    receipts = lake.read(demo_home, "ops", "file_receipt")
    delivered = {key for tables in receipts["tables"] for key in tables}
    with dg.DagsterInstance.from_config(str(demo_home.dagster_home)) as instance:
        records = instance.get_run_records()
        assert records and all(r.dagster_run.is_success for r in records)
        graph = __import__("redwall.pipelines.definitions", fromlist=["defs"]).defs.resolve_asset_graph()
        lake_tables = {
            t.key: (asset_keys.bronze(t), asset_keys.silver(t))
            for t in load_contracts().feeds + load_contracts().ledgers
        }
        for table, layers in lake_tables.items():
            for key in layers:
                assert (instance.get_latest_materialization_event(key) is not None) == (table in delivered), key
        assert len(delivered) < len(lake_tables)  # the demo leaves some ledger types unsent
        # a source's receipts are materialised once it answered a file (the demo sends no street package)
        unanswered = {asset_keys.receipts(s) for s in load_contracts().sources} - {
            asset_keys.receipts(s) for s in receipts["source"]
        }
        assert unanswered, "every source answered a file: the receipts' case below is not exercised"
        for key in unanswered:
            assert instance.get_latest_materialization_event(key) is None, key.to_user_string()
        built = dg.AssetSelection.all().resolve(graph) - {k for layers in lake_tables.values() for k in layers}
        for key in built - unanswered:
            assert instance.get_latest_materialization_event(key) is not None, key.to_user_string()
        # The first build has nothing to remember: every record without an ID went through the model.
        link = instance.get_latest_materialization_event(dg.AssetKey(["lake", "mart", "person_link"]))
        metadata = link.asset_materialization.metadata
        assert metadata["resolution/records_scored"].value > 0
        assert metadata["resolution/records_kept"].value == 0


def test_the_marts_keep_their_promises_on_the_demo(demo_home):
    """Every mart check (:data:`redwall.assets.mart_checks.CHECKS`: the promises dashboards build
    on) passed at its latest evaluation: runs succeed when a check fails, so only this says so."""
    from redwall.assets.mart_checks import CHECKS

    latest: dict[tuple[str, str], tuple[float, bool]] = {}
    with dg.DagsterInstance.from_config(str(demo_home.dagster_home)) as instance:
        for record in instance.get_run_records():
            for event in instance.all_logs(
                record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            ):
                evaluation = event.dagster_event.event_specific_data
                judged = (evaluation.asset_key.path[-1], evaluation.check_name)
                if judged not in latest or event.timestamp > latest[judged][0]:
                    latest[judged] = (event.timestamp, evaluation.passed)
    promised = {(c.mart, c.name) for c in CHECKS}
    assert promised <= latest.keys(), promised - latest.keys()
    assert not [judged for judged in sorted(promised) if not latest[judged][1]]


def test_metadata_people_compare_over_time_is_numeric(demo_home):
    """The UI plots a numeric entry across runs; a JSON blob of counts it can only print."""
    graph = __import__("redwall.pipelines.definitions", fromlist=["defs"]).defs.resolve_asset_graph()
    with dg.DagsterInstance.from_config(str(demo_home.dagster_home)) as instance:
        blobs = {}
        for key in graph.get_all_asset_keys():
            event = instance.get_latest_materialization_event(key)
            for name, value in (event.asset_materialization.metadata if event else {}).items():
                if (
                    isinstance(value, dg.JsonMetadataValue)
                    and isinstance(value.data, dict)
                    and any(isinstance(v, (int, float)) for v in value.data.values())
                ):
                    blobs[f"{key.to_user_string()} {name}"] = value.data
        issue = instance.get_latest_materialization_event(dg.AssetKey(["quality", "issue"])).asset_materialization
    assert blobs == {}
    assert isinstance(issue.metadata["open"].value, int) and any(k.startswith("open/") for k in issue.metadata)


def test_marts_hold_rows_and_warehouse_serves_them(demo_home):
    contracts = load_contracts()
    with duckdb.connect(str(demo_home.warehouse), read_only=True) as con:
        for name in ("person", "place", "event", "object", "organization", "grid"):
            lake_rows = lake.read(demo_home, "mart", name).height
            assert lake_rows > 0, name
            shared = con.sql(f"SELECT count(*) FROM mart.{name}").fetchone()[0]
            # a person too rare to share even with the telling values blanked is left out (k-anonymity)
            assert shared == lake_rows if name != "person" else 0.99 * lake_rows <= shared <= lake_rows, name
        comment = con.sql(
            "SELECT comment FROM duckdb_tables() WHERE schema_name='mart' AND table_name='person'"
        ).fetchone()[0]
        assert comment and contracts.table("mart.person").title in comment
        # The data directory and the quality loop are published beside the marts.
        assert con.sql("SELECT count(*) FROM catalog.resource").fetchone()[0] == len(contracts.tables)
        assert con.sql("SELECT count(*) FROM quality.issue WHERE status = 'open'").fetchone()[0] > 0
        assert con.sql("SELECT count(*) FROM ops.file_receipt").fetchone()[0] > 0


def test_resending_a_file_changes_nothing(demo_home):
    archived = sorted((demo_home.root / "archive" / "police").glob("实有人口_*.csv"))[-1]
    before = lake.read(demo_home, "silver", "police_population").height
    bronze_before = lake.read(demo_home, "bronze", "police_population").height
    shutil.copy(archived, demo_home.inbox("police") / f"copy_of_{archived.name}")
    assert main(["--home", str(demo_home.root), "process", "--source", "police"]) == 0
    receipts = lake.read(demo_home, "ops", "file_receipt").sort("received_at")
    assert receipts["status"][-1] == "duplicate"
    assert lake.read(demo_home, "silver", "police_population").height == before
    assert lake.read(demo_home, "bronze", "police_population").height == bronze_before


NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_the_notebooks_answer_the_centres_questions():
    assert [p.stem for p in NOTEBOOKS] == ["care_visits_due", "event_handling", "quality_loop", "street_at_a_glance"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_analyst_notebook_runs_end_to_end_on_the_demo_warehouse(demo_home, notebook, monkeypatch, tmp_path):
    """Executed as Jupyter runs it (a real kernel, every cell in order): a cell that raises fails
    the test, and so does a chart label the font cannot draw. The executed notebook, with its
    charts, is kept beside the test for review."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("REDWALL_HOME", str(demo_home.root))
    executed = nbformat.read(notebook, as_version=4)
    NotebookClient(
        executed, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}
    ).execute()
    nbformat.write(executed, tmp_path / notebook.name)
    print(f"executed notebook: {tmp_path / notebook.name}")
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # its charts
    tables = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert len(tables) >= 2 and not [t for t in tables if "<th>...</th>" in t or "<td>...</td>" in t]  # none cut


def _strings_in_warehouse(path) -> set[str]:
    """Every distinct text value of every table (the file itself is compressed, so ask DuckDB)."""
    values: set[str] = set()
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.sql(
            "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
            "WHERE data_type = 'VARCHAR' AND NOT internal"
        ).fetchall()
        for schema, table, column in columns:
            values |= {v for (v,) in con.sql(f'SELECT DISTINCT "{column}" FROM "{schema}"."{table}"').fetchall() if v}
    return values


def test_no_raw_id_or_phone_leaves_the_restricted_zone(demo_home):
    """The shared warehouse, Dagster's event log and run storage, the receipts and the demo's own
    output hold no ID number or phone number of any generated person."""
    from redwall.warehouse import restricted_path

    persons = pl.read_parquet(demo_home.truth / "persons.parquet")
    secrets = set(persons["id_number"].drop_nulls()) | set(persons["phone"].drop_nulls())
    assert len(secrets) > 1000
    candidates = re.compile(r"\d{17}[\dXx]|1[3-9]\d{9}")

    def leaked(texts) -> set[str]:
        return {m for text in texts for m in candidates.findall(text) if m in secrets}

    assert leaked(_strings_in_warehouse(demo_home.warehouse)) == set()
    assert leaked(_strings_in_warehouse(restricted_path(demo_home)))  # there they are: the scan can fail
    files = [
        demo_home.root / "demo_output.txt",
        *(p for p in demo_home.dagster_home.rglob("*") if p.is_file()),
        *(p for d in ("archive", "rejected") for p in (demo_home.root / d).rglob("*") if p.suffix in (".txt", ".json")),
    ]
    assert len(files) > 10
    leaks = {
        str(p.relative_to(demo_home.root)) for p in files if leaked([p.read_bytes().decode("utf-8", errors="replace")])
    }
    assert leaks == set()


def test_a_dashboard_author_reads_the_warehouse_without_the_code(demo_home):
    """Codes have their names beside them, whole numbers are BIGINT, no column needs quoting, and
    the community view's sums are BIGINT too."""
    from redwall.schemas import code_lists

    assert set(code_lists()["feed_source"]) == set(load_contracts().sources)
    with duckdb.connect(str(demo_home.warehouse), read_only=True) as con:
        reserved = {
            k
            for (k,) in con.sql(
                "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'"
            ).fetchall()
        }
        columns = con.sql(
            "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() WHERE NOT internal"
        ).fetchall()
        assert not [c for c in columns if c[2] in reserved]
        assert {c[3] for c in columns if "INT" in c[3]} == {"BIGINT"}
        names = {(s, t): {c for s2, t2, c, _ in columns if (s2, t2) == (s, t)} for s, t, _, _ in columns}
        assert {"sex_name", "person_type_name", "status_name", "hukou_match_name"} <= names[("mart", "person")]
        assert {"status_name", "source_name"} <= names[("ops", "file_receipt")]
        assert {"status_name", "severity_name", "table_name", "column_name"} <= names[("quality", "issue")]
        assert con.sql("SELECT count(*) FROM mart.event WHERE status_name IS NULL").fetchone()[0] == 0
        assert con.sql("SELECT DISTINCT status_name FROM ops.file_receipt WHERE status = 'accepted'").fetchall() == [
            ("全部接收",)
        ]
        # the community view holds the grids' figures, summed
        by_view = con.sql("SELECT sum(residents), sum(events_on_time) FROM mart.community").fetchone()
        assert by_view == con.sql("SELECT sum(residents), sum(events_on_time) FROM mart.grid").fetchone()
        # one timeliness: the grid's on-time count is the event mart's
        assert (
            con.sql("SELECT count(*) FILTER (WHERE on_time) FROM mart.event WHERE grid_code IS NOT NULL").fetchone()[0]
            == by_view[1]
        )


def test_every_table_the_lake_and_the_warehouse_hold_has_a_contract(demo_home):
    """Walk the lake and the shared warehouse of a built home: every table in them is declared in
    schemas/ (a system table with exactly its contract's columns and types), and the catalogue
    lists every table the warehouse publishes."""
    contracts = load_contracts()
    delivered = {t.bronze_name: t for t in contracts.tables.values() if t.kind in ("feed", "ledger")}
    lake_root = Path(demo_home.table_uri("bronze", "")).parent
    held = [
        (layer.name, table.name)
        for layer in sorted(lake_root.iterdir())
        for table in sorted(layer.iterdir())
        if lake.exists(demo_home, layer.name, table.name)
    ]
    assert {layer for layer, _ in held} == {"bronze", "silver", "mart", "ops", "quality", "catalog", "state"}
    for layer, name in held:
        columns = lake.scan(demo_home, layer, name).collect_schema()
        if layer in ("bronze", "silver"):
            assert name in delivered, f"{layer}/{name} has no contract"
            if layer == "silver":
                assert set(delivered[name].schema()) <= set(columns.names()), name
            continue
        assert f"{layer}.{name}" in contracts.tables, f"{layer}/{name} has no contract"
        table = contracts.table(f"{layer}.{name}")
        if table.kind == "system":
            assert dict(columns) == table.schema(), table.key
        else:
            assert set(table.schema()) <= set(columns.names()), table.key
    with duckdb.connect(str(demo_home.warehouse), read_only=True) as con:
        published = {
            f"{s}.{t}" for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        }
        views = {
            f"{s}.{v}"
            for s, v in con.execute("SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        }
        catalogued = {key for (key,) in con.execute("SELECT table_key FROM catalog.resource").fetchall()}
    assert {
        "ops.file_receipt",
        "quality.issue",
        "quality.loop_metrics",
        "catalog.resource",
        "ref.calendar",
    } <= published
    assert published <= set(contracts.tables), published - set(contracts.tables)
    assert views == {t.key for t in contracts.views} == {"mart.community"}
    assert published | views <= catalogued, (published | views) - catalogued


def test_warehouse_docs_are_fresh_and_their_examples_run(demo_home, tmp_path):
    from redwall.generated import DOCS as GENERATED_DOCS
    from redwall.generated import PROJECT_ROOT, Workshop
    from redwall.warehouse_docs import DOCS, EXAMPLES

    built = Workshop(demo_home.warehouse)  # the demo `redwall regenerate docs` builds, already built here
    problems = GENERATED_DOCS.problems(PROJECT_ROOT, built)
    assert not problems, "\n".join(problems) + "\nrefresh: redwall regenerate docs"
    # and the check can fail: on a copy, a stale page and a missing one
    copy = tmp_path / DOCS.relative_to(PROJECT_ROOT)
    copy.parent.mkdir(parents=True)
    copy.write_text(DOCS.read_text(encoding="utf-8").replace("mart.person", "mart.persons", 1), encoding="utf-8")
    assert GENERATED_DOCS.problems(tmp_path, built) == ["docs/warehouse.md: stale"]
    copy.unlink()
    assert GENERATED_DOCS.problems(tmp_path, built) == ["docs/warehouse.md: missing"]
    assert GENERATED_DOCS.regenerate(tmp_path, built) == [copy] and not GENERATED_DOCS.problems(tmp_path, built)
    with duckdb.connect(str(demo_home.warehouse), read_only=True) as con:
        for table, examples in EXAMPLES.items():
            for _, sql in examples:
                assert f"`{table}`" in DOCS.read_text(encoding="utf-8")
                con.sql(sql).fetchall()  # runs as documented


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HEADLESS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--hide-scrollbars",
]


def _page_requests(net_log: Path) -> list[str]:
    """URLs a page asked for (Chromium's net log; the browser's own background requests carry no
    file:// isolation key and are left out)."""
    log = json.loads(net_log.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start and e.get("params", {}).get("network_isolation_key", "").startswith("file://")
    ]


def _open(page: Path, tmp_path: Path, name: str, *extra: str) -> tuple[str, list[str]]:
    """``page`` in headless Chromium: its rendered DOM and the requests it made."""
    net_log = tmp_path / f"{name}.netlog.json"
    done = subprocess.run(
        [CHROMIUM, *HEADLESS, f"--user-data-dir={tmp_path / name}", f"--log-net-log={net_log}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, _page_requests(net_log)


@pytest.mark.skipif(
    not CHROMIUM, reason="needs a headless Chromium: apt-get install chromium fonts-noto-cjk (.ci/run installs both)"
)
def test_dashboard_opens_offline_and_shows_the_warehouse_it_was_built_from(demo_home, tmp_path):
    from redwall.dashboard import dashboard_path

    page = dashboard_path(demo_home)
    assert page.exists()  # build_all made it, downstream of the warehouse
    # for leaders' accounts too, though redwall's files are owner-only by default
    assert [oct(p.stat().st_mode & 0o777) for p in (page, page.parent, demo_home.published)] == [
        "0o644",
        "0o755",
        "0o755",
    ]
    text = page.read_text(encoding="utf-8")
    assert "Content-Security-Policy" in text and "default-src 'none'" in text and "<script" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    # The net-log check has teeth: a page with a remote image and stylesheet shows both requests.
    control = tmp_path / "control.html"
    control.write_text('<img src="http://127.0.0.1:9/x.png"><link rel="stylesheet" href="https://cdn.invalid/a.css">')
    assert len(_open(control, tmp_path, "control", "--dump-dom")[1]) == 2

    dom, requests = _open(page, tmp_path, "dashboard", "--dump-dom")
    assert requests == []
    shown = dict(re.findall(r'data-figure="(\w+)">([^<]*)<', dom))
    with duckdb.connect(str(demo_home.warehouse), read_only=True) as con:
        residents, floating, unregistered, care_alone = con.sql(
            "SELECT sum(residents), sum(floating_residents), sum(unregistered_residents), sum(living_alone) FROM mart.grid"
        ).fetchone()
        events, overdue, on_time = con.sql(
            "SELECT count(*), count(*) FILTER (WHERE overdue), round(avg(on_time::INT) * 100, 1) FROM mart.event"
        ).fetchone()
        (open_issues,) = con.sql("SELECT count(*) FROM quality.issue WHERE status = 'open'").fetchone()
        community, community_residents = con.sql(
            "SELECT community_name, residents FROM mart.community ORDER BY residents DESC LIMIT 1"
        ).fetchone()
    assert shown["residents"] == f"{residents:,}人" and shown["floating"] == f"{floating:,}人"
    assert shown["unregistered"] == f"{unregistered:,}人"  # 未登记, beside the counts by person type
    assert shown["living_alone"] == f"{care_alone:,}人" and shown["events"] == f"{events:,}件"
    assert shown["events_overdue"] == f"{overdue:,}件" and shown["on_time_pct"] == f"{on_time:.1f}%"
    assert shown["issues_open"] == f"{open_issues:,}条"
    assert re.search(rf"<td>{community}</td><td[^>]*>\d+</td><td[^>]*>{community_residents:,}</td>", dom)
    assert dom.count("<circle") > 10 and "<polygon" in dom  # the buildings map, with grid outlines
    screenshot = tmp_path / "dashboard.png"
    _open(page, tmp_path, "screenshot", f"--screenshot={screenshot}", "--window-size=1400,2600")
    assert screenshot.stat().st_size > 50_000
    print(f"dashboard screenshot for review: {screenshot}")


def _without_venv() -> dict[str, str]:
    """The README's shell: the virtualenv never activated, so its programs are not on PATH."""
    venv = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "REDWALL_HOME", "DAGSTER_HOME")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv)
    return env


def _printed(lines: list[str], label: str) -> str:
    return next(line.split(label, 1)[1].strip() for line in lines if line.strip().startswith(label))


def test_next_steps_work_as_printed(demo_home):
    """Every command `redwall demo` prints runs in a shell where the virtualenv was never activated."""
    lines = (demo_home.root / "demo_output.txt").read_text(encoding="utf-8").splitlines()
    assert Path(_printed(lines, "dashboard").split()[0]).is_file()
    query = lines[next(i for i, line in enumerate(lines) if "residents per community" in line) + 1].strip()
    done = subprocess.run(["bash", "-c", query], env=_without_venv(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with duckdb.connect(str(demo_home.warehouse), read_only=True) as con:
        community, residents = con.sql(
            "SELECT community_name, sum(residents)::BIGINT FROM mart.grid GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
    assert community in done.stdout and str(residents) in done.stdout
    # The servers (Dagster UI, JupyterLab) are started as printed but asked only for their help.
    ui = _printed(lines, "Dagster UI").split("→")[0].strip()
    done = subprocess.run(
        ["bash", "-c", f"{ui} --help"], env=_without_venv(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "--port" in done.stdout, done.stderr
    notebooks = _printed(lines, "notebooks")
    assert notebooks.startswith(f"REDWALL_HOME={demo_home.root} ")
    done = subprocess.run(
        ["bash", "-c", f"{notebooks} --help"], env=_without_venv(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "JupyterLab" in done.stdout, done.stderr
    assert list(Path(shlex.split(notebooks)[-1]).glob("*.ipynb"))


def test_demo_on_a_used_home_names_a_command_that_works(demo_home, capsys):
    assert main(["--home", str(demo_home.root), "demo", "--scale", "small"]) == 2
    again = re.search(r"`([^`]+)`", capsys.readouterr().err).group(1)
    assert again.split()[0] == str(Path(sys.executable).parent / "redwall") and "--fresh" in again
    done = subprocess.run(
        ["bash", "-c", f"{again} --help"], env=_without_venv(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "--fresh" in done.stdout, done.stderr


def test_a_shrunk_police_snapshot_is_held_and_the_build_says_so(demo_home, capsys, monkeypatch):
    """Last in this file: it leaves a police snapshot held in the demo home."""
    monkeypatch.setenv("REDWALL_PSEUDONYM_KEY", "a test secret")  # a hand-made file: not the demo's own data
    latest = sorted((demo_home.root / "archive" / "police").glob("实有人口_*.csv"))[-1]
    head = b"\n".join(latest.read_bytes().split(b"\n")[:51]) + b"\n"  # the header and 50 persons
    day = int(latest.stem.split("_")[1]) + 1
    (demo_home.inbox("police") / f"实有人口_{day}.csv").write_bytes(head)
    before = lake.read(demo_home, "silver", "police_population")
    assert main(["--home", str(demo_home.root), "build"]) == 0  # nothing wrong was applied: the build goes on
    told = capsys.readouterr().out
    assert "held for a decision, not applied" in told and "police.population" in told
    assert lake.read(demo_home, "silver", "police_population").equals(before)
    with duckdb.connect(str(demo_home.warehouse), read_only=True) as con:  # dashboards see what waits
        assert con.sql(
            "SELECT status, records_current > 0 FROM ops.held_delivery WHERE table_name = 'police.population'"
        ).fetchall() == [("held", True)]
    listing = next(line for line in told.splitlines() if "held for a decision" in line).split(": ", 1)[1]
    done = subprocess.run(["bash", "-c", listing], env=_without_venv(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "would close" in done.stdout, done.stderr
