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
            description=f"接收 inbox/{source} 中每个完整的文件：原样落地（bronze）、规范化（silver），每个文件一张回执。",
        )
        for source in load_contracts().sources
    ]


publish_job = dg.define_asset_job(
    "publish", selection=dg.AssetSelection.groups("marts", "publish"),
    description="由 silver 重建各主题库，整库原子发布共享数据仓库，并生成街道驾驶舱。",
)

build_all = dg.define_asset_job(
    "build_all", selection=dg.AssetSelection.all(),
    description="主作业：全部收件箱 → bronze、silver → 主题库 → 质量闭环 → 资源目录 → 共享数据仓库和驾驶舱。",
)
