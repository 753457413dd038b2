"""The inbox: which dropped files are deliveries, and when a delivery is complete enough to take.

A source drops files into ``inbox/<source>/`` (ledgers: ``inbox/ledgers/<department>/``). Beside a
delivery may lie files that are not deliveries themselves: a ``<name>.ready`` marker saying the copy
is complete, and for the city exchange a ``<stem>.dict.json`` data dictionary. Office lock files
(``~$…``, ``.~lock.…#``), the Finder's ``.DS_Store`` and copies in progress (``.tmp``, ``.part``)
are not deliveries either. Every other entry is answered, even one that cannot be read: a name
starting with a dot, a symbolic link (never followed: it is refused and kept as a link).

A delivery is taken once complete (:func:`is_ready`: a ready marker, or size and time unchanged
over an interval), under the source's lock (:func:`source_lock`, so two loads of one source never
run at once), and read from a copy taken then (:func:`take`): a file still changing is left for a
later run, and what is archived is exactly what was read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from redwall.home import Home
from redwall.ingest.limits import limits
from redwall.locks import exclusive
from redwall.schemas import load_contracts

READY_SUFFIX = ".ready"
DICT_SUFFIX = ".dict.json"
IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".crdownload")
NOT_DELIVERIES = ("~$", ".~lock.", ".DS_Store")  # office lock files, Finder metadata
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
    copy: Path | None = None  # the copy being read (see take)
    link: bool = False  # a symbolic link: refused, never followed
    kept: Path | None = None  # where its bytes are once filed away: a held delivery, read again

    @property
    def content(self) -> Path:
        """The file to read: the copy taken of it, else where it is kept, else where it was dropped."""
        return self.copy or self.kept or self.path

    @property
    def name(self) -> str:
        """The file name as text; bytes that are not UTF-8 (a GBK name on a UTF-8 disk) are
        kept as surrogates (see :attr:`name_readable`)."""
        return self.path.name

    @property
    def name_readable(self) -> bool:
        try:
            self.path.name.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True

    @property
    def display_name(self) -> str:
        """The name as it can be written into a receipt and a table: undecodable bytes as ``\\xNN``."""
        return os.fsencode(self.path.name).decode("utf-8", "backslashreplace")

    @property
    def relative(self) -> str:
        """``<source>/[<department>/]<name>``: the file's identity in lineage and sensor cursors."""
        return "/".join(filter(None, (self.source, self.department, self.display_name)))

    @property
    def mtime(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.mtime_ns / 1e9, tz=dt.UTC)

    @cached_property
    def sha256(self) -> str:
        """Content hash, computed on first use so that a sensor can judge readiness first."""
        if self.link:  # never followed: what it points to names it
            return hashlib.sha256(b"symlink:" + os.fsencode(os.readlink(self.path))).hexdigest()
        digest = hashlib.sha256()
        with self.content.open("rb") as f:
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
    if path.is_symlink():
        return True  # answered (refused), whatever it points to
    return (
        path.is_file()
        and not name.startswith(NOT_DELIVERIES)
        and not name.endswith((READY_SUFFIX, DICT_SUFFIX, *IN_PROGRESS_SUFFIXES))
    )


def inbox_file(home: Home, source: str, path: Path) -> InboxFile:
    path = Path(path)
    if not path.is_absolute():
        path = home.inbox(source) / path
    rel = path.parent.relative_to(home.inbox(source))
    department = rel.parts[0] if source in load_contracts().departmental and rel.parts else None
    stat = path.lstat()
    return InboxFile(source, path, stat.st_size, stat.st_mtime_ns, department, link=path.is_symlink())


def inbox_files(home: Home, source: str) -> list[InboxFile]:
    """Every delivery waiting in the source's inbox (ledgers: in every department folder), oldest
    data first, so that snapshots are applied in the order they describe. A department folder that
    is a symbolic link is not entered: it is itself the delivery (refused)."""
    root = home.inbox(source)
    if not root.is_dir():
        return []
    paths = list(root.iterdir())
    if source in load_contracts().departmental:  # dropped without a department folder: still a delivery
        paths += [p for d in paths if d.is_dir() and not d.is_symlink() for p in d.iterdir()]
    found = []
    for p in paths:
        try:
            if _is_delivery(p):
                found.append(inbox_file(home, source, p))
        except FileNotFoundError:  # taken by another run meanwhile
            continue
    return in_data_order(found)


def in_data_order(files: Iterable[InboxFile]) -> list[InboxFile]:
    """Oldest data first (then first written), each file once."""
    return sorted(set(files), key=lambda f: (f.as_of, f.mtime_ns, f.relative))


def is_ready(file: InboxFile, previous: Sequence[int] | None) -> bool:
    """The one rule for taking a file, for the sensors and ``redwall process`` alike: a
    ``<name>.ready`` marker lies beside it, or it has not changed over an interval — its
    :attr:`~InboxFile.observation` is the one seen an interval ago (``previous``: a sensor's last
    tick, kept in its cursor), or its modification time is older than ``settle_seconds``
    (a copy in progress still grows or is touched)."""
    if file.marker.exists() or (previous is not None and tuple(previous) == file.observation):
        return True
    return time.time() - file.mtime_ns / 1e9 >= limits().settle_seconds


def ready_files(files: list[InboxFile], previous: dict[str, list[int]]) -> tuple[list[InboxFile], dict[str, list[int]]]:
    """The files complete now (:func:`is_ready`), and the observations to compare with next time."""
    ready = [f for f in files if is_ready(f, previous.get(str(f.path)))]
    return ready, {str(f.path): list(f.observation) for f in files}


def settled(home: Home, source: str, files: list[InboxFile]) -> list[InboxFile]:
    """The files that are complete, waiting once ``settle_seconds`` for those just written: each
    must then be unchanged. A file still changing is left for a later run."""
    ready, seen = ready_files(files, {})
    if len(ready) == len(files):
        return ready
    time.sleep(limits().settle_seconds)
    again = []
    for file in files:
        with contextlib.suppress(FileNotFoundError):
            again.append(inbox_file(home, source, file.path))
    return ready_files(again, seen)[0]


def source_lock(home: Home, source: str) -> contextlib.AbstractContextManager[None]:
    """Hold the source's lock (``taking/<source>.lock``) while loading it: a second load of the
    source, in any process, waits (:func:`redwall.locks.exclusive`; a load compacts its tables
    under the lock it holds)."""
    return exclusive(home.taking / f"{source}.lock")


def clear_copies(home: Home, source: str) -> int:
    """Remove the copies a killed run of the source left (under the source's lock): how many."""
    folder = home.taking / source
    if not folder.is_dir():
        return 0
    left = list(folder.iterdir())
    for p in left:
        shutil.rmtree(p, ignore_errors=True)
    return len(left)


def take(home: Home, file: InboxFile) -> InboxFile | None:
    """A copy of the delivery to read, taken now (``taking/<source>/``), or None when the
    file changed or vanished meanwhile (it is taken by a later run). Reading the copy, a writer
    still appending cannot change what is read, hashed and archived."""
    if file.link:
        return file
    folder = home.taking / file.source / uuid.uuid4().hex
    folder.mkdir(parents=True)
    copy = folder / "content"
    try:
        shutil.copyfile(file.path, copy, follow_symlinks=False)
        after = file.path.lstat()
    except FileNotFoundError:
        shutil.rmtree(folder, ignore_errors=True)
        return None
    if (after.st_size, after.st_mtime_ns) != file.observation or copy.stat().st_size != file.size:
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return replace(file, copy=copy)


def unchanged(file: InboxFile) -> bool:
    """Whether the dropped file is still the one that was taken (same size and time)."""
    try:
        stat = file.path.lstat()
    except FileNotFoundError:
        return False
    return (stat.st_size, stat.st_mtime_ns) == file.observation
