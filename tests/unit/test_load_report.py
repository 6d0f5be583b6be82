from serving.control.load_report import LoadWindow, p95


def test_p95_nearest_rank():
    assert p95([]) is None
    assert p95([5.0]) == 5.0
    assert p95([float(i) for i in range(1, 101)]) == 95.0


def test_counters_accumulate_and_latencies_age_out_of_the_window():
    w = LoadWindow(window_s=10)
    w.record("s", True, 100, 11, 0.2, 1.2, now=0.0)  # ttft 200 ms, (1.2-0.2)/10 = 100 ms per token
    w.record("s", False, 50, 1, None, 0.5, now=5.0)  # not a stream: no latency samples
    r = w.report(now=6.0)["s"]
    assert (r["requests"], r["movable"], r["prompt_tokens"], r["completion_tokens"]) == (2, 1, 150, 12)
    assert r["ttft_p95_ms"] == 200.0 and abs(r["itl_p95_ms"] - 100.0) < 1e-9
    later = w.report(now=20.0)["s"]
    assert later["requests"] == 2 and later["ttft_p95_ms"] is None  # counters stay, samples expire
