"""The vLLM adapter's pure parts, and ModelServer over the fake engine."""

from __future__ import annotations

from serving.replica.engines.fake import FakeEngine
from serving.replica.engines.vllm_engine import engine_cli_args, engine_env
from serving.replica.server import ModelServer
from tests.unit.conftest import ROOT


def test_cli_args_and_env_from_config():
    from serving.fleet.schema import load_fleet

    m = load_fleet(ROOT / "deploy" / "fleet.local.yaml").model("smollm2-135m")
    args = engine_cli_args(m, "/models/smol")
    assert args[:4] == ["--model", "/models/smol", "--served-model-name", "smollm2-135m"]
    assert "--enforce-eager" in args and "--gpu-memory-utilization" not in args
    assert args[args.index("--max-model-len") + 1] == "2048"
    assert engine_env(m) == {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "0"}


def test_gpu_model_args():
    from serving.fleet.schema import load_fleet

    m = load_fleet(ROOT / "deploy" / "fleet.gpu.example.yaml").model("llama-3.3-70b")
    args = engine_cli_args(m, m.source.hf)
    assert args[args.index("--tensor-parallel-size") + 1] == "4"
    assert "--gpu-memory-utilization" in args and "--enforce-eager" not in args
    assert engine_env(m) == {}


async def test_model_server_protocol():
    server = ModelServer("m", FakeEngine("m", max_model_len=16))
    await server.start()
    items = [i async for i in server.serve("chat", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})]
    assert items[0] == {"type": "started"}  # first, always: a replica took the request
    items = items[1:]
    assert items[0]["type"] == "response" and len(items) == 1
    items = [
        i
        async for i in server.serve(
            "chat", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "stream": True}
        )
    ]
    assert items[1] == {"type": "stream"} and items[-1] == "data: [DONE]\n\n"
    items = [i async for i in server.serve("chat", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50})]
    assert items.pop(0) == {"type": "started"}
    assert items == [
        {
            "type": "error",
            "status": 400,
            "message": items[0]["message"],
            "param": "messages",
            "code": None,
            "error_type": "invalid_request_error",
        }
    ]
    assert await server.count_prompt_tokens("completion", {"prompt": "a b c"}) == {"tokens": 3}
    assert server.inflight() == 0
