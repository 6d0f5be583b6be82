"""The run-time routing state, and a holder to read and change it without a restart (pure).

The autoscaler (or an operator) pushes a new `RoutingState`; policies read
the holder's current value at every decision. No module globals: build one
holder per replica and pass it to the policies that share it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from serving.fleet.schema import Tier
from serving.fleet.tenants import PRIORITIES
from serving.router.cascade import PROMPT_KINDS, CascadeThresholds, prompt_kind

TIERS = tuple(t.value for t in Tier)


def _unit(name: str, v: float | None) -> None:
    if v is not None and not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got {v!r}")


@dataclass(frozen=True)
class RoutingState:
    """What the router may do right now. Raises ValueError on construction when a field is out of range.

    - `threshold`: routing score at or above which a prompt goes to the strong tier;
      None: derive it from `strong_share` (or the artefact's default share).
    - `strong_share`: target share of strong-tier calls, calibrated into a threshold
      on the artefact's score sample; with `threshold` set, a cap (the stricter wins).
    - `allowed_tiers`: tiers that may answer `auto` requests (None: all).
    - `downgrade_share`: share of strong-routed requests (that allow it) sent one
      gate lower, e.g. while GPUs are short.
    - `downgrade_share_by_priority`: the same per tenant priority class
      (`serving.fleet.tenants.PRIORITIES`), set by the autoscaler under GPU scarcity
      (low priority first); a request of a class it names uses that class's share
      instead of `downgrade_share` (see `downgrade_share_for`).
    - `cascade_*`: the cascade's confidence thresholds (see `serving.router.cascade`);
      `cascade_min_mean_logprob_by_kind`: the mean threshold per prompt kind
      (`serving.router.cascade.prompt_kind`: choice / open), overriding the one above;
      `cascade_skip_score`: router score from which the cascade goes straight to the strong
      tier (None: never; `serving.router.online` learns it when enabled, unless
      `online_learning_paused`).
    - `version`: bumped by the pusher; shows up in logs.
    """

    threshold: float | None = None
    strong_share: float | None = None
    allowed_tiers: frozenset[str] | None = None
    downgrade_share: float = 0.0
    downgrade_share_by_priority: Mapping[str, float] | None = None
    cascade_min_mean_logprob: float = -0.8
    cascade_min_token_logprob: float = -5.0
    cascade_buffer_tokens: int = 16
    cascade_min_mean_logprob_by_kind: Mapping[str, float] | None = None
    cascade_skip_score: float | None = None
    online_learning_paused: bool = False
    version: int = 0

    def __post_init__(self) -> None:
        CascadeThresholds(
            self.cascade_min_mean_logprob, self.cascade_min_token_logprob, self.cascade_buffer_tokens
        )  # raises ValueError when out of range
        by_kind = self.cascade_min_mean_logprob_by_kind
        if by_kind is not None:
            unknown = sorted(set(by_kind) - set(PROMPT_KINDS))
            if unknown:
                raise ValueError(f"cascade_min_mean_logprob_by_kind: unknown kind(s) {unknown}; kinds: {PROMPT_KINDS}")
            for kind, v in by_kind.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or v > 0:
                    raise ValueError(f"cascade_min_mean_logprob_by_kind[{kind}] must be a number <= 0, got {v!r}")
            object.__setattr__(self, "cascade_min_mean_logprob_by_kind", dict(by_kind))
        for name in ("threshold", "cascade_skip_score"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v)):
                raise ValueError(f"{name} must be a number, got {v!r}")
        _unit("strong_share", self.strong_share)
        _unit("downgrade_share", self.downgrade_share)
        by_priority = self.downgrade_share_by_priority
        if by_priority is not None:
            if not isinstance(by_priority, Mapping):
                raise ValueError(f"downgrade_share_by_priority must map priority -> share, got {by_priority!r}")
            unknown = sorted(set(by_priority) - set(PRIORITIES))
            if unknown:
                raise ValueError(f"downgrade_share_by_priority: unknown priority {unknown}; priorities: {PRIORITIES}")
            for p, v in by_priority.items():
                if isinstance(v, bool):
                    raise ValueError(f"downgrade_share_by_priority[{p}] must lie in [0, 1], got {v!r}")
                _unit(f"downgrade_share_by_priority[{p}]", v)
            object.__setattr__(self, "downgrade_share_by_priority", dict(by_priority))
        if self.allowed_tiers is not None:
            object.__setattr__(self, "allowed_tiers", frozenset(self.allowed_tiers))
            unknown = sorted(self.allowed_tiers - set(TIERS))
            if unknown or not self.allowed_tiers:
                raise ValueError(
                    f"allowed_tiers must be a non-empty subset of {TIERS}, got {sorted(self.allowed_tiers)}"
                )

    def downgrade_share_for(self, priority: str | None) -> float:
        """The downgrade share for a request of tenant priority `priority` (None: no tenant)."""
        by_priority = self.downgrade_share_by_priority
        if by_priority is not None and priority is not None and priority in by_priority:
            return by_priority[priority]
        return self.downgrade_share


def cascade_thresholds(state: RoutingState, text: str | None = None) -> CascadeThresholds:
    """The cascade's thresholds for one prompt (its kind's mean threshold when the state holds one)."""
    mean = state.cascade_min_mean_logprob
    by_kind = state.cascade_min_mean_logprob_by_kind
    if by_kind and text is not None:
        mean = by_kind.get(prompt_kind(text), mean)
    return CascadeThresholds(mean, state.cascade_min_token_logprob, state.cascade_buffer_tokens)


class RoutingStateHolder:
    """The current `RoutingState` of one replica; `get` is lock-free, `set`/`update` are atomic."""

    def __init__(self, state: RoutingState | None = None) -> None:
        self._state = state or RoutingState()
        self._lock = threading.Lock()

    def get(self) -> RoutingState:
        return self._state

    def set(self, state: RoutingState) -> RoutingState:
        if not isinstance(state, RoutingState):
            raise TypeError(f"expected RoutingState, got {type(state).__name__}")
        with self._lock:
            self._state = state
        return state

    def update(self, **changes: Any) -> RoutingState:
        """Replace some fields (validated) and bump `version`. Raises ValueError/TypeError."""
        with self._lock:
            self._state = replace(self._state, **changes, version=self._state.version + 1)
            return self._state
