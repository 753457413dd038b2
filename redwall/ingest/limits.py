"""The limits a delivered file must keep, in one place: each file is checked against them before
it is parsed, so that one oversized or hostile file is refused in bounded memory and harms only
itself. Each limit can be changed per deployment with an environment variable
``REDWALL_LIMIT_<NAME>`` (e.g. ``REDWALL_LIMIT_MAX_FILE_BYTES=2147483648``).

| limit | default | what it stops |
|---|---|---|
| ``max_file_bytes`` | 512 MiB | a file larger than any feed sends (the district's police register is ~250 MB) |
| ``max_line_bytes`` | 256 KiB | one line of a CSV or JSON Lines file longer than any record (a 27 MB one-line file took 6.7 GB to parse) |
| ``max_columns`` | 500 | a table wider than any template or feed |
| ``max_unzipped_bytes`` | 1 GiB | a workbook whose parts unpack to more than this (a zip bomb: 297 KB unpacking to 300 MB) |
| ``max_unzip_ratio`` | 200 | a workbook part that unpacks to more than this many times its packed size |
| ``settle_seconds`` | 2 | how long a file's size and time must stay unchanged before it is taken (a copy in progress keeps changing); a sensor also waits one tick |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

ENV_PREFIX = "REDWALL_LIMIT_"


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 512 * 1024 * 1024
    max_line_bytes: int = 256 * 1024
    max_columns: int = 500
    max_unzipped_bytes: int = 1024 * 1024 * 1024
    max_unzip_ratio: int = 200
    settle_seconds: float = 2


def limits() -> Limits:
    """The limits in force: the defaults, each overridden by its ``REDWALL_LIMIT_<NAME>``."""
    chosen: dict[str, Any] = {}  # int or float, as the field's default
    for f in fields(Limits):
        if (value := os.environ.get(ENV_PREFIX + f.name.upper())) is not None:
            chosen[f.name] = int(float(value)) if isinstance(f.default, int) else float(value)
    return Limits(**chosen)
