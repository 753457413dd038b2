"""Exclusive locks between redwall processes of one home: a file under ``taking/`` held with
``flock``, which the kernel releases when its holder dies however it dies, so a killed run never
leaves one held. Re-entrant within a thread: code holding a lock may call code that takes it."""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Iterator
from pathlib import Path

_held = threading.local()  # the locks this thread holds, and how deeply


@contextlib.contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """Hold ``lock`` (created if need be): any other holder, in this process or another, waits."""
    depth: dict[Path, int] = _held.__dict__.setdefault("depth", {})
    if depth.get(lock):
        depth[lock] += 1
        try:
            yield
        finally:
            depth[lock] -= 1
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        depth[lock] = 1
        try:
            yield
        finally:
            depth.pop(lock)
            fcntl.flock(handle, fcntl.LOCK_UN)
