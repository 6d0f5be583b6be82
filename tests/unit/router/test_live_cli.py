from serving.router.training.live import configurations


def test_configurations_pick_cheapest_and_strongest_then_policies():
    models = [
        {"id": "big", "petit": {"tier": "large", "price_per_replica_hour": 2.0}},
        {"id": "tiny", "petit": {"tier": "small", "price_per_replica_hour": 0.1}},
        {"id": "auto", "petit": {"alias": True}},
    ]
    assert configurations(models, ["learned"]) == [
        ("tiny only", "tiny", None),
        ("big only", "big", None),
        ("auto (learned)", "auto", "learned"),
    ]


async def test_ask_retries_a_full_queue_and_reports_other_errors():
    import asyncio

    import httpx

    from serving.router.training.live import RETRIES_429, _ask
    from serving.router.training.live_scorer import Question

    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) <= 2:
            return httpx.Response(429, headers={"retry-after": "0"}, json={"error": {"message": "overloaded"}})
        return httpx.Response(200, headers={"x-petit-model": "m"}, json={"choices": [{"message": {"content": "4"}}]})

    q = Question("What is 2 + 2?", "4", "numeric")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://x") as c:
        row = await _ask(c, asyncio.Semaphore(1), q, "m", None, 8)
    assert row["ok"] and row["correct"] and len(calls) == 3
    calls.clear()

    def always_full(request):
        calls.append(1)
        return httpx.Response(429, headers={"retry-after": "0"}, json={"error": {"message": "overloaded"}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(always_full), base_url="http://x") as c:
        row = await _ask(c, asyncio.Semaphore(1), q, "m", None, 8)
    assert not row["ok"] and "HTTP 429" in row["error"] and len(calls) == RETRIES_429 + 1
