"""Streets as Dagster partitions, one per street of the grid register (``street``, a dynamic
partitioning the marts keep current): a street's rectification lists (``outbox/rectification``), its
part of the shared warehouse (``warehouse/street``) and its package for the district, the upward
leg of 市区街居 (``outbox/street_package``). An analyst rebuilds or backfills one street (job
``rebuild_street``); a district deployment runs its streets side by side.

Person resolution, the marts and the quality loop stay district-wide (people move between
streets; a cross-source rule compares streets' records). None of these partitions is automated:
the automated quality loop already writes every street's lists in its run (a partition run
rewrites one street's from the same issues, under the same per-street lock), and a run per street
on every delivery would multiply the process start-ups of each delivery by the streets (15 in a
district, 340 in a city) for files nobody reads between two deliveries; extracts and packages are
made when a street asks for them (``redwall build`` writes the packages).
"""

# No ``from __future__ import annotations``: Dagster reads the resource annotations at definition time.
import dagster as dg

from redwall import lake
from redwall.assets import keys
from redwall.assets.metadata import centre_owners
from redwall.assets.resources import PseudonymKey, RedwallHome
from redwall.package import SOURCE, export_package, package_folder, streets
from redwall.quality.loop import ISSUES
from redwall.quality.loop import LAYER as QUALITY
from redwall.quality.outbox import rectification_folder, write_street_lists
from redwall.warehouse import extract_street, street_extract_path

STREET = "street"  # the partitioning's name
STREETS = dg.DynamicPartitionsDefinition(name=STREET)
PER_STREET = "streets"  # the group of a street's own outputs beside its package


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

    @dg.asset(
        key=keys.STREET_RECTIFICATION,
        partitions_def=STREETS,
        deps=[keys.QUALITY_ISSUE],
        group_name=PER_STREET,
        kinds={"excel"},
        owners=centre_owners(),
        description=(
            "街道整改清单：本街道未整改问题按网格（网格_<编码>.xlsx）、报送部门（部门_<编码>.xlsx）和未定位网格的来源系统"
            "（未定位_<来源>.xlsx）分列，写入 outbox/rectification/<街道编码>/。质量闭环每次运行都会更新全部街道的清单；"
            "此处可单独重建一个街道（全部重写），或对全部街道补做。"
        ),
    )
    def street_rectification(context: dg.AssetExecutionContext, redwall: RedwallHome) -> dg.MaterializeResult:
        home = redwall.home()
        street = context.partition_key
        issues = lake.read(home, QUALITY, ISSUES)
        files = write_street_lists(home, issues, street, full=True) if issues.height else {}
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(rectification_folder(home, street))),
                **{f"files/{kind}": n for kind, n in files.items()},
            }
        )

    @dg.asset(
        key=keys.STREET_WAREHOUSE,
        partitions_def=STREETS,
        deps=[keys.WAREHOUSE],
        group_name=PER_STREET,
        kinds={"duckdb"},
        owners=centre_owners(),
        description=(
            "街道数据仓库抽取 warehouse/streets/<街道编码>.duckdb：共享数据仓库中本街道的各主题库和整改问题（按街道编码截取），"
            "脱敏、假名和 k-匿名与共享库完全相同（直接取自共享库，抽取后再次核验 k-匿名度），附参考表、视图和中文注释。"
            "每个街道一个分区，可单独重建或补做。"
        ),
    )
    def street_warehouse(context: dg.AssetExecutionContext, redwall: RedwallHome) -> dg.MaterializeResult:
        home = redwall.home()
        street = context.partition_key
        rows = extract_street(home, street)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(street_extract_path(home, street))),
                "tables": len(rows),
                **{f"rows/{table}": n for table, n in rows.items()},
            }
        )

    return [street_package, street_rectification, street_warehouse]
