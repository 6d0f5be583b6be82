"""Per-model load signals from the Serve application's reports (pure; the fetch is injected).

Two kinds of report reach the board (see `serving.control.board`):
- ``serve:<model>`` from Ray Serve's autoscaling-policy hook of each model
  deployment: requests at the deployment (running + queued), queued requests,
  running and target replicas;
- ``ingress:<replica>`` from each ingress replica: per model, cumulative
  requests / movable requests (also by tenant priority class) / prompt and
  completion tokens, and TTFT and time-per-output-token p95 over its recent window.

`ServeLoadSignals.read()` turns counter differences between two reads into
rates, sums them over ingress replicas and takes the worst p95. It raises (the
controller then holds) when a model has no fresh Serve report, and on the
first read, which only sets the baseline for rates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from autoscaler.snapshot import ModelSignals
from serving.fleet.tenants import PRIORITIES

COUNTERS = ("requests", "movable", "prompt_tokens", "completion_tokens")
BY_PRIORITY = "movable_by_priority"  # a nested counter: priority class -> movable requests


def _counters(report: Mapping) -> dict[str, float]:
    """One model's counters from an ingress report, the per-priority ones as `movable:<priority>`."""
    out = {c: float(report.get(c, 0)) for c in COUNTERS}
    nested = report.get(BY_PRIORITY)
    if isinstance(nested, Mapping):
        out.update({f"movable:{p}": float(n) for p, n in nested.items() if p in PRIORITIES})
    return out


class ServeLoadSignals:
    """A `ModelSignalSource` over `fetch() -> {source: (kind, data, at)}`; `clock()` is wall time."""

    def __init__(
        self,
        fetch: Callable[[], Mapping[str, tuple]],
        models: Iterable[str],
        clock: Callable[[], float],
        max_report_age_s: float = 15.0,
    ) -> None:
        self.fetch, self.models, self.clock = fetch, list(models), clock
        self.max_age = max_report_age_s
        self._prev: dict[str, tuple[float, dict]] = {}  # ingress source -> (at, data) at the last read
        self._rates: dict[str, dict[str, dict[str, float]]] = {}  # ingress source -> model -> counter -> /s

    def read(self) -> dict[str, ModelSignals]:
        now = self.clock()
        fresh = {src: r for src, r in self.fetch().items() if now - r[2] <= self.max_age}
        serve = {r[1].get("model"): r[1] for r in fresh.values() if r[0] == "serve"}
        missing = [m for m in self.models if m not in serve]
        if missing:
            raise RuntimeError(
                f"no Serve load report in the last {self.max_age:g}s for {', '.join(missing)} "
                "(is the application deployed with Petit's autoscaling policy?)"
            )
        ingress = {src: (r[2], r[1]) for src, r in fresh.items() if r[0] == "ingress"}
        first_read = not self._prev and not self._rates
        self._update_rates(ingress)
        if first_read and ingress:
            raise RuntimeError("warming up: the first read only sets the baseline for token rates")
        return {m: self._signals(m, serve[m], [d for _, d in ingress.values()]) for m in self.models}

    def _update_rates(self, ingress: dict[str, tuple[float, dict]]) -> None:
        for src, (at, data) in ingress.items():
            prev = self._prev.get(src)
            if prev is None or at <= prev[0]:
                if prev is None:
                    self._prev[src] = (at, data)
                continue  # no new report since the last read: keep the last rates
            dt, before = at - prev[0], {m: _counters(v) for m, v in prev[1].items()}
            self._rates[src] = {
                m: {c: _delta(n, before.get(m, {}).get(c, 0.0)) / dt for c, n in _counters(v).items()}
                for m, v in data.items()
            }
            self._prev[src] = (at, data)
        for src in list(self._prev):  # forget replicas that stopped reporting
            if src not in ingress:
                self._prev.pop(src)
                self._rates.pop(src, None)

    def _signals(self, model: str, serve: dict, ingress: list[dict]) -> ModelSignals:
        rate = {c: sum(r.get(model, {}).get(c, 0.0) for r in self._rates.values()) for c in COUNTERS}
        by_priority = {
            p: sum(r.get(model, {}).get(f"movable:{p}", 0.0) for r in self._rates.values()) for p in PRIORITIES
        }
        ttft = [d[model]["ttft_p95_ms"] for d in ingress if d.get(model, {}).get("ttft_p95_ms") is not None]
        itl = [d[model]["itl_p95_ms"] for d in ingress if d.get(model, {}).get("itl_p95_ms") is not None]
        queued = float(serve.get("queued", 0.0))
        running = int(serve.get("running_replicas", 0))
        return ModelSignals(
            arrival_rps=rate["requests"],
            input_tokens_per_s=rate["prompt_tokens"],
            output_tokens_per_s=rate["completion_tokens"],
            queue_depth=int(round(queued)),
            in_flight=max(0, int(round(float(serve.get("requests", 0.0)) - queued))),
            ttft_p95_ms=max(ttft) if ttft else None,
            itl_p95_ms=max(itl) if itl else None,
            ready_replicas=running,
            pending_replicas=max(0, int(serve.get("target_replicas", running)) - running),
            movable_fraction=rate["movable"] / rate["requests"] if rate["requests"] > 0 else 1.0,
            movable_rps_by_priority={p: v for p, v in by_priority.items() if v > 0},
        )


def _delta(now: float, before: float) -> float:
    """Counter difference; a counter that went down restarted (a new replica process) from 0."""
    return now - before if now >= before else now
