"""The street dashboard (街道驾驶舱) as an asset downstream of the shared warehouse: one
self-contained HTML file under ``published/dashboard/`` (:mod:`redwall.dashboard`)."""

# No ``from __future__ import annotations``: Dagster reads the resource annotations at definition time.
import dagster as dg

from redwall.assets import keys
from redwall.assets.automation import follows_deliveries
from redwall.assets.metadata import centre_owners
from redwall.assets.resources import RedwallHome
from redwall.dashboard import build_dashboard


def dashboard_assets() -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=keys.DASHBOARD,
        deps=[keys.WAREHOUSE],
        group_name="publish",
        kinds={"html"},
        owners=centre_owners(),
        automation_condition=follows_deliveries(),
        description="街道驾驶舱 published/dashboard/index.html：由共享数据仓库生成的单个网页文件（样式和图表全部内嵌，"
        "不访问网络、不需要服务器），含关键指标、楼栋分布图、事件和质量闭环趋势、各社区和各网格表，只有汇总数。",
    )
    def dashboard(redwall: RedwallHome) -> dg.MaterializeResult:
        path, figures = build_dashboard(redwall.home())
        # numeric entries, so the UI plots each key figure over the runs
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(path)),
                **{f"figure/{f.key}": f.value for f in figures if f.value is not None},
            }
        )

    return [dashboard]
