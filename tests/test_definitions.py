"""The Dagster definitions load, and the asset graph is pinned: an accidental change to keys,
groups, dependencies, checks, jobs or sensors shows up here and in review.

After an intended change: ``redwall regenerate graph``; a missing snapshot fails like a stale one
(``redwall check``, tests/test_generated.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from redwall.generated import GRAPH, PROJECT_ROOT
from redwall.pipelines.definitions import defs
from redwall.schemas import load_contracts


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
    problems = GRAPH.problems(PROJECT_ROOT)
    assert not problems, "\n".join(problems)


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
