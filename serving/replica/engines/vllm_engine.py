"""The vLLM adapter: the only module in Petit that imports vLLM.

It builds the engine and vLLM's own OpenAI serving classes exactly as
`vllm serve` does (vLLM's argument parser, `build_async_engine_client_from_engine_args`
and `init_app_state`), so request parsing, chat templates, sampling, streaming,
usage and logprobs are vLLM's, not ours. Continuous batching is the engine's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from serving.fleet.schema import ModelConfig
from serving.replica.engines.base import EngineError, EngineLoad, Kind

_CONTEXT_HINTS = ("maximum context length", "max_model_len", "context length", "too long")


def engine_cli_args(model: ModelConfig, model_path: str) -> list[str]:
    """vLLM CLI arguments for one replica of `model` (pure; unit-tested)."""
    e = model.engine
    args = [
        "--model",
        model_path,
        "--served-model-name",
        model.id,
        "--max-model-len",
        str(e.max_model_len),
        "--max-num-seqs",
        str(e.max_num_seqs),
        "--dtype",
        e.dtype,
        "--tensor-parallel-size",
        str(e.tensor_parallel_size),
        "--max-logprobs",
        str(e.max_logprobs),
        "--disable-log-stats",
        # Privacy: vLLM never logs prompts or outputs (both off by default today; explicit here).
        "--no-enable-log-requests",
        "--no-enable-log-outputs",
    ]
    if e.max_num_batched_tokens:
        args += ["--max-num-batched-tokens", str(e.max_num_batched_tokens)]
    if model.resources.gpus > 0:
        args += ["--gpu-memory-utilization", str(e.gpu_memory_utilization)]
    if e.enforce_eager:
        args.append("--enforce-eager")
    return args


def engine_env(model: ModelConfig) -> dict[str, str]:
    """Environment variables vLLM reads at engine start (CPU settings)."""
    env: dict[str, str] = {}
    if model.engine.kv_cache_space_gib is not None:
        env["VLLM_CPU_KVCACHE_SPACE"] = str(max(1, round(model.engine.kv_cache_space_gib)))
    if model.engine.cpu_threads_bind is not None:
        env["VLLM_CPU_OMP_THREADS_BIND"] = model.engine.cpu_threads_bind
    return env


def _error_from_vllm(err: Any, kind: Kind) -> EngineError:
    info = err.error
    param = info.param
    text = info.message or ""
    if param in (None, "input_tokens") and any(h in text for h in _CONTEXT_HINTS):
        param = "messages" if kind == "chat" else "prompt"
    status = int(info.code)
    type_ = "invalid_request_error" if 400 <= status < 500 else "server_error"
    return EngineError(status, text, type_, param)


def _error_from_exception(exc: Exception, kind: Kind) -> EngineError:
    """Map an exception vLLM raised to an EngineError with vLLM's own status mapping."""
    from vllm.entrypoints.serve.exception_handling.error_response import create_error_response

    return _error_from_vllm(create_error_response(exc), kind)


class VLLMEngine:
    """An `Engine` backed by vLLM's AsyncLLM and its OpenAI serving classes."""

    def __init__(self, model: ModelConfig, model_path: str) -> None:
        self.model = model
        self.model_path = model_path
        self._stack = contextlib.AsyncExitStack()
        self._state: Any = None
        self._client: Any = None

    async def start(self) -> None:
        os.environ.update(engine_env(self.model))
        from starlette.datastructures import State
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.entrypoints.launchers.api_server.app_state import init_app_state
        from vllm.entrypoints.launchers.api_server.entry import build_async_engine_client_from_engine_args
        from vllm.entrypoints.launchers.cli_args import make_arg_parser
        from vllm.utils.argparse_utils import FlexibleArgumentParser

        args = make_arg_parser(FlexibleArgumentParser()).parse_args(engine_cli_args(self.model, self.model_path))
        engine_args = AsyncEngineArgs.from_cli_args(args)
        self._client = await self._stack.enter_async_context(build_async_engine_client_from_engine_args(engine_args))
        self._state = State()
        tasks = await self._client.get_supported_tasks()
        await init_app_state(self._client, self._state, args, tasks)

    async def generate(self, kind: Kind, body: dict) -> dict | AsyncIterator[str]:
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
        from vllm.entrypoints.openai.completion.protocol import CompletionRequest
        from vllm.entrypoints.serve.engine.protocol import ErrorResponse

        req_cls, handler = (
            (ChatCompletionRequest, self._state.openai_serving_chat.create_chat_completion)
            if kind == "chat"
            else (CompletionRequest, self._state.openai_serving_completion.create_completion)
        )
        request = self._parse(req_cls, body)
        try:
            result = await handler(request, None)
        except Exception as exc:  # vLLM raises some validation errors instead of returning them
            raise _error_from_exception(exc, kind) from None
        if isinstance(result, ErrorResponse):
            raise _error_from_vllm(result, kind)
        if hasattr(result, "model_dump"):
            return result.model_dump(exclude_none=True)
        return result

    async def count_prompt_tokens(self, kind: Kind, body: dict) -> int:
        from vllm.entrypoints.serve.engine.protocol import ErrorResponse
        from vllm.entrypoints.serve.tokenize.protocol import TokenizeChatRequest, TokenizeCompletionRequest

        if kind == "chat":
            req = self._parse(TokenizeChatRequest, {"messages": body.get("messages"), "model": self.model.id})
        else:
            prompt = body.get("prompt")
            if not isinstance(prompt, str):
                prompt = "" if prompt is None else str(prompt)
            req = self._parse(TokenizeCompletionRequest, {"prompt": prompt, "model": self.model.id})
        try:
            result = await self._state.serving_tokenization.create_tokenize(req, None)
        except Exception as exc:
            raise _error_from_exception(exc, kind) from None
        if isinstance(result, ErrorResponse):
            raise _error_from_vllm(result, kind)
        return int(result.count)

    @staticmethod
    def _parse(cls: Any, body: dict) -> Any:
        from pydantic import ValidationError

        try:
            return cls.model_validate(body)
        except ValidationError as err:
            first = err.errors()[0]
            param = ".".join(str(p) for p in first["loc"]) or None
            raise EngineError(400, f"{param}: {first['msg']}" if param else first["msg"], param=param) from None

    async def check_health(self) -> None:
        if self._client is None:
            raise RuntimeError("engine not started")
        await self._client.check_health()

    def load(self) -> EngineLoad:
        """Requests the engine holds (running or waiting), from vLLM's own output processor."""
        if self._client is None:
            return EngineLoad(0, 0)
        return EngineLoad(running=self._client.output_processor.get_num_unfinished_requests(), waiting=0)

    def shutdown(self) -> None:
        if self._client is not None:
            self._client.shutdown()
            self._client = None
