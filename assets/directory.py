"""The data directory: the resource catalogue (信息资源目录) and the ledger templates clerks fill,
both derived from the contracts and published under ``published/`` in the data home."""

# No ``from __future__ import annotations``: Dagster reads the resource annotations at definition time.
import dagster as dg

from redwall.assets import keys
from redwall.assets.automation import follows_deliveries
from redwall.assets.metadata import centre_owners, description
from redwall.assets.resources import RedwallHome
from redwall.catalog import CATALOG, publish_catalog
from redwall.schemas import load_contracts
from redwall.templates import publish_templates


def directory_assets() -> list[dg.AssetsDefinition]:
    contracts = load_contracts()
    # The community and grid drop-downs come from the district grid register's silver table.
    district_grid = keys.silver(contracts.table("district.grid"))
    # The catalogue shows each resource's live facts, so it follows every table it describes.
    described = [keys.silver(t) for t in contracts.feeds + contracts.ledgers] + [keys.mart(t) for t in contracts.marts]
    # its department view counts each ledger's open rectification issues, and refused rows and the
    # last delivery from the receipts, a refused file's included
    described += [keys.QUALITY_ISSUE, *(keys.receipts(source) for source in contracts.sources)]

    @dg.asset(
        key=keys.CATALOG,
        deps=described,
        group_name="directory",
        kinds={"excel", "json", "delta"},
        owners=centre_owners(),
        automation_condition=follows_deliveries(),
        description=(
            description(contracts.table(f"{CATALOG}.resource"), CATALOG)
            + "（接入数据表、部门台账、主题库和系统表），含国家编制指南的字段、信息项、"
            "共享和开放属性、关联资源，以及当前记录数、最近更新时间和质量通过率；另有部门视图（各部门台账的报送是否按期、拒收行数和待整改问题数）。"
            "写入 published/catalog（xlsx、JSON、DCAT JSON-LD）和 Delta 表 catalog/resource、"
            "catalog/item、catalog/department。信息项或共享属性变化时条目升版并写明变更说明。"
        ),
    )
    def resource_directory(redwall: RedwallHome) -> dg.MaterializeResult:
        home = redwall.home()
        published = publish_catalog(home)
        return dg.MaterializeResult(
            metadata={
                "resources": published["resources"],
                "items": published["items"],
                "departments": published["departments"],
                "changed_codes": dg.MetadataValue.json(published["changed"]),
                "new_codes": dg.MetadataValue.json(published["new"]),
                **{name: dg.MetadataValue.path(str(home.root / path)) for name, path in published["paths"].items()},
            }
        )

    @dg.asset(
        key=keys.TEMPLATES,
        deps=[district_grid],
        group_name="directory",
        kinds={"excel"},
        owners=centre_owners(),
        automation_condition=follows_deliveries(),  # the drop-downs follow the district's grids
        description=(
            "台账模板：每类部门台账一份 xlsx 模板，写入 published/templates/<部门>/<名称>_v<版本>.xlsx；"
            "必填列标红、代码列下拉、证件和电话列为文本格式、表头受保护，文件内带模板标识和版本。"
        ),
    )
    def ledger_templates(redwall: RedwallHome) -> dg.MaterializeResult:
        published = publish_templates(redwall.home())
        return dg.MaterializeResult(
            metadata={
                "templates": len(published),
                **{f"version/{key}": t["version"] for key, t in published.items()},
                "paths": dg.MetadataValue.json({key: t["path"] for key, t in published.items()}),
                "without_dropdown": dg.MetadataValue.json(
                    {key: t["without_dropdown"] for key, t in published.items() if t["without_dropdown"]}
                ),
            }
        )

    return [resource_directory, ledger_templates]
