"""The inbox: which dropped files are deliveries, and when a delivery is complete enough to take.

A source drops files into ``inbox/<source>/`` (ledgers: ``inbox/ledgers/<department>/``). Beside a
delivery may lie files that are not deliveries themselves: a ``<name>.ready`` marker saying the copy
is complete, and for the city exchange a ``<stem>.dict.json`` data dictionary. Office lock files
(``~$…``), hidden files and copies in progress (``.tmp``, ``.part``) are not deliveries either.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from redwall.home import Home

READY_SUFFIX = ".ready"
DICT_SUFFIX = ".dict.json"
IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".crdownload")
LEDGERS = "ledgers"
LOCAL_TZ = dt.timezone(dt.timedelta(hours=8))
_DAY_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d{2})(\d{2})(\d{2})(?:\d{2})?(?!\d)")  # YYYYMMDD[HH]
_MONTH_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d{2})(\d{2})(?!\d)")  # YYYYMM


@dataclass(frozen=True)
class InboxFile:
    source: str
    path: Path
    size: int
    mtime_ns: int
    department: str | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def relative(self) -> str:
        """``<source>/[<department>/]<name>``: the file's identity in lineage and sensor cursors."""
        return "/".join(filter(None, (self.source, self.department, self.name)))

    @property
    def mtime(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.mtime_ns / 1e9, tz=dt.UTC)

    @cached_property
    def sha256(self) -> str:
        """Content hash, computed on first use so that a sensor can judge readiness first."""
        digest = hashlib.sha256()
        with self.path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()

    @property
    def observation(self) -> tuple[int, int]:
        """(size, mtime_ns): what a sensor compares between two ticks."""
        return self.size, self.mtime_ns

    @property
    def marker(self) -> Path:
        return self.path.with_name(self.name + READY_SUFFIX)

    @property
    def as_of(self) -> dt.date:
        """The date the data describes: the YYYYMMDD[HH] in the file name (实有人口_20240501.csv,
        grid_app_2024050108.jsonl), the last day of a YYYYMM (mz_dibao_202405.parquet, a month's
        state), else the local date the file was written (ledgers have any name)."""
        for y, m, d in _DAY_IN_NAME.findall(self.name):
            try:
                return dt.date(int(y), int(m), int(d))
            except ValueError:
                continue
        for y, m in _MONTH_IN_NAME.findall(self.name):
            if 1 <= int(m) <= 12:
                following = dt.date(int(y) + int(m) // 12, int(m) % 12 + 1, 1)
                return following - dt.timedelta(days=1)
        return self.mtime.astimezone(LOCAL_TZ).date()


def _is_delivery(path: Path) -> bool:
    name = path.name
    return (
        path.is_file()
        and not name.startswith((".", "~$"))
        and not name.endswith((READY_SUFFIX, DICT_SUFFIX, *IN_PROGRESS_SUFFIXES))
    )


def inbox_file(home: Home, source: str, path: Path) -> InboxFile:
    path = Path(path)
    if not path.is_absolute():
        path = home.inbox(source) / path
    rel = path.parent.relative_to(home.inbox(source))
    department = rel.parts[0] if source == LEDGERS and rel.parts else None
    stat = path.stat()
    return InboxFile(source, path, stat.st_size, stat.st_mtime_ns, department)


def inbox_files(home: Home, source: str) -> list[InboxFile]:
    """Every delivery waiting in the source's inbox (ledgers: in every department folder), oldest
    data first, so that snapshots are applied in the order they describe."""
    root = home.inbox(source)
    if not root.is_dir():
        return []
    paths = root.glob("*/*") if source == LEDGERS else root.glob("*")
    if source == LEDGERS:  # a ledger dropped without a department folder is still a delivery
        paths = [*paths, *root.glob("*")]
    return in_data_order(inbox_file(home, source, p) for p in paths if _is_delivery(p))


def in_data_order(files: Iterable[InboxFile]) -> list[InboxFile]:
    """Oldest data first (then first written), each file once."""
    return sorted(set(files), key=lambda f: (f.as_of, f.mtime_ns, f.relative))


def is_ready(file: InboxFile, previous: Sequence[int] | None) -> bool:
    """Whether a sensor may take the file now: a ``<name>.ready`` marker lies beside it, or its
    :attr:`~InboxFile.observation` is the one seen on the previous tick (a copy in progress still
    grows or is touched). ``previous`` is that tick's observation, as kept in the sensor's cursor."""
    return file.marker.exists() or (previous is not None and tuple(previous) == file.observation)
