"""Poll the fleet during a run (a gevent greenlet): /v1/models, the admin's budget and plan, /metrics.

What is read and how it is parsed: timeline.py. Every `poll_s` seconds one
:class:`TimelinePoint` is appended to the run's timeline; a source that fails
(refused, timeout, HTTP error, wrong shape) is recorded in the point's
`errors` and the run goes on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import gevent
from geventhttpclient import HTTPClient

from loadtests.locust_glue import split_target
from loadtests.scenario import ScenarioSpec
from loadtests.timeline import TimelinePoint, read_budget, read_metrics, read_models, read_plan

TIMEOUT_S = 2.0


def http_get(url: str, headers: dict[str, str] | None = None, timeout_s: float = TIMEOUT_S) -> bytes:
    """The body of `GET url`. Raises OSError, TimeoutError or ValueError (HTTP >= 400)."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    http = HTTPClient.from_url(
        f"{parts.scheme}://{parts.netloc}", connection_timeout=timeout_s, network_timeout=timeout_s
    )
    try:
        with gevent.Timeout(timeout_s, TimeoutError(f"no answer within {timeout_s:g} s")):
            resp = http.get(path, headers=headers or {})
            status, body = resp.status_code, resp.read()
        if status >= 400:
            raise ValueError(f"HTTP {status} {body[:120].decode('utf-8', 'replace')}")
        return bytes(body)
    finally:
        http.close()


def _admin_headers() -> dict[str, str]:
    token = os.environ.get("PETIT_ADMIN_TOKEN")
    return {"authorization": f"Bearer {token}"} if token else {}


def sources(
    spec: ScenarioSpec, target: str, target_headers: dict[str, str] | None = None
) -> list[tuple[str, str, dict[str, str], Callable]]:
    """(name, URL, headers, reader) of every source the scenario names; `target_headers` go to the target."""
    base, prefix = split_target(target)
    models_url = f"{base}{prefix}/v1/models"
    out: list[tuple[str, str, dict[str, str], Callable]] = [("models", models_url, target_headers or {}, read_models)]
    if spec.scarcity is not None:
        admin = spec.scarcity.admin_url.rstrip("/")
        out.append(("budget", f"{admin}/admin/budget", _admin_headers(), read_budget))
        out.append(("plan", f"{admin}/admin/plan", _admin_headers(), read_plan))
        if spec.scarcity.metrics_url:
            read_text = lambda p, b: read_metrics(p, b.decode("utf-8", "replace"))  # noqa: E731
            out.append(("metrics", spec.scarcity.metrics_url, {}, read_text))
    return out


def poll_once(t_s: float, srcs: list[tuple[str, str, dict[str, str], Callable]]) -> TimelinePoint:
    """One point; never raises (each failure is an entry of `errors`, `name: what`)."""
    point = TimelinePoint(round(t_s, 3))
    for name, url, headers, reader in srcs:
        try:
            reader(point, http_get(url, headers))
        except Exception as err:  # refused, timeout, HTTP error, bad shape: recorded, the run goes on
            point.errors.append(f"{name}: {type(err).__name__}: {err}"[:240])
    return point


class Poller:
    """Appends a point to `timeline` every `spec.poll_s` seconds from `start()` until `stop()`."""

    def __init__(
        self,
        spec: ScenarioSpec,
        target: str,
        t0: float,
        timeline: list[TimelinePoint],
        target_headers: dict[str, str] | None = None,
    ) -> None:
        self.every_s, self.t0, self.timeline = spec.poll_s, t0, timeline
        self.srcs = sources(spec, target, target_headers)
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        if self.every_s > 0:
            self._greenlet = gevent.spawn(self._loop)

    def _loop(self) -> None:
        while True:
            started = time.perf_counter()
            self.timeline.append(poll_once(started - self.t0, self.srcs))
            gevent.sleep(max(0.0, self.every_s - (time.perf_counter() - started)))

    def stop(self) -> None:
        """End polling with one last point, so the timeline reaches the end of the run."""
        if self._greenlet is None:
            return
        self._greenlet.kill()
        self._greenlet = None
        self.timeline.append(poll_once(time.perf_counter() - self.t0, self.srcs))
