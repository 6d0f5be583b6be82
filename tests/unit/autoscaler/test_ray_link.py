"""RayLink: connect with backoff, notice a lost connection, reconnect and re-wire (no Ray)."""

import threading

from autoscaler.ray_link import RayLink


class Clock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, s):
        self.slept.append(s)
        self.now += s


def test_connect_backs_off_exponentially_up_to_a_cap():
    clock, tries = Clock(), []

    def init(address):
        tries.append(address)
        if len(tries) < 6:
            raise ConnectionError("head not up")

    link = RayLink("ray://head:10001", init=init, sleep=clock.sleep, clock=lambda: clock.now)
    assert link.connect(timeout_s=None) and link.state == "connected"
    assert clock.slept == [2.0, 4.0, 8.0, 16.0, 30.0]


def test_connect_gives_up_at_the_timeout_or_when_stopped():
    clock = Clock()

    def init(_):
        raise ConnectionError("no route")

    link = RayLink("ray://x", init=init, sleep=clock.sleep, clock=lambda: clock.now)
    assert not link.connect(timeout_s=10) and link.state == "connecting"
    stop = threading.Event()
    stop.set()
    assert not link.connect(timeout_s=None, stop=stop)


class StepStop(threading.Event):
    """A stop event whose wait() returns True after `ticks` periods."""

    def __init__(self, ticks):
        super().__init__()
        self.ticks = ticks

    def wait(self, timeout=None):
        self.ticks -= 1
        return self.ticks < 0


def test_watch_reconnects_after_repeated_failures_and_rewires():
    health = iter([True, False, True, False, False, True, True])  # one blip, then a real loss
    events: list[str] = []
    link = RayLink(
        "ray://x",
        init=lambda _: events.append("init"),
        alive=lambda: next(health),
        shutdown=lambda: events.append("shutdown"),
        sleep=lambda s: None,
    )
    link.state = "connected"
    link.watch(StepStop(7), 5.0, lambda: events.append("rewire"))
    assert events == ["shutdown", "init", "rewire"]  # a single failed check does not reconnect
    assert link.reconnects == 1 and link.state == "connected"


def test_a_failed_rewire_is_retried_at_the_next_check():
    rewires, states = [], []

    def rewire():
        rewires.append(1)
        if len(rewires) == 1:
            raise ConnectionError("board not there yet")

    def alive():
        states.append(link.state)
        if not rewires:
            raise ConnectionError("session lost")  # a check that raises counts as a failure
        return True

    link = RayLink("ray://x", init=lambda _: None, alive=alive, shutdown=lambda: None, sleep=lambda s: None)
    link.state = "connected"
    link.watch(StepStop(3), 5.0, rewire)
    assert states == ["connected", "connected", "reconnecting"]  # not connected until re-wired
    assert len(rewires) == 2 and link.state == "connected"
