"""One vocabulary for numbers in the CLI, the banner, the cards and the tables. Pure module.

Counts with thousands separators, rates with a unit, latencies in ms (seconds
from 10 s up), shares and error rates as percentages, money in USD; never
scientific notation.
"""

from __future__ import annotations

import math

NA = "n/a"


def fmt_count(n: int | None) -> str:
    return NA if n is None else f"{n:,}"


def _num(x: float) -> str:
    """A plain decimal with about three significant digits."""
    a = abs(x)
    if a >= 100:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 0.01 or a == 0:
        return f"{x:.2f}"
    return f"{x:.{2 - math.floor(math.log10(a))}f}".rstrip("0")  # <= 3 significant digits, never 1e-05


def fmt_rate(x: float | None, unit: str) -> str:
    return NA if x is None else f"{_num(x)} {unit}"


def fmt_ms(x: float | None) -> str:
    if x is None:
        return NA
    return f"{x / 1000:.1f} s" if x >= 10_000 else f"{_num(x)} ms"


def fmt_pct(x: float | None) -> str:
    """A share in [0, 1] as a percentage."""
    return NA if x is None else f"{x * 100:.2f}%"


def fmt_usd(x: float | None) -> str:
    return NA if x is None else f"{_num(x)} USD"


def fmt_value(x: float | None, unit: str) -> str:
    """A measured value in its unit's words: `share` -> %, `ms`, `USD`, rates, counts."""
    if unit == "share":
        return fmt_pct(x)
    if unit == "ms":
        return fmt_ms(x)
    if unit == "USD":
        return fmt_usd(x)
    if x is None:
        return NA
    if unit in ("", "requests"):
        return f"{x:,.0f}" if float(x).is_integer() else _num(x)
    return fmt_rate(x, unit)


def fmt_holds(held: int, total: int) -> str:
    """The verdict count, worded the same everywhere."""
    return f"{held} of {total} SLA lines hold"
