"""Address standardisation, matching against the registers, and the match rate on ground truth."""

from __future__ import annotations

import polars as pl
import pytest

from redwall.home import Home
from redwall.marts.address import AMBIGUOUS, NO_BUILDING, NO_HOUSE, normalise, resolve_addresses
from redwall.marts.evaluate import measure_addresses

BUILDINGS = pl.DataFrame(
    {
        "building_code": ["B1", "B2", "B3", "B4", "B5", "B6", "B7"],
        "address": [
            "西城区府右街12号院3号楼",
            "西城区钟声胡同5号",
            "西城区六部口街8号院1号楼",
            "西城区未英胡同26号院1号楼",
            "西城区未英胡同26号院1号楼",  # B4, B5: one address, two buildings
            "西城区太仆寺街10号院2号楼",
            "西城区太仆寺街10号院2号楼",
        ],  # B6, B7: the same, in two grids
        "grid_code": ["G1", "G1", "G2", "G3", "G3", "G1", "G2"],
    }
)
HOUSES = pl.DataFrame(
    {
        "building_code": ["B1", "B1", "B1", "B4", "B5"],
        "house_code": ["H1", "H2", "H3", "H4", "H5"],
        "unit": [2, 1, 2, 1, 1],
        "room": ["501", "501", "601", "101", "202"],
    }
)


@pytest.mark.parametrize(
    "written, standard",
    [
        ("府右街十二号院三号楼二单元五零一室", "府右街12号院3号楼2单元501室"),
        ("北京市西城区府右街12号院3栋2门5层501号", "府右街12号院3号楼2单元501"),
        ("西城区 府右街１２号院３#楼２单元５０１", "府右街12号院3号楼2单元501"),
        ("六部口街一百一十号", "六部口街110号"),  # the road's numeral stays
        ("西城区六部口街八号院一号楼北侧约二十米", "六部口街8号院1号楼"),
        ("西城区钟声胡同5号门口", "钟声胡同5号"),
    ],
)
def test_spellings_standardise(written, standard):
    assert pl.select(normalise(pl.lit(written))).item() == standard


def test_addresses_resolve_at_the_level_written_and_ambiguity_is_not_guessed():
    written = {  # address: grid, building, house, issue
        "府右街十二号院三号楼二单元501": ("G1", "B1", "H1", None),
        "西城区府右街12号院3楼601室": ("G1", "B1", "H3", None),  # the only room 601 of the building
        "西城区府右街12号院3号楼501": ("G1", "B1", None, AMBIGUOUS),  # room 501 in units 1 and 2
        "西城区府右街12号院3号楼9单元901": ("G1", "B1", None, NO_HOUSE),
        "西城区钟声胡同五号对面": ("G1", "B2", None, None),
        "西城区六部口街8号院1号楼": ("G2", "B3", None, None),
        "西城区未英胡同26号院1号楼": ("G3", None, None, AMBIGUOUS),  # either building: the grid is known
        "西城区未英胡同26号院1号楼1单元202": ("G3", "B5", "H5", None),  # only one of the two has the house
        "西城区太仆寺街10号院2号楼": (None, None, None, AMBIGUOUS),  # two grids: not guessed either
        "西城区某某大厦": (None, None, None, NO_BUILDING),
    }
    found = resolve_addresses(pl.Series(list(written)), BUILDINGS, HOUSES)
    assert {r[0]: r[1:] for r in found.iter_rows()} == written


@pytest.fixture(scope="module")
def small(tmp_path_factory, street_taken_in) -> Home:
    return street_taken_in(tmp_path_factory.mktemp("small"))  # seed 7, 14 days


def test_match_rate_on_ground_truth(small):
    figures = measure_addresses(small)
    assert figures["all_texts"] > 900
    assert figures["all_right"] >= 0.98 and figures["all_wrong"] == 0
    assert figures["house_right"] >= 0.97 and figures["building_right"] >= 0.99
