"""Expectation suites derived from the data contracts, one per silver table, kept as versioned JSON
in ``quality/suites/`` (rendered by :func:`render`, written by ``redwall regenerate suites``,
committed, and checked against the contracts so they never drift).

What a contract says becomes an expectation:

- ``required`` → not null; ``codes`` (a static list) → in the code list of ``schemas.code_lists()``;
- ``keys`` → unique among the current rows;
- ``format: person_id`` → a valid citizen ID (custom; on rows whose document is a citizen ID),
  and, where the table records the person's birth date or sex (``codes: sex``, GB/T 2261.1), the
  birth date and sex the ID encodes agree with them (custom; an unknown sex agrees with any ID);
- ``format: uscc`` / ``phone`` → GB 32100 check / phone rule (custom);
- ``format: grid_code`` / ``codes: grid`` → a grid the district platform registers; ``community_code``
  and ``codes: community`` → a community it registers. These sets change with the district feed,
  so the suite names them as parameters (``$PARAMETER``) filled in at validation time;
- any other format with a pattern (``object_id``) → the pattern of ``format_rules()``.

Validation runs Great Expectations on the whole current frame at once (pandas, from polars) and
returns the failing rows by position: never row by row.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl

from redwall.ingest.normalise import CITIZEN_DOCUMENTS, format_rules
from redwall.ingest.normalise import RULES as INGEST_RULES
from redwall.schemas import Column, Table, code_lists, load_contracts

SUITES = Path(__file__).parent / "suites"
SUITE_FORMAT = 1  # bump when the JSON layout (not the contracts) changes
PARAMETERS = ("grid_codes", "community_codes", "community_names")

# rule → message for a clerk, after "第N行"; rules shared with ingestion keep its wording
RULES_ZH = {
    "required_missing": INGEST_RULES["required_missing"][1],
    "code_unknown": "「{label}」的取值不在代码表中，请按代码表填写",
    "key_duplicate": "与其他现行记录的业务主键（{label}）重复，请核对是否重复登记",
    "id_checksum": INGEST_RULES["id_checksum"][1],
    "id_birth_date_mismatch": "「{label}」所含出生日期与登记的出生日期不一致，请核对证件后更正",
    "id_sex_mismatch": "「{label}」与公民身份号码所示的性别不一致，请对照本人证件核对性别和证件号码后更正",
    "uscc_invalid": INGEST_RULES["uscc_invalid"][1],
    "phone_invalid": INGEST_RULES["phone_invalid"][1],
    "format_invalid": "「{label}」不符合编码规则，请核对后重新填写",
    "grid_unknown": "「{label}」不是区级平台登记的单元网格，请核对网格编码",
    "community_unknown": "「{label}」不是区级平台登记的社区，请核对社区名称或编码",
}


def _expectation(kind: str, rule: str, severity: str, on: str | None, **kwargs) -> dict:
    """``on``: the column a failure is reported against (none for a key spanning several)."""
    return {"type": kind, "kwargs": kwargs, "meta": {"rule": rule, "column": on, "severity": severity}}


def _severity(table: Table, column: Column) -> str:
    """As at ingestion: a required or key column makes a row unusable, any other only flags it."""
    return "error" if column.required or column.name in table.keys else "warning"


def _citizen_condition(table: Table) -> dict:
    """Restrict ID checks to rows whose document is a citizen ID (passports look otherwise)."""
    for column in table.all_columns:
        if column.codes in CITIZEN_DOCUMENTS:
            codes = list(CITIZEN_DOCUMENTS[column.codes])
            # GE 1.x Condition, as JSON: ``Column(name).is_in(codes).dict()`` (no string condition_parser)
            return {
                "row_condition": {
                    "type": "comparison",
                    "column": {"name": column.name},
                    "operator": "IN",
                    "parameter": codes,
                }
            }
    return {}


def _sex_column(table: Table) -> Column | None:
    """The person's sex: the ``sex`` column coded by GB/T 2261.1, which the citizen ID encodes too."""
    return next((c for c in table.all_columns if c.name == "sex" and c.codes == "sex"), None)


def suite_config(table: Table) -> dict:
    """The suite of one silver table, as plain JSON (no great_expectations needed)."""
    out = []
    names = {c.name for c in table.all_columns}
    for c in table.all_columns:
        sev = _severity(table, c)
        if c.required:
            out.append(
                _expectation("expect_column_values_to_not_be_null", "required_missing", sev, c.name, column=c.name)
            )
        if c.codes in code_lists():
            out.append(
                _expectation(
                    "expect_column_values_to_be_in_set",
                    "code_unknown",
                    sev,
                    c.name,
                    column=c.name,
                    value_set=sorted(code_lists()[c.codes]),
                )
            )
        if c.format == "person_id":
            condition = _citizen_condition(table)
            out.append(
                _expectation(
                    "expect_column_values_to_be_valid_citizen_ids",
                    "id_checksum",
                    sev,
                    c.name,
                    column=c.name,
                    **condition,
                )
            )
            if c.name == "id_number" and "birth_date" in names:
                out.append(
                    _expectation(
                        "expect_citizen_id_to_agree_with_birth_date",
                        "id_birth_date_mismatch",
                        sev,
                        c.name,
                        column_A=c.name,
                        column_B="birth_date",
                        ignore_row_if="either_value_is_missing",
                        **condition,
                    )
                )
            sex = _sex_column(table)
            if c.name == "id_number" and sex is not None:  # reported on the sex a clerk may have mistyped
                out.append(
                    _expectation(
                        "expect_citizen_id_to_agree_with_sex",
                        "id_sex_mismatch",
                        _severity(table, sex),
                        sex.name,
                        column_A=c.name,
                        column_B=sex.name,
                        ignore_row_if="either_value_is_missing",
                        **condition,
                    )
                )
        elif c.format == "uscc":
            out.append(
                _expectation("expect_column_values_to_be_valid_uscc", "uscc_invalid", sev, c.name, column=c.name)
            )
        elif c.format == "phone":
            out.append(
                _expectation("expect_column_values_to_be_phone_numbers", "phone_invalid", sev, c.name, column=c.name)
            )
        elif c.format == "grid_code" or c.codes == "grid":
            out.append(
                _expectation(
                    "expect_column_values_to_be_in_set",
                    "grid_unknown",
                    sev,
                    c.name,
                    column=c.name,
                    value_set={"$PARAMETER": "grid_codes"},
                )
            )
        elif c.format == "community_code":
            out.append(
                _expectation(
                    "expect_column_values_to_be_in_set",
                    "community_unknown",
                    sev,
                    c.name,
                    column=c.name,
                    value_set={"$PARAMETER": "community_codes"},
                )
            )
        elif c.codes == "community":
            out.append(
                _expectation(
                    "expect_column_values_to_be_in_set",
                    "community_unknown",
                    sev,
                    c.name,
                    column=c.name,
                    value_set={"$PARAMETER": "community_names"},
                )
            )
        elif c.format in format_rules():
            out.append(
                _expectation(
                    "expect_column_values_to_match_regex",
                    "format_invalid",
                    sev,
                    c.name,
                    column=c.name,
                    regex=format_rules()[c.format][0],
                )
            )
    keys = list(table.keys)
    if len(keys) == 1:
        out.append(_expectation("expect_column_values_to_be_unique", "key_duplicate", "error", None, column=keys[0]))
    else:
        out.append(
            _expectation("expect_compound_columns_to_be_unique", "key_duplicate", "error", None, column_list=keys)
        )
    body = json.dumps(out, ensure_ascii=False, sort_keys=True)
    return {
        "name": f"silver.{table.bronze_name}",
        "meta": {
            "contract": table.key,
            "suite_format": SUITE_FORMAT,
            "fingerprint": hashlib.sha256(body.encode()).hexdigest()[:12],
            "parameters": list(PARAMETERS),
        },
        "expectations": out,
    }


def suite_tables() -> list[Table]:
    contracts = load_contracts()
    return contracts.feeds + contracts.ledgers


def suite_path(table: Table) -> Path:
    return SUITES / f"{table.bronze_name}.json"


def render(table: Table) -> str:
    return json.dumps(suite_config(table), ensure_ascii=False, indent=1) + "\n"


def load_suite(table: Table) -> dict:
    return json.loads(suite_path(table).read_text(encoding="utf-8"))


FAILURE_SCHEMA = {"index": pl.Int64, "rule": pl.String, "column": pl.String, "severity": pl.String}


def validate(
    table: Table, frame: pl.DataFrame, parameters: dict[str, list[str]], keep: list | None = None
) -> pl.DataFrame:
    """Run the table's committed suite on ``frame`` (its current rows) in one Great Expectations batch;
    returns one row per failing row and expectation: its position in ``frame``, rule, column, severity.
    An expectation that errors (not fails) raises: a broken suite must not pass silently.
    With ``keep``, appends ``(suite, result summarised to counts)`` for the data docs
    (:mod:`redwall.quality.docs`): the same validation, its value lists dropped."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    import redwall.quality.expectations  # noqa: F401  (registers the custom expectations)

    config = load_suite(table)
    suite = gx.ExpectationSuite(
        name=config["name"],
        expectations=[
            ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e["meta"]).to_domain_obj()
            for e in config["expectations"]
        ],
    )
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("silver")
        .add_dataframe_asset(table.bronze_name)
        .add_batch_definition_whole_dataframe("current")
        .get_batch(batch_parameters={"dataframe": frame.to_pandas()})
    )
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"}, expectation_parameters=parameters)
    failures = []
    for r in result.results:
        expectation = r.expectation_config
        assert expectation is not None  # a suite's validation reports each result with the expectation run
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"{config['name']}: {expectation.type} errored: {r.exception_info.get('exception_message')}"
            )
        meta = expectation.meta
        for index in r.result.get("unexpected_index_list") or []:
            failures.append((int(index), meta["rule"], meta["column"], meta["severity"]))  # numpy → int
    if keep is not None:
        from redwall.quality.docs import summarise

        keep.append((suite, summarise(result)))
    return pl.DataFrame(failures, schema=FAILURE_SCHEMA, orient="row")
