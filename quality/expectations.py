"""Custom Great Expectations for the national identifier rules, each a thin wrapper around the
vectorised polars rule in :mod:`redwall.identifiers` (one rule, one implementation).

Importing this module imports great_expectations (~3 s) and registers the expectations under
their snake-case names; :mod:`redwall.quality.suites` imports it only when it validates.
"""

from __future__ import annotations

import pandas as pd
import polars as pl
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation, ColumnPairMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider
from great_expectations.expectations.metrics.map_metric_provider import ColumnPairMapMetricProvider

# from the modules that define them: GE's packages export a module and a function under each name
from great_expectations.expectations.metrics.map_metric_provider.column_condition_partial import (
    column_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.column_pair_condition_partial import (
    column_pair_condition_partial,
)

from redwall.identifiers import (
    citizen_id_valid_expr,
    id_birth_date_expr,
    id_sex_code_expr,
    is_phone_expr,
    upgrade_legacy_id_expr,
    uscc_check_expr,
)

# GB/T 2261.1 (schemas/reference/sex.csv): the codes an ID can agree with; 0 and 9 (unknown,
# unspecified) agree with any ID
ID_SEX_CODES = ("1", "2")


def _apply(rule, *columns: pd.Series) -> pd.Series:
    """Evaluate a polars rule over pandas columns in one vectorised pass (null counts as failing)."""
    frame = pl.DataFrame({str(i): pl.from_pandas(c.astype("string")) for i, c in enumerate(columns)})
    ok = frame.select(rule(*(pl.col(str(i)) for i in range(len(columns))))).to_series().fill_null(False)
    return pd.Series(ok.to_numpy(), index=columns[0].index)


def _citizen_id(col: pl.Expr) -> pl.Expr:
    return citizen_id_valid_expr(col)


class CitizenIdValid(ColumnMapMetricProvider):
    condition_metric_name = "column_values.redwall_citizen_id"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return _apply(_citizen_id, column)


class ExpectColumnValuesToBeValidCitizenIds(ColumnMapExpectation):
    """GB 11643 (:func:`redwall.identifiers.citizen_id_valid_expr`): 18 ASCII characters, an
    assigned address code, a real birth date not in the future, a sequence other than 000 and the
    right check character."""

    map_metric = "column_values.redwall_citizen_id"


class CitizenIdBirthDate(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.redwall_id_birth_date"

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A, column_B, **kwargs):
        return _apply(
            lambda i, b: id_birth_date_expr(i) == b.str.slice(0, 10).str.to_date(strict=False), column_A, column_B
        )


class ExpectCitizenIdToAgreeWithBirthDate(ColumnPairMapExpectation):
    """The birth date a citizen ID encodes (column_A) is the recorded birth date (column_B)."""

    map_metric = "column_pair_values.redwall_id_birth_date"
    ignore_row_if: str = "either_value_is_missing"  # an unrecorded birth date disagrees with nothing
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")


def _id_agrees_with_sex(ident: pl.Expr, sex: pl.Expr) -> pl.Expr:
    """True unless a valid citizen ID (18 digits, or a 15-digit legacy one) encodes the other sex
    than a recorded 男/女. An invalid ID is the checksum rule's finding, not a sex mismatch."""
    judged = _citizen_id(upgrade_legacy_id_expr(ident)) & sex.is_in(ID_SEX_CODES)
    return pl.when(judged).then(id_sex_code_expr(ident) == sex).otherwise(True)


class CitizenIdSex(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.redwall_id_sex"

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A, column_B, **kwargs):
        return _apply(_id_agrees_with_sex, column_A, column_B)


class ExpectCitizenIdToAgreeWithSex(ColumnPairMapExpectation):
    """The sex a citizen ID encodes (column_A; odd sequence digit 男, even 女) is the recorded sex code
    (column_B, GB/T 2261.1); unknown or unspecified sex (0, 9) disagrees with nothing."""

    map_metric = "column_pair_values.redwall_id_sex"
    ignore_row_if: str = "either_value_is_missing"  # an unrecorded sex disagrees with nothing
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")


class UsccValid(ColumnMapMetricProvider):
    condition_metric_name = "column_values.redwall_uscc"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return _apply(lambda c: uscc_check_expr(c.str.to_uppercase()), column)


class ExpectColumnValuesToBeValidUscc(ColumnMapExpectation):
    """GB 32100: the unified social credit code's alphabet and check character."""

    map_metric = "column_values.redwall_uscc"


class PhoneValid(ColumnMapMetricProvider):
    condition_metric_name = "column_values.redwall_phone"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return _apply(is_phone_expr, column)


class ExpectColumnValuesToBePhoneNumbers(ColumnMapExpectation):
    """A normalised mobile number (1[3-9] and 9 digits) or a fixed-line number."""

    map_metric = "column_values.redwall_phone"
