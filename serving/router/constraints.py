"""Per-request routing constraints: parsing and validation (pure).

A client constrains `auto` routing with an extra body object or headers:

    body:    "petit": {"max_cost_usd": 0.0005, "min_tier": "medium", "allow_downgrade": false, "max_tier": "large"}
    headers: x-petit-max-cost-usd: 0.0005
             x-petit-min-tier: medium
             x-petit-allow-downgrade: false
             x-petit-max-tier: large

Body fields win over headers. Errors raise ConstraintError (a ValueError with
`param`, the OpenAI error field to report: ``petit.max_cost_usd`` for the body,
the header name for a header).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from serving.router.state import TIERS
from serving.router.types import RequestConstraints

BODY_KEY = "petit"
HEADERS = {
    "max_cost_usd": "x-petit-max-cost-usd",
    "min_tier": "x-petit-min-tier",
    "allow_downgrade": "x-petit-allow-downgrade",
    "max_tier": "x-petit-max-tier",
}
MAX_COST_LIMIT_USD = 1000.0  # beyond this a value is a typo, not a budget
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


class ConstraintError(ValueError):
    """An invalid constraint; `param` names the body field or header."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message, self.param = message, param


def _cost(v: object, param: str) -> float:
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            raise ConstraintError(f"{param} must be a number of US dollars, got {v!r}", param) from None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConstraintError(f"{param} must be a number of US dollars, got {v!r}", param)
    if not 0 < v <= MAX_COST_LIMIT_USD:
        raise ConstraintError(f"{param} must be > 0 and <= {MAX_COST_LIMIT_USD:g}, got {v!r}", param)
    return float(v)


def _tier(v: object, param: str, tiers: Sequence[str]) -> str:
    if not isinstance(v, str) or v.strip().lower() not in tiers:
        raise ConstraintError(f"{param} must be one of {', '.join(tiers)}; got {v!r}", param)
    return v.strip().lower()


def _flag(v: object, param: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
        return v.strip().lower() in _TRUE
    raise ConstraintError(f"{param} must be true or false, got {v!r}", param)


_KEYS = ("max_cost_usd", "min_tier", "allow_downgrade", "max_tier")


class _Builder:
    """Parsed constraint values, later ones (the body's) overriding earlier ones (headers')."""

    def __init__(self, tiers: Sequence[str]) -> None:
        self.tiers = tiers
        self.max_cost_usd: float | None = None
        self.min_tier: str | None = None
        self.max_tier: str | None = None
        self.allow_downgrade = True

    def set(self, key: str, v: object, param: str) -> None:
        if key == "max_cost_usd":
            self.max_cost_usd = _cost(v, param)
        elif key == "min_tier":
            self.min_tier = _tier(v, param, self.tiers)
        elif key == "max_tier":
            self.max_tier = _tier(v, param, self.tiers)
        else:
            self.allow_downgrade = _flag(v, param)

    def build(self) -> RequestConstraints:
        return RequestConstraints(self.max_cost_usd, self.min_tier, self.allow_downgrade, self.max_tier)


def parse_constraints(
    body: Mapping[str, object] | None = None, headers: Mapping[str, str] | None = None, tiers: Sequence[str] = TIERS
) -> RequestConstraints:
    """Constraints from a request body and headers (header names case-insensitive).

    Raises ConstraintError for a non-object ``petit`` field, an unknown key in
    it, a cost that is not a positive finite number up to 1000, an unknown
    tier, or a flag that is not a boolean.
    """
    values = _Builder(tiers)
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    for key, header in HEADERS.items():
        if header in lowered:
            values.set(key, lowered[header], header)
    raw = (body or {}).get(BODY_KEY)
    if raw is not None:
        if not isinstance(raw, Mapping):
            raise ConstraintError(f"{BODY_KEY} must be an object, got {type(raw).__name__}", BODY_KEY)
        unknown = sorted(set(raw) - set(_KEYS))
        if unknown:
            raise ConstraintError(
                f"unknown field(s) {unknown} in {BODY_KEY}; known: {', '.join(_KEYS)}", f"{BODY_KEY}.{unknown[0]}"
            )
        for key, v in raw.items():
            if v is not None:
                values.set(key, v, f"{BODY_KEY}.{key}")
    return values.build()


def with_max_tier(constraints: RequestConstraints, cap: str | None, tiers: Sequence[str] = TIERS) -> RequestConstraints:
    """`constraints` with `max_tier` lowered to `cap` (the lower of the two; None: unchanged).

    A tenant's limit or budget downgrade caps what the client asked for; it never raises it.
    """
    if cap is None:
        return constraints
    mine = constraints.max_tier
    lower = cap if mine is None or tiers.index(cap) < tiers.index(mine) else mine
    return dataclasses.replace(constraints, max_tier=lower)
