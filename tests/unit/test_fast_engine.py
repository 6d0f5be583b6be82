"""The fast (fake) engine on the real stack: its fleet setting, its timing, and where no weights are needed."""

from __future__ import annotations

import asyncio
import copy
import time

import pytest

from serving.app import build_engine
from serving.fleet.schema import FleetConfigError, load_fleet, parse_fleet
from serving.fleet.weights import PrepareError, packaged_names, resolve_model_path
from serving.replica.engines.fake import FakeEngine
from serving.runner import _ray_env
from tests.unit.conftest import ROOT, fleet_dict

# Tokens are never early (beyond a clock tick); how late they come depends on the machine's load (a busy
# 2-core machine stalls an event loop for 100 ms at times), so upper bounds only tell pacing from no pacing.
EARLY_S = 0.002
SLACK_S = 0.15


def fake_fleet(**engine) -> dict:
    data = copy.deepcopy(fleet_dict())
    data["models"][0]["engine"] = {"kind": "fake", "max_model_len": 64, **engine}
    del data["models"][0]["source"]
    return data


def test_fake_kind_gets_the_default_gpu_like_timing():
    model = parse_fleet(fake_fleet(), "f.yaml").models[0]
    assert model.engine.kind == "fake" and not model.needs_weights
    assert (model.engine.fake.ttft_ms, model.engine.fake.ms_per_token, model.engine.fake.max_concurrent) == (30, 5, 64)


def test_vllm_is_the_default_kind_and_keeps_its_source_required():
    fleet = parse_fleet(fleet_dict(), "f.yaml")
    assert {m.engine.kind for m in fleet.models} == {"vllm"} and all(m.needs_weights for m in fleet.models)
    data = fleet_dict()
    del data["models"][1]["source"]
    with pytest.raises(FleetConfigError, match=r"models\[1\]\(id=large\).*source is required"):
        parse_fleet(data, "f.yaml")


@pytest.mark.parametrize(
    "engine, expected",
    [
        ({"kind": "vllm", "fake": {"ttft_ms": 30}}, "for `kind: fake` only"),
        ({"kind": "fake", "fake": {"ttft_msec": 30}}, "engine.fake.ttft_msec: unknown key"),
        ({"kind": "fake", "fake": {"max_concurrent": 0}}, "engine.fake.max_concurrent"),
        ({"kind": "fake", "fake": {"ms_per_token": -1}}, "engine.fake.ms_per_token"),
        ({"kind": "tgi"}, "engine.kind"),
    ],
)
def test_bad_fake_settings_are_rejected_with_the_key_path(engine, expected):
    data = copy.deepcopy(fleet_dict())
    data["models"][0]["engine"] = engine
    with pytest.raises(FleetConfigError) as exc:
        parse_fleet(data, "f.yaml")
    assert expected in str(exc.value)


def test_fake_models_need_no_weights():
    data = fake_fleet()
    data["models"][0]["source"] = {"packaged": "smollm2-135m-instruct"}  # named, but never prepared
    fleet = parse_fleet(data, "f.yaml")
    assert packaged_names(fleet) == []
    no_source = parse_fleet(fake_fleet(), "f.yaml")
    with pytest.raises(PrepareError, match="no source"):
        resolve_model_path(no_source.models[0], "/nonexistent")
    assert _ray_env(no_source)["HF_HUB_OFFLINE"] == "1"


def test_the_shipped_fast_fleet_is_fake_and_says_so():
    path = ROOT / "deploy" / "fleet.fast.yaml"
    fleet = load_fleet(path)
    assert [m.engine.kind for m in fleet.models] == ["fake", "fake"]
    assert {m.tier.value for m in fleet.models} == {"small", "large"}
    assert {
        (m.engine.fake.ttft_ms, m.engine.fake.ms_per_token, m.engine.fake.max_concurrent) for m in fleet.models
    } == {(30, 5, 64)}
    assert packaged_names(fleet) == [] and not fleet.autoscaler.enabled
    assert "FAKE ENGINE" in path.read_text().splitlines()[0]


def test_build_engine_builds_the_fake_engine_with_the_fleet_timing():
    model = parse_fleet(fake_fleet(fake={"ttft_ms": 20, "ms_per_token": 2, "max_concurrent": 3}), "f.yaml").models[0]
    engine = build_engine(model, "/nonexistent")
    assert isinstance(engine, FakeEngine)
    assert engine.model_id == "small" and engine.max_model_len == 64
    assert engine.token_due_s(0) == pytest.approx(0.020) and engine.token_due_s(10) == pytest.approx(0.040)


async def _timed_stream(engine: FakeEngine, tokens: int) -> list[float]:
    """Seconds from the call to each content chunk."""
    t0 = time.perf_counter()
    stream = await engine.generate(
        "chat", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": tokens, "stream": True}
    )
    times = []
    async for line in stream:
        if '"content":"' in line and '"role"' not in line:
            times.append(time.perf_counter() - t0)
    return times


async def test_timing_mode_paces_first_token_then_one_per_interval():
    engine = FakeEngine("m", ttft_s=0.1, token_delay_s=0.04)
    times = await _timed_stream(engine, 6)
    assert len(times) == 6
    for i, t in enumerate(times):
        assert t >= 0.1 + 0.04 * i - EARLY_S, (i, times)
    assert times[0] < 0.1 + SLACK_S and times[-1] < 0.3 + SLACK_S  # deadlines are absolute: no drift either


async def test_concurrency_cap_makes_further_streams_wait_for_a_slot():
    engine = FakeEngine("m", ttft_s=0.1, token_delay_s=0.04, max_concurrent=2)
    tasks = [asyncio.create_task(_timed_stream(engine, 3)) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert engine.load().running == 2 and engine.load().waiting == 1
    first, second, third = await asyncio.gather(*tasks)
    # Two streams run at once; the third starts when one ends (at 0.18 s), then keeps the same pace.
    assert first[0] < 0.28 and second[0] < 0.28
    assert third[0] >= 0.18 + 0.1 - EARLY_S
    assert third[1] - third[0] >= 0.04 - EARLY_S and third[2] - third[0] >= 0.08 - EARLY_S
    assert engine.load().running == 0 and engine.load().waiting == 0


async def test_a_stream_cancelled_while_waiting_gives_up_its_place():
    engine = FakeEngine("m", ttft_s=0.1, token_delay_s=0.0, max_concurrent=1)
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "stream": True}
    holder = await engine.generate("chat", body)
    waiter = await engine.generate("chat", body)
    await holder.__anext__()  # admitted: holds the only slot
    task = asyncio.create_task(waiter.__anext__())
    await asyncio.sleep(0.01)
    assert engine.load().waiting == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engine.load().waiting == 0 and engine.aborted == 1
    await holder.aclose()
    assert engine.load().running == 0
    late = await asyncio.wait_for(_timed_stream(engine, 1), 5)  # the slot is free again (else: a timeout)
    assert late[0] >= 0.1 - EARLY_S
