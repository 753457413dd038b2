"""The data home: one folder (``REDWALL_HOME``) holds everything the pipeline reads and writes.

Layout::

    inbox/<source>/            files dropped by each feed (ledgers: inbox/ledgers/<department>/)
    archive/<source>/          files taken in, kept for ever
    taking/                    source locks and the copies a running load reads
    rejected/<source>/         files that could not be read, with their receipt
    lake/<layer>/<table>/      Delta tables (bronze, silver, mart, ops)
    warehouse/redwall.duckdb   the shared DuckDB warehouse dashboards read
    outbox/                    rectification lists and error workbooks going back to people
    published/                 catalogue and ledger templates for clerks
    truth/                     the generator's ground truth (never inside the inbox)
    dagster/                   DAGSTER_HOME

The lake root may be an object-store URI (``REDWALL_LAKE_URI=s3://bucket/lake``); every Delta path
is built by :meth:`Home.table_uri`, never by hand.

Files are private by default: :meth:`Home.ensure` (which every entry point calls: the CLI, the
Dagster resource, the benchmarks) sets the process's umask to 0o077, so whatever it creates
afterwards — Delta parquet files and logs, archived files and receipts, error workbooks, Dagster's
storage, and the Dagster processes ``redwall ui`` starts — is owner-only whatever umask it was
started with. The folders holding personal data are made 0700 on every call (also when they
existed), and a delivered file is made 0600 as it is filed away (a move keeps its sender's mode).
Only the shared warehouse (see :mod:`redwall.warehouse`) and ``published/`` (templates, catalogue,
dashboard: no personal data) are for other local users: the home itself is 0711 when ensure creates it, so they reach the paths they are told, and list none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = ".redwall"
PRIVATE_UMASK, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, HOME_DIR_MODE = 0o077, 0o700, 0o600, 0o711
# The folders that hold personal data (the lake, when local, too); published/ and warehouse/ are
# for others to read, the inbox belongs to the delivering systems.
PRIVATE_FOLDERS = ("archive", "rejected", "outbox", "truth", "dagster", "taking")

REDWALL_WROTE = "# Written by redwall"
DAGSTER_YAML = f"""\
{REDWALL_WROTE} (and rewritten by it when its defaults change; delete this line to keep your
# own edits): no telemetry, no first-visit modal, and runs go through a queue that lets at most
# three run at once, one load per source at a time (each ingestion run is tagged with its source,
# and its step runs in the source's pool) and one rebuild after deliveries at a time. Run
# monitoring frees the pool slots of runs that ended without freeing them; runs whose process was
# killed are found and failed by `redwall build` and the recover_dead_runs sensor
# (pipelines/recovery.py). A run that failed for want of its process (killed, or never launched)
# is run again, twice at most: the files a sensor handed it would otherwise wait in the inbox for
# good. A run that failed on its data (a failing check, a step error) is not: the answer stands.
telemetry:
  enabled: false
nux:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator.queued_run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 2
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 3
    tag_concurrency_limits:
      - key: redwall/source
        value:
          applyLimitPerUniqueValue: true
        limit: 1
      - key: redwall/trigger
        value: delivery
        limit: 1
run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 30
run_retries:
  enabled: true
  max_retries: 2
  retry_on_asset_or_op_failure: false
"""
# Beyond one desk the instance (runs, event logs, schedules, the run queue's concurrency slots) lives
# in PostgreSQL: set REDWALL_INSTANCE_DB to its URL and the instance file gains this block, which
# names the variable, not the URL, so no password is ever written to the home.
INSTANCE_DB_ENV = "REDWALL_INSTANCE_DB"
POSTGRES_STORAGE = f"""\
storage:
  postgres:
    postgres_url:
      env: {INSTANCE_DB_ENV}
"""


# dagster-postgres talks to PostgreSQL through psycopg2, but SQLAlchemy 2.1 takes a bare
# postgresql:// URL for psycopg 3 and the instance then fails on its first query: the URL must say.
INSTANCE_DB_SCHEME = "postgresql+psycopg2://"


def dagster_yaml() -> str:
    """The instance file redwall writes: :data:`DAGSTER_YAML`, on PostgreSQL when
    ``REDWALL_INSTANCE_DB`` is set (SQLite files under ``dagster/`` otherwise)."""
    url = os.environ.get(INSTANCE_DB_ENV)
    if url and not url.startswith(INSTANCE_DB_SCHEME):
        raise ValueError(
            f"{INSTANCE_DB_ENV} must start with {INSTANCE_DB_SCHEME} (e.g. "
            f"{INSTANCE_DB_SCHEME}dagster:<password>@db.example:5432/dagster): dagster-postgres uses psycopg2"
        )
    return DAGSTER_YAML + (POSTGRES_STORAGE if url else "")


@dataclass(frozen=True)
class Home:
    root: Path
    lake_uri: str

    @classmethod
    def from_env(cls) -> Home:
        root = Path(os.environ.get("REDWALL_HOME") or Path.cwd() / DEFAULT_HOME).resolve()
        lake = os.environ.get("REDWALL_LAKE_URI") or str(root / "lake")
        return cls(root=root, lake_uri=lake.rstrip("/"))

    @classmethod
    def at(cls, root: str | Path) -> Home:
        root = Path(root).resolve()
        return cls(root=root, lake_uri=str(root / "lake"))

    # -- folders ---------------------------------------------------------------------------
    def inbox(self, source: str, department: str | None = None) -> Path:
        path = self.root / "inbox" / source
        return path / department if department else path

    @property
    def taking(self) -> Path:
        """The source locks, and copies of the files a run is reading (never in the inbox, where
        clerks would see them and the next run would take them for deliveries)."""
        return self.root / "taking"

    def archive(self, source: str) -> Path:
        return self.root / "archive" / source

    def rejected(self, source: str) -> Path:
        return self.root / "rejected" / source

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def published(self) -> Path:
        return self.root / "published"

    @property
    def truth(self) -> Path:
        return self.root / "truth"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse" / "redwall.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    def table_uri(self, layer: str, table: str) -> str:
        """Where the Delta table ``layer.table`` lives (a local path or an object-store URI)."""
        return f"{self.lake_uri}/{layer}/{table}"

    @property
    def is_local(self) -> bool:
        return "://" not in self.lake_uri

    def storage_options(self) -> dict[str, str]:
        """Object-store credentials for deltalake, taken from the environment (never from code)."""
        prefix = "REDWALL_STORAGE_"
        return {k[len(prefix) :].lower(): v for k, v in os.environ.items() if k.startswith(prefix)}

    @property
    def demo_record(self) -> Path:
        """What ``redwall demo`` generated into this home (see :func:`redwall.privacy.mark_demo`)."""
        return self.root / "demo.json"

    def ensure(self) -> Home:
        """Create the folders and a quiet Dagster instance, owner-only; safe to call again."""
        os.umask(PRIVATE_UMASK)
        if not self.root.exists():
            self.root.mkdir(parents=True)
            self.root.chmod(HOME_DIR_MODE)
        for sub in ("inbox", "archive", "rejected", "outbox", "published", "warehouse", "dagster"):
            (self.root / sub).mkdir(exist_ok=True)
        private = [self.root / sub for sub in PRIVATE_FOLDERS] + ([Path(self.lake_uri)] if self.is_local else [])
        for folder in private:
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(PRIVATE_DIR_MODE)
        instance_file = self.dagster_home / "dagster.yaml"
        # An instance file redwall wrote earlier is brought up to date; one the operator wrote is theirs.
        written = instance_file.read_text(encoding="utf-8") if instance_file.exists() else None
        wanted = dagster_yaml()
        if written is None or (written.startswith(REDWALL_WROTE) and written != wanted):
            instance_file.write_text(wanted, encoding="utf-8")
        return self

    def export_dagster_home(self) -> None:
        """Point Dagster at this home's instance unless the operator chose one."""
        self.ensure()
        os.environ.setdefault("DAGSTER_HOME", str(self.dagster_home))
