"""Ingestion that loses nothing: every delivered file is read as it comes, kept, typed and answered.

One contract-driven path serves every source; the contracts (``schemas/``) say which tables a
source delivers, which headers name a column, what is required, how a table loads::

    inbox ── formats (what the bytes are) ── layout (which table, where the header is)
          ── bronze (every row read, as delivered text, with lineage)
          ── normalise (typed values, row rules, reasons in Chinese)
          ── history (silver: current state plus validity intervals)
          ── receipts (ops tables, the sender's receipt) ── archive / rejected

Modules: :mod:`.inbox` (deliveries, readiness), :mod:`.formats` (readers), :mod:`.layout` (header
mapping), :mod:`.normalise` (typing and rules), :mod:`.history` (silver loads), :mod:`.receipts`
(ops tables, receipt files), :mod:`.holds` (destructive snapshots held for an analyst's decision),
:mod:`.load` (files end to end, loaded in batches, crash-safe ordering; compaction; release and
discard of held deliveries).
Runs of one source must not overlap (a sensor's run queue per source): two runs could both judge
the same silver state.

Accounting, checked for every file: ``rows_read = rows_accepted + rows_rejected``. A row read is a
row that landed in bronze; every rejected row has at least one ``error`` in ``ops/rejection``.
Rows repeating a business key (a retried upload, a ledger line sent twice) are *accepted* and
counted again in ``rows_deduplicated``: they were valid, and silver keeps one of them. Notes under
the data and empty rows are not rows; notes are counted in ``rows_skipped``. A file refused whole
(unreadable, no known header, a required column missing) reads no rows.

Why silver keeps history as ``_valid_from``/``_valid_to`` columns and not Delta time travel: time
travel answers "what did the table look like after commit N", i.e. when *we loaded* something,
and it disappears with VACUUM and log retention. The questions asked here are about the world:
"who lived at this address on 1 May", "was this person registered when the event happened". The
validity of a version comes from the date of the delivery that established it (a snapshot's
date, an export's date), which is neither the load time nor the commit order: a late file or a
reload would make time travel lie. Validity columns are ordinary data, survive compaction,
VACUUM and copies to DuckDB, and can be queried with a plain predicate.
"""

from redwall.ingest.formats import Unreadable
from redwall.ingest.history import Change, silver_schema
from redwall.ingest.inbox import InboxFile, inbox_files, is_ready
from redwall.ingest.load import compact, discard, process_file, process_files, process_source, release
from redwall.ingest.receipts import Receipt

__all__ = [
    "Change",
    "InboxFile",
    "Receipt",
    "Unreadable",
    "compact",
    "discard",
    "inbox_files",
    "is_ready",
    "process_file",
    "process_files",
    "process_source",
    "release",
    "silver_schema",
]
