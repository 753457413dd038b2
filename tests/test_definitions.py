"""The Dagster definitions load, and the asset graph is pinned: an accidental change to keys,
groups, dependencies, checks, jobs or sensors shows up here and in review.

After an intended change: ``REDWALL_UPDATE_SNAPSHOTS=1 pytest tests/test_definitions.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from redwall.pipelines.definitions import defs
from redwall.schemas import load_contracts

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def graph_of(definitions: dg.Definitions) -> dict:
    graph = definitions.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "checks": sorted(c.name for c in node.check_keys),
        }
    repo = definitions.get_repository_def()
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "schedules": sorted(s.name for s in repo.schedule_defs),
    }


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_every_contract_table_has_bronze_silver_and_every_mart_an_asset():
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    contracts = load_contracts()
    for t in contracts.feeds + contracts.ledgers:
        assert f"lake/bronze/{t.bronze_name}" in keys
        assert f"lake/silver/{t.bronze_name}" in keys
    for t in contracts.marts:
        assert f"lake/mart/{t.name}" in keys
    assert "warehouse/redwall" in keys


def test_asset_graph_matches_snapshot():
    graph = graph_of(defs)
    if os.environ.get("REDWALL_UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(graph, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    assert graph == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_workspace_yaml_loads_the_code_location(tmp_path):
    """What `dagster dev -w workspace.yaml` loads, validated by Dagster's own CLI."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "REDWALL_HOME": str(tmp_path / "home")}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    out = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
