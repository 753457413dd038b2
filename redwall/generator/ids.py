"""Vectorised identifiers: citizen IDs (GB 11643), USCCs (GB 32100), phones, passports, record ids.

Strings are built as rows of code points viewed as a numpy unicode array, so a million IDs cost
a few array operations instead of a million Python calls. The weights and alphabets are the ones
of :mod:`redwall.identifiers`, which the tests use to check the results.
"""

from __future__ import annotations

import numpy as np

from redwall.identifiers import ID_CHECK_CHARS, ID_WEIGHTS, ORG_WEIGHTS, USCC_ALPHABET, USCC_WEIGHTS

MOBILE_PREFIXES = np.array(
    [
        130,
        131,
        132,
        133,
        135,
        136,
        137,
        138,
        139,
        150,
        151,
        152,
        153,
        155,
        156,
        158,
        159,
        166,
        173,
        177,
        180,
        181,
        182,
        183,
        185,
        186,
        187,
        188,
        189,
        198,
        199,
    ]
)
HEX = np.frombuffer("0123456789abcdef".encode("utf-32-le"), dtype=np.uint32)
USCC_CODEPOINTS = np.frombuffer(USCC_ALPHABET.encode("utf-32-le"), dtype=np.uint32)
USCC_INDEX = np.zeros(128, np.int64)
USCC_INDEX[USCC_CODEPOINTS] = np.arange(len(USCC_ALPHABET))
ZERO = ord("0")


def join_chars(codepoints: np.ndarray) -> np.ndarray:
    """An (n, k) array of code points -> n strings (code point 0 ends a string early)."""
    codepoints = np.ascontiguousarray(codepoints, dtype=np.uint32)
    return codepoints.view(f"<U{codepoints.shape[1]}").ravel()


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers -> (n, width) array of their decimal digits, zero-padded."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (np.asarray(values, dtype=np.int64)[:, None] // powers) % 10


def digit_strings(values: np.ndarray, width: int) -> np.ndarray:
    return join_chars(digits(values, width) + ZERO)


def citizen_ids(region: np.ndarray, birth: np.ndarray, sex: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """18-character IDs for 6-digit regions, datetime64[D] birth dates and sex codes 1/2, all distinct."""
    ymd = np.datetime_as_string(birth.astype("datetime64[D]"), unit="D")
    date_num = np.char.replace(ymd, "-", "").astype(np.int64)
    region_num = np.asarray(region).astype(np.int64)
    seq = _sequences(sex == 1, rng)
    while True:
        body = region_num * 10**11 + date_num * 1000 + seq
        _, first = np.unique(body, return_index=True)
        clash = np.ones(len(body), bool)
        clash[first] = False  # every repeat after the first draws a new sequence number
        if not clash.any():
            break
        seq[clash] = _sequences(sex[clash] == 1, rng)
    d = digits(body, 17)
    check = np.frombuffer(ID_CHECK_CHARS.encode("utf-32-le"), dtype=np.uint32)[(d @ np.array(ID_WEIGHTS)) % 11]
    return join_chars(np.column_stack([d + ZERO, check]))


def _sequences(male: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sequence numbers 001–999, odd for men, even for women (000 is never assigned)."""
    seq = rng.integers(0, 500, len(male)) * 2 + male
    return np.where(seq == 0, 998, seq)


def usccs(category: np.ndarray, region: str, rng: np.random.Generator) -> np.ndarray:
    """Unified social credit codes: 2-char registration category + region + organisation code + check."""
    n = len(category)
    alphabet = len(USCC_ALPHABET)
    values = np.empty((n, 18), np.int64)
    values[:, 0:2] = USCC_INDEX[_codepoints(category, 2)]
    values[:, 2:8] = USCC_INDEX[_codepoints(np.array([region]), 6)]
    # Organisation code (GB 11714): 8 characters of digits and capitals, then its own check character.
    org = rng.integers(0, 10, (n, 8))
    letters = rng.random(n) < 0.3
    org[letters, 0] = rng.integers(10, alphabet, letters.sum())
    values[:, 8:16] = org
    org_check = 11 - (org @ np.array(ORG_WEIGHTS)) % 11
    values[:, 16] = np.where(org_check == 10, USCC_ALPHABET.index("X"), org_check % 11)
    values[:, 17] = (alphabet - (values[:, :17] @ np.array(USCC_WEIGHTS)) % alphabet) % alphabet
    return join_chars(USCC_CODEPOINTS[values])


def _codepoints(strings: np.ndarray, width: int) -> np.ndarray:
    return np.asarray(strings, dtype=f"<U{width}").view(np.uint32).reshape(-1, width)


def phones(n: int, rng: np.random.Generator) -> np.ndarray:
    prefix = rng.choice(MOBILE_PREFIXES, n)
    return digit_strings(prefix * 10**8 + rng.integers(0, 10**8, n), 11)


def record_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """32 hexadecimal characters, like the app's UUIDs without dashes."""
    return join_chars(HEX[rng.integers(0, 16, (n, 32))])


def passports(n: int, rng: np.random.Generator) -> np.ndarray:
    """Foreign passport numbers: two capitals and seven digits."""
    letters = rng.integers(ord("A"), ord("Z") + 1, (n, 2))
    return join_chars(np.column_stack([letters, digits(rng.integers(0, 10**7, n), 7) + ZERO]))


def travel_permits(region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Permit numbers: H/M + 8 digits for Hong Kong/Macao residents, 8 digits for Taiwan residents."""
    body = digit_strings(rng.integers(0, 10**8, len(region)), 8)
    prefix = np.select([region == "香港", region == "澳门"], ["H", "M"], "")
    return np.char.add(prefix, body)
