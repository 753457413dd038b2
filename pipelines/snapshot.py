"""The asset graph as a reviewer reads it: every asset's group, dependencies and checks, and the
jobs, sensors and schedules (``tests/snapshots/asset_graph.json``, refreshed by
``redwall regenerate graph``). An accidental change to the graph shows up as a change to the file."""

from __future__ import annotations

import json

import dagster as dg


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


def render(definitions: dg.Definitions) -> str:
    """The snapshot file's text."""
    return json.dumps(graph_of(definitions), ensure_ascii=False, indent=1) + "\n"
