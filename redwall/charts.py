"""What the analysts' notebooks share: a read-only connection to the shared warehouse and charts
whose Chinese labels render.

Matplotlib's own fonts have no Chinese glyphs: a label would come out as boxes. :func:`use_cjk_font`
finds a CJK font on the system (Debian: ``fonts-noto-cjk``), makes matplotlib use it, and turns a
missing glyph into an error, so a chart never silently shows boxes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import duckdb

from redwall.home import Home

# Families tried in order; Noto Sans CJK SC is Debian's fonts-noto-cjk, the others common elsewhere.
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
)
CJK_FILES = ("NotoSansCJK", "NotoSansSC", "SourceHanSans", "wqy-zenhei", "simhei", "msyh", "PingFang")


class MissingFontError(RuntimeError):
    """No font with Chinese glyphs: charts would show boxes instead of labels."""


def use_cjk_font() -> str:
    """Make matplotlib draw Chinese with a CJK font; returns the family. Raises
    :class:`MissingFontError` (with the package to install) when the system has none."""
    import matplotlib
    from matplotlib import font_manager

    # A font installed after matplotlib built its cache is not in it: register the files directly.
    for path in font_manager.findSystemFonts():
        if any(name.lower() in Path(path).name.lower() for name in CJK_FILES):
            font_manager.fontManager.addfont(path)
    known = {f.name for f in font_manager.fontManager.ttflist}
    family = next((f for f in CJK_FAMILIES if f in known), None)
    if family is None:
        raise MissingFontError(
            "没有找到中文字体，图表中的中文会显示成方框。请安装 Noto CJK 字体："
            "Debian/Ubuntu `apt-get install fonts-noto-cjk`，然后重新运行。"
        )
    matplotlib.rcParams["font.family"] = [family]
    matplotlib.rcParams["axes.unicode_minus"] = False  # the CJK font's minus sign, not U+2212
    # a glyph the font lacks is drawn as a box: make it fail the cell instead
    warnings.filterwarnings("error", message=r"Glyph \d+ .* missing from font")
    return family


def warehouse(home: Home | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the shared warehouse of ``home`` (default ``$REDWALL_HOME``): it
    never blocks a publish."""
    home = home or Home.from_env()
    if not home.warehouse.exists():
        from redwall.report import redwall_command

        raise FileNotFoundError(
            f"{home.warehouse} 不存在：先运行 `{redwall_command(home, 'build')}`，"
            "或把 REDWALL_HOME 设为已发布数据仓库的数据目录"
        )
    return duckdb.connect(str(home.warehouse), read_only=True)
