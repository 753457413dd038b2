"""Streets as Dagster partitions: the upward leg of 市区街居, one partition per street of the grid
register (``street``, a dynamic partitioning the marts keep current). An analyst rebuilds or
backfills one street's package; a district deployment runs its streets side by side.

Person resolution and the marts stay district-wide (people move between streets); what is per
street is what leaves the centre for the district: :func:`redwall.package.export_package`.
"""

# No ``from __future__ import annotations``: Dagster reads the resource annotations at definition time.
import dagster as dg

from redwall.assets import keys
from redwall.assets.metadata import centre_owners
from redwall.assets.resources import PseudonymKey, RedwallHome
from redwall.package import SOURCE, export_package, package_folder, streets

STREET = "street"  # the partitioning's name
STREETS = dg.DynamicPartitionsDefinition(name=STREET)


def register_streets(instance: dg.DagsterInstance, home) -> list[str]:
    """Add the streets of the home's grid register that are not partitions yet; returns them."""
    known = set(instance.get_dynamic_partitions(STREET))
    new = [street for street in streets(home) if street not in known]
    if new:
        instance.add_dynamic_partitions(STREET, new)
    return new


def street_assets() -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=keys.STREET_PACKAGE,
        partitions_def=STREETS,
        deps=[keys.WAREHOUSE],  # what a street shares is what its shared warehouse publishes
        group_name="share_upward",
        kinds={"parquet"},
        owners=centre_owners(),
        description=(
            "街道共享数据包（市区街居的向上一级）：本街道可无条件共享的主题库（网格概况、城市管理事件，"
            "只含一般信息列，按共享库同样脱敏）和按来源系统统计的整改问题数，以 Parquet 加数据字典"
            f"（.dict.json）的交换格式写入 outbox/district/<街道编码>/，区级平台放入其 inbox/{SOURCE}/ 即可接收。"
            "每个街道一个分区，可单独重建或补做。"
        ),
    )
    def street_package(
        context: dg.AssetExecutionContext, redwall: RedwallHome, pseudonym_key: PseudonymKey
    ) -> dg.MaterializeResult:
        home = redwall.home()
        street = context.partition_key
        rows = export_package(home, street, secret=pseudonym_key.secret)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(package_folder(home, street))),
                **{f"rows/{table}": n for table, n in rows.items()},
            }
        )

    return [street_package]
