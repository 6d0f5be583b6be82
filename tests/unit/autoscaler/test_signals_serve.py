import pytest

from autoscaler.signals_serve import ServeLoadSignals


class Board:
    def __init__(self):
        self.reports = {}
        self.now = 100.0

    def serve(self, model, running=1, target=1, requests=0.0, queued=0.0, at=None):
        self.reports[f"serve:{model}"] = (
            "serve",
            {
                "model": model,
                "requests": requests,
                "queued": queued,
                "running_replicas": running,
                "current_replicas": running,
                "target_replicas": target,
            },
            self.now if at is None else at,
        )

    def ingress(self, name, data, at=None):
        self.reports[f"ingress:{name}"] = ("ingress", data, self.now if at is None else at)


def _m(requests, movable, pt, ct, ttft=None, itl=None):
    return {
        "requests": requests,
        "movable": movable,
        "prompt_tokens": pt,
        "completion_tokens": ct,
        "ttft_p95_ms": ttft,
        "itl_p95_ms": itl,
    }


def make():
    b = Board()
    return b, ServeLoadSignals(lambda: b.reports, ["s", "l"], clock=lambda: b.now, max_report_age_s=15)


def test_missing_serve_report_is_an_error_so_the_controller_holds():
    b, sig = make()
    b.serve("s")
    with pytest.raises(RuntimeError, match="no Serve load report.*l"):
        sig.read()


def test_rates_from_counter_differences_summed_over_ingress_replicas():
    b, sig = make()
    b.serve("s", running=1, target=2, requests=5, queued=2)
    b.serve("l", running=1)
    b.ingress("a", {"s": _m(10, 10, 1000, 500)})
    b.ingress("b", {"s": _m(0, 0, 0, 0)})
    with pytest.raises(RuntimeError, match="baseline"):
        sig.read()
    b.now = 105.0
    b.serve("s", running=1, target=2, requests=5, queued=2)
    b.serve("l", running=1)
    b.ingress("a", {"s": _m(20, 15, 2000, 1000, ttft=300, itl=40)})
    b.ingress("b", {"s": _m(5, 5, 500, 250, ttft=900)})
    out = sig.read()
    s = out["s"]
    assert s.arrival_rps == pytest.approx(3.0)  # (10 + 5) / 5 s
    assert s.input_tokens_per_s == pytest.approx(300.0) and s.output_tokens_per_s == pytest.approx(150.0)
    assert s.movable_fraction == pytest.approx(10 / 15)
    assert s.ttft_p95_ms == 900 and s.itl_p95_ms == 40  # the worst replica
    assert (s.queue_depth, s.in_flight, s.ready_replicas, s.pending_replicas) == (2, 3, 1, 1)
    assert out["l"].arrival_rps == 0 and out["l"].movable_fraction == 1.0


def test_a_restarted_ingress_counts_from_zero_and_stale_reports_are_ignored():
    b, sig = make()
    for m in ("s", "l"):
        b.serve(m)
    b.ingress("a", {"s": _m(100, 100, 0, 1000)})
    with pytest.raises(RuntimeError):
        sig.read()
    b.now = 110.0
    for m in ("s", "l"):
        b.serve(m)
    b.ingress("a", {"s": _m(20, 20, 0, 200)})  # counters went down: the process restarted
    assert sig.read()["s"].output_tokens_per_s == pytest.approx(20.0)
    b.now = 200.0  # every report is now older than 15 s
    with pytest.raises(RuntimeError, match="no Serve load report"):
        sig.read()


def test_movable_rates_by_priority_from_the_ingress_load_window():
    """The ingress counts movable requests by tenant priority; the signals turn them into the mix."""
    from serving.control.load_report import LoadWindow

    b, sig = make()
    b.serve("s")
    b.serve("l")
    windows = {"a": LoadWindow(), "b": LoadWindow()}

    def publish():
        for name, w in windows.items():
            b.ingress(name, w.report(b.now))

    publish()
    with pytest.raises(RuntimeError, match="baseline"):
        sig.read()
    for _ in range(6):
        windows["a"].record("l", True, 10, 5, None, 0.1, b.now, "low")
    for _ in range(2):
        windows["b"].record("l", True, 10, 5, None, 0.1, b.now, "high")
    windows["b"].record("l", False, 10, 5, None, 0.1, b.now, "high")  # named a model: not movable
    windows["b"].record("s", True, 10, 5, None, 0.1, b.now)  # no tenant: in no class
    b.now = 102.0
    publish()
    s = sig.read()
    assert s["l"].movable_rps_by_priority == pytest.approx({"low": 3.0, "high": 1.0})
    assert s["s"].movable_rps_by_priority == {} and s["l"].arrival_rps == pytest.approx(4.5)
    b.now = 104.0
    b.ingress("a", {"l": {**windows["a"].report(b.now)["l"], "movable_by_priority": {"low": 6, "gold": 9}}})
    assert set(sig.read()["l"].movable_rps_by_priority) == {"high"}  # unknown classes are not counted
