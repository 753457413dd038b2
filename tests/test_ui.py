"""The Dagster UI reads like the centre: plain Chinese descriptions (the lists show them as typed,
so no markdown), owners from the contracts' providers, and checks on every mart."""

from __future__ import annotations

import re

import dagster as dg

from redwall.pipelines.definitions import defs
from redwall.schemas import load_contracts

CHINESE = re.compile(r"[\u4e00-\u9fff]")
MARKUP = re.compile(r"\*\*|`|^#", re.M)


def test_descriptions_are_plain_chinese_everywhere():
    graph = defs.resolve_asset_graph()
    repo = defs.get_repository_def()
    described = {key.to_user_string(): graph.get(key).description for key in graph.get_all_asset_keys()}
    described |= {
        f"check {c.name} on {c.asset_key.to_user_string()}": graph.get_check_spec(c).description
        for key in graph.get_all_asset_keys()
        for c in graph.get(key).check_keys
    }
    described |= {f"job {j.name}": j.description for j in repo.get_all_jobs() if not j.name.startswith("__")}
    # Dagster's own automation sensor, made implicitly when no one declares it, has no description
    described |= {
        f"sensor {s.name}": s.description
        for s in repo.sensor_defs
        if not (s.name == "default_automation_condition_sensor" and s.description is None)
    }
    described |= {f"schedule {s.name}": s.description for s in repo.schedule_defs}
    assert not {where for where, text in described.items() if not text or not CHINESE.search(text)}
    assert not {where for where, text in described.items() if MARKUP.search(text)}


def test_owners_come_from_the_contracts_providers():
    graph = defs.resolve_asset_graph()
    contracts = load_contracts()
    owners = {key.to_user_string(): graph.get(key).owners for key in graph.get_all_asset_keys()}
    assert all(owners.values()) and all(o.startswith("team:") for os_ in owners.values() for o in os_)
    police = contracts.table("police.population")
    assert owners["lake/silver/police_population"] == [f"team:{police.provider['name']}"]
    assert owners["lake/mart/person"] == [f"team:{contracts.table('mart.person').provider['name']}"]


def test_every_mart_has_checks_beyond_the_calendar_and_keys_are_blocking():
    graph = defs.resolve_asset_graph()
    for t in load_contracts().marts:
        key = dg.AssetKey(["lake", "mart", t.name])
        specs = [graph.get_check_spec(c) for c in graph.get(key).check_keys]
        assert any(s.name == "mart_keys_unique" and s.blocking for s in specs), t.name
    person = graph.get(dg.AssetKey(["lake", "mart", "person"])).check_keys
    event = graph.get(dg.AssetKey(["lake", "mart", "event"])).check_keys
    assert "residents_in_known_grids" in {c.name for c in person}
    assert "closed_events_judged_on_time" in {c.name for c in event}


def test_launchpad_config_fields_are_described_in_chinese():
    from redwall.assets.ingest import IngestConfig
    from redwall.assets.marts import MartsConfig
    from redwall.assets.quality import LoopConfig, WaiverConfig

    for config in (IngestConfig, MartsConfig, LoopConfig, WaiverConfig):
        fields = config.to_config_schema().as_field().config_type.fields
        assert fields and all(CHINESE.search(f.description or "") for f in fields.values()), config.__name__
