"""The autoscaler's connection to the Ray cluster (adapter: imports Ray lazily).

`RayLink.connect` retries with exponential backoff while the head comes up;
`RayLink.watch` checks the connection every period and, when it is lost (a head
restart ends every Ray Client session), drops it and connects again with the
same backoff, then calls `on_reconnect` so the caller can look its actors up
again. Time, sleeping and Ray's calls are injected: unit tests need no Ray.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("petit.autoscaler.ray")

FIRST_WAIT_S = 2.0
MAX_WAIT_S = 30.0


def _ray_init(address: str) -> None:
    import ray

    ray.init(address=address, namespace="serve", log_to_driver=False)


def _ray_alive() -> bool:
    """Connected, and the cluster answers a cheap call (a lost Ray Client session raises)."""
    import ray

    if not ray.is_initialized():
        return False
    ray.cluster_resources()
    return True


def _ray_shutdown() -> None:
    import ray

    ray.shutdown()


class RayLink:
    """Connect, notice a lost connection, reconnect; `state` is "connecting", "connected" or "reconnecting"."""

    def __init__(
        self,
        address: str,
        init: Callable[[str], Any] = _ray_init,
        alive: Callable[[], bool] = _ray_alive,
        shutdown: Callable[[], Any] = _ray_shutdown,
        sleep: Callable[[float], Any] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        failures_before_reconnect: int = 2,
    ) -> None:
        self.address = address
        self._init, self._alive, self._shutdown = init, alive, shutdown
        self._sleep, self._clock = sleep, clock
        self.failures_before_reconnect = failures_before_reconnect
        self.state = "connecting"
        self.last_attempt_at: float | None = None  # clock() of the last connection attempt or check
        self.reconnects = 0

    def connect(self, timeout_s: float | None = None, stop: threading.Event | None = None) -> bool:
        """Try until connected (True), `timeout_s` passes or `stop` is set (False).

        Waits 2 s after the first failure, doubling up to 30 s."""
        deadline = None if timeout_s is None else self._clock() + timeout_s
        wait = FIRST_WAIT_S
        while True:
            self.last_attempt_at = self._clock()
            try:
                self._init(self.address)
                self.state = "connected"
                return True
            except (ConnectionError, RuntimeError, TimeoutError) as err:
                if deadline is not None and self._clock() + wait > deadline:
                    log.error("cannot reach Ray at %s after %.0fs: %s", self.address, timeout_s, err)
                    return False
                log.warning("waiting for Ray at %s (%s); retrying in %.0fs", self.address, err, wait)
            if stop is not None and stop.is_set():
                return False
            self._sleep(wait)
            wait = min(wait * 2, MAX_WAIT_S)

    def check(self) -> bool:
        """One health check; never raises."""
        self.last_attempt_at = self._clock()
        try:
            return bool(self._alive())
        except Exception as err:  # a lost session raises ConnectionError and others
            log.warning("Ray connection check failed: %s", err)
            return False

    def watch(self, stop: threading.Event, period_s: float, on_reconnect: Callable[[], Any]) -> None:
        """Check every `period_s` until `stop`. After `failures_before_reconnect` failed checks in a
        row: shut the session down, connect again with backoff, then `on_reconnect()` (retried at
        each later check until it succeeds; `state` stays "reconnecting" meanwhile)."""
        failures, rewire = 0, False
        while not stop.wait(period_s):
            if self.check():
                failures = 0
            else:
                failures += 1
                if failures < self.failures_before_reconnect:
                    continue
                self.state = "reconnecting"
                log.warning("lost the connection to Ray at %s: reconnecting", self.address)
                try:
                    self._shutdown()
                except Exception as err:  # the old session may be half gone
                    log.debug("ray.shutdown after a lost connection: %s", err)
                if not self.connect(None, stop):
                    return
                failures, rewire = 0, True
                self.reconnects += 1
            if rewire:
                try:
                    on_reconnect()
                    rewire, self.state = False, "connected"
                except Exception:
                    log.exception("re-wiring after reconnecting to Ray failed; retrying at the next check")
                    self.state = "reconnecting"
