"""Jobs: one ingestion job per source (what its inbox sensor starts), the publish job, and
``build_all`` — the main job: every asset, from inbox to warehouse."""

from __future__ import annotations

import dagster as dg

from schemas import load_contracts


def ingest_job_name(source: str) -> str:
    return f"ingest_{source}_job"


def ingest_jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    return [
        dg.define_asset_job(
            ingest_job_name(source), selection=dg.AssetSelection.groups(source),
            description=f"Take in every complete file of inbox/{source}: bronze, silver, receipts.",
        )
        for source in load_contracts().sources
    ]


publish_job = dg.define_asset_job(
    "publish", selection=dg.AssetSelection.groups("marts", "publish"),
    description="Rebuild the marts from silver and publish the warehouse atomically.",
)

build_all = dg.define_asset_job(
    "build_all", selection=dg.AssetSelection.all(),
    description="The main job: every inbox to bronze and silver, the marts, the warehouse.",
)
