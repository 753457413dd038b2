"""Charts for analysts draw Chinese with a real CJK font, and a glyph the font lacks fails loudly
instead of printing a box."""

from __future__ import annotations

import warnings

import pytest

from redwall.charts import MissingFontError, use_cjk_font


def test_chinese_labels_draw_with_a_cjk_font_and_a_missing_glyph_is_an_error():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        try:
            family = use_cjk_font()
        except MissingFontError as missing:
            pytest.fail(f"{missing} (CI installs fonts-noto-cjk in .ci/run)")
        assert "CJK" in family or "SC" in family
        fig, ax = plt.subplots()
        ax.set_title("各社区现住人口（按人员类型）")
        fig.canvas.draw()  # every character of the title has its glyph
        ax.set_title("\U0001f5fa 地图")  # a pictograph no CJK text font carries
        with pytest.raises(UserWarning, match="missing from font"):
            fig.canvas.draw()
        plt.close(fig)
