"""`petit profile` against fake servers of known timing: the fit must recover it.

Two servers: loadtests.fake_server (fixed TTFT and ITL, a subprocess: the `fake` fixture) and an
in-process one whose timing depends on the load like an engine's (prefill time grows with the
prompt, the token gap with the streams decoding at once).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiohttp import web

from autoscaler.simulator.measured import ProfileLimits, fit_profile, iteration_ms, read_profile_file
from autoscaler.simulator.profile_cli import main as profile_main
from autoscaler.simulator.profile_cli import to_profile_samples
from loadtests.profiler import SweepSpec, sweep, usable_prompt_lengths
from loadtests.prompts import SyntheticPrompts
from tests.unit.loadtests.test_live import ITL, TTFT, _port


def test_fixed_timing_of_the_fake_server_is_recovered(fake, tmp_path, capsys):
    out = tmp_path / "fake-small.profile.yaml"
    argv = ["--target", fake, "--model", "fake-small", "--out", str(out), "--concurrency", "1,3"]
    argv += ["--prompt-tokens", "32,256", "--output-tokens", "6", "--rounds", "5", "--max-num-seqs", "16"]
    assert profile_main(argv) == 0
    doc = read_profile_file(out)
    p = doc.profile
    # fixed ITL: one iteration is the ITL whatever the batch; fixed TTFT: no prefill cost
    for c in (1, 3):
        assert iteration_ms(p, c, c * 200) == pytest.approx(ITL * 1000, rel=0.25)
    assert p.prefill_ms_per_token * 256 < 20  # (a few ms: the noise of a busy machine)
    assert p.ttft_overhead_ms + p.t0_ms == pytest.approx(TTFT * 1000, rel=0.2)
    assert p.max_num_seqs == 16 and p.max_batched_tokens == 2048
    assert doc.provenance.model == "fake-small" and doc.provenance.requests == 5 * (2 * 1 + 2 * 3)
    assert [(pt.concurrency, pt.prompt_tokens) for pt in doc.points] == [(1, 32), (1, 256), (3, 32), (3, 256)]
    for pt in doc.points:  # the simulator, fed the fitted profile, replays each cell
        assert pt.simulated_ttft_ms == pytest.approx(pt.ttft_ms, rel=0.25)
        assert pt.simulated_tpot_ms == pytest.approx(pt.tpot_ms, rel=0.25)
    err = capsys.readouterr().err
    assert "[4/4] c=3" in err  # progress on stderr


def test_an_unknown_model_is_refused_before_any_load(fake, capsys):
    assert profile_main(["--target", fake, "--model", "nope", "--out", "/nonexistent/x.yaml"]) == 2
    assert "no model 'nope'" in capsys.readouterr().err


def test_prompt_lengths_leave_room_in_the_context_window():
    assert usable_prompt_lengths((64, 256, 1024), 512, 32) == (64, 256)
    assert usable_prompt_lengths((64, 256), None, 32) == (64, 256)


class EngineLikeServer:
    """First token after `base + prefill x prompt words`; each later token after
    `itl + per_stream x streams decoding now`."""

    def __init__(self, base: float, prefill: float, itl: float, per_stream: float):
        self.base, self.prefill, self.itl, self.per_stream = base, prefill, itl, per_stream
        self.decoding = 0

    async def models(self, _: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "m", "max_model_len": 2048}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        body = await request.json()
        n_in = len(json.dumps(body["messages"]).split())
        n_out = int(body["max_tokens"])
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        due = arrived + self.base + self.prefill * n_in
        for i in range(n_out):
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await resp.write(b'data: {"choices": [{"delta": {"content": "x"}}]}\n\n')
            self.decoding += i == 0
            due += self.itl + self.per_stream * self.decoding
        self.decoding -= 1
        usage = {"prompt_tokens": n_in, "completion_tokens": n_out}
        await resp.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\ndata: [DONE]\n\n".encode())
        return resp


def test_load_dependent_timing_is_recovered():
    server = EngineLikeServer(base=0.03, prefill=0.0002, itl=0.012, per_stream=0.004)
    spec = SweepSpec(concurrency=(1, 2, 4), prompt_tokens=(64, 768), output_tokens=8, rounds=3)

    async def measure():
        app = web.Application()
        app.router.add_get("/v1/models", server.models)
        app.router.add_post("/v1/chat/completions", server.chat)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = _port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            return await sweep(f"http://127.0.0.1:{port}/v1", "m", spec, SyntheticPrompts())
        finally:
            await runner.cleanup()

    info, cells = asyncio.run(measure())
    assert info["max_model_len"] == 2048
    samples, failed = to_profile_samples(cells)
    assert failed == 0 and len(samples) == 3 * 2 * (1 + 2 + 4)
    fit = fit_profile(samples, ProfileLimits())
    p = fit.profile
    assert p.t0_ms == pytest.approx(12, rel=0.3)
    assert p.t1_ms == pytest.approx(4, rel=0.5)  # t1 and kv trade off on noisy cells ...
    for c in (1, 2, 4):  # ... the iteration time they predict does not
        for n_in in (64, 768):
            assert iteration_ms(p, c, c * n_in) == pytest.approx(12 + 4 * c, rel=0.2)
    assert p.prefill_ms_per_token == pytest.approx(0.2, rel=0.3)
    assert p.ttft_overhead_ms + p.t0_ms == pytest.approx(30, abs=15)
    assert fit.template_tokens == 0  # no tokenizer: the server's count is not compared with the request's
