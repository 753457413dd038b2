"""Great Expectations' own data docs (HTML) for the latest suite validation of each silver table,
under ``published/quality/data_docs/`` (open ``index.html``).

The loop validates each table once, with the failing rows' positions (it needs them for issues);
what reaches the docs is a *summary* of that result: counts and percentages only. Every list of
unexpected values, indexes or rows is dropped before storing, so no ID, phone or name can appear in
the HTML. The site is rebuilt whole each run in a sibling folder and swapped into place, so it shows
exactly the latest validation per table.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from redwall.home import Home

SITE = "redwall"
# what a summarised expectation result keeps: counts and shares, never values
SUMMARY_KEYS = ("element_count", "missing_count", "missing_percent", "unexpected_count", "unexpected_percent",
                "unexpected_percent_total", "unexpected_percent_nonmissing")


def docs_folder(home: Home) -> Path:
    return home.published / "quality" / "data_docs"


def docs_index(home: Home) -> Path:
    return docs_folder(home) / "index.html"


def summarise(result):
    """``result`` (an ExpectationSuiteValidationResult) stripped to counts, in place; returned."""
    for r in result.results:
        r.result = {k: v for k, v in (r.result or {}).items() if k in SUMMARY_KEYS}
        if r.exception_info and r.exception_info.get("exception_traceback"):
            r.exception_info = {**r.exception_info, "exception_traceback": None}
    return result


def build_data_docs(home: Home, validations: list[tuple]) -> Path:
    """Write the data docs site for ``validations`` (``(suite, summarised result)`` per table, as
    :func:`quality.suites.validate` keeps them); returns the path of ``index.html``."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier, ValidationResultIdentifier)

    target = docs_folder(home)
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(SITE, {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(building)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    run = RunIdentifier(run_name="quality-loop")
    for suite, result in validations:
        context.suites.add(suite)
        key = ValidationResultIdentifier(ExpectationSuiteIdentifier(name=suite.name), run,
                                         batch_identifier=suite.name.replace(".", "-"))
        context.validation_results_store.set(key, result)
    context.build_data_docs(site_names=[SITE])  # only ours: not the ephemeral context's temp site
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)
    return docs_index(home)
