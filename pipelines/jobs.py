"""Jobs: one ingestion job per source (what its inbox sensor starts), and ``build_all``, which
rebuilds everything downstream of the lake — marts, quality loop, data directory, warehouse —
from silver as it stands.

Deliveries reach the warehouse by themselves (``pipelines.automation``); these jobs are for an
analyst who wants to rerun by hand (after a model change, say), and for ``redwall build``. The
two never share a run: ingestion materialises only the tables a delivery touched, and Dagster
skips a step whose inputs were not materialised in its run.
"""

from __future__ import annotations

import dagster as dg

from schemas import load_contracts

DOWNSTREAM_GROUPS = ("marts", "quality", "directory", "publish")


def ingest_job_name(source: str) -> str:
    return f"ingest_{source}_job"


def ingest_jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    return [
        dg.define_asset_job(
            ingest_job_name(source), selection=dg.AssetSelection.groups(source),
            tags={"redwall/source": source},  # the run queue lets one run per source value at a time
            description=f"接收 inbox/{source} 中每个完整的文件：原样落地（bronze）、规范化（silver），每个文件一张回执。",
        )
        for source in load_contracts().sources
    ]


build_all = dg.define_asset_job(
    "build_all", selection=dg.AssetSelection.groups(*DOWNSTREAM_GROUPS),
    description="由数据湖现状重建下游全部资产：主题库 → 质量闭环 → 资源目录 → 共享数据仓库和驾驶舱。"
                "文件报送后这些资产会自动跟进；需要手动重建时运行本作业。",
)
