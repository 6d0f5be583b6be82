"""A fake OpenAI-compatible server with controlled timing, for tests and the load-generator benchmark.

    python -m loadtests.fake_server --port 9100 --ttft 0.05 --itl 0.01 [--petit]

Streams (`stream: true`) send a role-only chunk at once, the first content
chunk `--ttft` seconds after the request arrived, then one content chunk (one
token) every `--itl` seconds, then the usage chunk when
`stream_options.include_usage` is set, then `[DONE]`. The number of tokens is
the request's `max_tokens` / `max_completion_tokens` (default 16). With
`--petit` it behaves like Petit: `x-petit-*` headers and a `"petit"` field in
the usage chunk; `model: auto` alternates between the `--models`.

`--max-concurrent N` streams at most N requests per model at once (the rest
wait, and a waiting stream's tokens are timed from when it got its slot), like
Petit's fake engine (`engine.kind: fake`): with the same `--ttft`, `--itl` and
cap it is the bare-server baseline of `benchmarks/gateway.py`.

`--fail-every N` answers every N-th request with HTTP 500; `--fail-status S`
answers every request with S.

It also plays the autoscaler (autoscaler/admin.py): `POST /admin/budget
{"gpus": N}` sets the budget (no budget: unlimited); `GET /admin/budget` answers
like the real admin (`gpus`, `unit`, plus `history`: every POST); `GET
/admin/plan` the last plan's summary; `GET /metrics` the autoscaler's gauges.
The large model (the last of `--models`) needs a budget of 2: below that it has
no ready replica (`/v1/models`, with `--petit`) and `auto` answers with the
small model only; from 2 up (or unlimited) `auto` alternates again. A request
naming a model is answered whatever the budget.

`--answers FILE` (a labelled prompt file, see prompts.py): a chat prompt found in
it is answered with its expected text by the large model, and by the small one
for every third line of the file (the first, fourth, ...), else with a wrong answer.

`--tenant NAME:KEY[:MODE]` (repeatable) plays Petit's tenants: then every API call
needs `Authorization: Bearer KEY` of a tenant (401 otherwise). MODE `ok` (the
default) answers as usual; `downgrade` is a tenant over budget in downgrade mode:
`auto` is answered by the small model with `x-petit-tenant-downgrade: budget:day`,
a named larger model gets 402; `reject` answers 429 `tenant_budget_exceeded`.

Prints `READY http://HOST:PORT` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from aiohttp import web

from loadtests.prompts import load_prompt_file

PRICE_PER_TOKEN = {"small": 0.2e-6, "large": 1.0e-6}


class FakeOpenAI:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.models = args.models.split(",")
        self.count = 0
        self.auto_count = 0  # `auto` requests: alternation independent of other requested models
        self.budgets: list[dict] = []
        self.budget: float | None = None  # None: unlimited
        self.t0 = time.monotonic()
        self.slots: dict[str, asyncio.Semaphore] = {}  # per model, with --max-concurrent
        labelled = load_prompt_file(args.answers) if args.answers else []
        self.tenants = dict(_tenant(t) for t in args.tenant)  # key -> (name, mode)
        self.answers = {p.text: (i, p.expected) for i, p in enumerate(labelled) if p.expected is not None}

    @property
    def large_up(self) -> bool:
        return self.budget is None or self.budget >= 2

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.completions)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_get("/v1/models", self.list_models)
        app.router.add_get("/health", self.health)
        app.router.add_post("/admin/budget", self.set_budget)
        app.router.add_get("/admin/budget", self.get_budget)
        app.router.add_get("/admin/plan", self.get_plan)
        app.router.add_get("/metrics", self.metrics)
        return app

    async def health(self, _: web.Request) -> web.Response:
        return web.Response(text="ready")

    def _ready(self) -> dict[str, int]:
        return {m: 0 if m == self.models[-1] and not self.large_up else 1 for m in self.models}

    def _refused(self, request: web.Request) -> web.Response | None:
        """401 for a missing or unknown key when tenants are set; None when the caller may go on."""
        if not self.tenants:
            return None
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and key.strip() in self.tenants:
            return None
        err = {"message": "missing or invalid API key", "type": "invalid_request_error", "code": "invalid_api_key"}
        return web.json_response({"error": err}, status=401)

    def _tenant_mode(self, request: web.Request) -> str:
        key = request.headers.get("authorization", "").partition(" ")[2].strip()
        return self.tenants[key][1] if key in self.tenants else "ok"

    async def list_models(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        data: list[dict] = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models + ["auto"]]
        if self.args.petit:
            for d in data[:-1]:
                d["petit"] = {"tier": self._tier(d["id"]), "ready_replicas": self._ready()[d["id"]]}
        return web.json_response({"object": "list", "data": data})

    def _tier(self, model: str) -> str:
        return "small" if model == self.models[0] else "large"

    def _shares(self) -> dict[str, float]:
        up = [m for m, n in self._ready().items() if n]
        return {m: 1 / len(up) for m in up}

    async def get_budget(self, _: web.Request) -> web.Response:
        return web.json_response({"gpus": self.budget, "unit": "gpus", "history": self.budgets})

    async def get_plan(self, _: web.Request) -> web.Response:
        shares = self._shares()
        routing = {
            "shares": shares,
            "strong_share": shares.get(self.models[-1], 0.0),
            "constrained": not self.large_up,
            "reason": "fake",
        }
        targets = {m: {"replicas": n, "reason": "fake"} for m, n in self._ready().items()}
        return web.json_response({"plan": {"reason": "fake", "targets": targets, "routing": routing}})

    async def metrics(self, _: web.Request) -> web.Response:
        lines = ["# TYPE petit_route_share gauge"]
        lines += [f'petit_route_share{{tier="{self._tier(m)}"}} {v}' for m, v in self._shares().items()]
        lines += ["# TYPE petit_autoscaler_target_replicas gauge"]
        lines += [f'petit_autoscaler_target_replicas{{model="{m}"}} {n}' for m, n in self._ready().items()]
        if self.budget is not None:
            lines += ["# TYPE petit_autoscaler_gpu_supply gauge", f"petit_autoscaler_gpu_supply {self.budget}"]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def set_budget(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("gpus"), int) or body["gpus"] < 0:
            return web.json_response({"error": 'body must be {"gpus": N}'}, status=400)
        self.budgets.append({"gpus": body["gpus"], "t": time.monotonic() - self.t0})
        self.budget = float(body["gpus"])
        return web.json_response({"gpus": self.budget, "unit": "gpus"})

    def _pick(self, requested: str) -> str:
        if requested != "auto":
            return requested
        up = [m for m, n in self._ready().items() if n]
        self.auto_count += 1
        return up[self.auto_count % len(up)]

    def _text(self, body: dict, model: str, i: int) -> str:
        """Content chunk i: a labelled prompt's answer on the first line, then filler tokens."""
        answer = self._answer(body, model)
        if answer is None:
            return "tok "
        return answer if i == 0 else "\ntok"

    def _answer(self, body: dict, model: str) -> str | None:
        """The expected answer (a labelled prompt the model knows), a wrong one, or None (not labelled)."""
        messages = body.get("messages") or [{}]
        found = self.answers.get(str(messages[-1].get("content", "")))
        if found is None:
            return None
        line, expected = found
        return expected if model == self.models[-1] or line % 3 == 0 else "no idea"

    def _headers(self, model: str, n_out: int, basis: str, downgraded: bool = False) -> dict:
        down = {"x-petit-tenant-downgrade": "budget:day"} if downgraded else {}
        if not self.args.petit:
            return down
        tier = self._tier(model)
        return {
            **down,
            "x-petit-model": model,
            "x-petit-route-reason": "cheapest_fit",
            "x-petit-cost-usd": f"{n_out * PRICE_PER_TOKEN[tier]:.10f}",
            "x-petit-cost-basis": basis,
        }

    async def completions(self, request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        self.count += 1
        body = await request.json()
        if self.args.fail_status or (self.args.fail_every and self.count % self.args.fail_every == 0):
            status = self.args.fail_status or 500
            return web.json_response({"error": {"message": "injected failure", "type": "server_error"}}, status=status)
        refused = self._refused(request)
        if refused is not None:
            return refused
        mode, requested = self._tenant_mode(request), body.get("model", "auto")
        if mode == "reject" or (mode == "downgrade" and requested not in ("auto", self.models[0])):
            status, why = (429, "rejects") if mode == "reject" else (402, "downgrades")
            err = {"message": f"the tenant's budget is spent (it {why})", "code": "tenant_budget_exceeded"}
            return web.json_response({"error": err}, status=status, headers={"Retry-After": "60"})
        model = self.models[0] if mode == "downgrade" else self._pick(requested)
        down = mode == "downgrade"
        n_out = int(body.get("max_completion_tokens") or body.get("max_tokens") or 16)
        prompt = json.dumps(body.get("messages") or body.get("prompt") or "")
        usage = {
            "prompt_tokens": max(1, len(prompt.split())),
            "completion_tokens": n_out,
            "total_tokens": n_out + max(1, len(prompt.split())),
        }
        chat = request.path.endswith("chat/completions")
        if not body.get("stream"):
            await asyncio.sleep(self.args.ttft + self.args.itl * (n_out - 1))
            text = "".join(self._text(body, model, i) for i in range(n_out))
            choice = (
                {"index": 0, "message": {"role": "assistant", "content": text}} if chat else {"index": 0, "text": text}
            )
            return web.json_response(
                {"id": "x", "object": "chat.completion", "model": model, "choices": [choice], "usage": usage},
                headers=self._headers(model, n_out, "usage", down),
            )
        headers = {"content-type": "text/event-stream", **self._headers(model, n_out, "estimate", down)}
        return await self._stream(request, body, model, n_out, usage, chat, arrived, headers)

    async def _stream(self, request, body, model, n_out, usage, chat, arrived, headers) -> web.StreamResponse:
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)

        def chunk(content: str | None) -> bytes:
            if chat:
                delta = {"content": content} if content is not None else {"role": "assistant", "content": ""}
                obj = {
                    "id": "x",
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [{"index": 0, "delta": delta}],
                }
            else:
                obj = {
                    "id": "x",
                    "object": "text_completion",
                    "model": model,
                    "choices": [{"index": 0, "text": content or ""}],
                }
            return f"data: {json.dumps(obj)}\n\n".encode()

        slots = self.slots.setdefault(model, asyncio.Semaphore(self.args.max_concurrent or 1))
        try:
            if self.args.max_concurrent:
                waits = slots.locked()
                await slots.acquire()
                arrived = time.perf_counter() if waits else arrived
            try:
                await self._tokens(resp, body, model, n_out, usage, chat, arrived, chunk)
            finally:
                if self.args.max_concurrent:
                    slots.release()
        except ConnectionResetError:  # the client went away (end of a load test): nothing to do
            pass
        return resp

    async def _tokens(self, resp, body, model, n_out, usage, chat, arrived, chunk) -> None:
        if chat:
            await resp.write(chunk(None))
        for i in range(n_out):
            due = arrived + self.args.ttft + i * self.args.itl
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await resp.write(chunk(self._text(body, model, i)))
        if (body.get("stream_options") or {}).get("include_usage"):
            last = {"id": "x", "object": "chat.completion.chunk", "model": model, "choices": [], "usage": usage}
            if self.args.petit:
                tier = self._tier(model)
                last["petit"] = {"model": model, "cost_usd": n_out * PRICE_PER_TOKEN[tier]}
            await resp.write(f"data: {json.dumps(last)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()


def _tenant(text: str) -> tuple[str, tuple[str, str]]:
    """`NAME:KEY[:MODE]` -> (key, (name, mode)). Raises ValueError for another shape or mode."""
    name, key, *rest = text.split(":")
    mode = rest[0] if rest else "ok"
    if not name or not key or len(rest) > 1 or mode not in ("ok", "downgrade", "reject"):
        raise ValueError(f"--tenant wants NAME:KEY[:ok|downgrade|reject], got {text!r}")
    return key, (name, mode)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtests.fake_server", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9100)
    p.add_argument("--ttft", type=float, default=0.05, help="seconds to the first content chunk")
    p.add_argument("--itl", type=float, default=0.01, help="seconds between content chunks")
    p.add_argument("--max-concurrent", type=int, default=0, help="streams per model at once (0: no limit)")
    p.add_argument("--models", default="fake-small,fake-large", help="comma-separated; the first is tier small")
    p.add_argument("--petit", action="store_true", help="send Petit's headers and usage-chunk field")
    p.add_argument("--fail-every", type=int, default=0, help="answer every N-th request with HTTP 500")
    p.add_argument("--fail-status", type=int, default=0, help="answer every request with this status")
    p.add_argument("--answers", help="a labelled prompt file: answer its prompts (see the module docstring)")
    p.add_argument(
        "--tenant", action="append", default=[], metavar="NAME:KEY[:MODE]", help="a tenant (MODE ok|downgrade|reject)"
    )
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    runner = web.AppRunner(FakeOpenAI(args).app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port, backlog=1024).start()
    print(f"READY http://{args.host}:{args.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        import uvloop  # optional: only makes the fake faster

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
