"""What each request sends and how a finished request is recorded: the run's state.

A :class:`Workload` is built once per run and handed to every Locust user
(no globals). It is plain Python, driven by the users; pure module (no
Locust, no I/O).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from loadtests.metrics import UNFINISHED, RequestSample
from loadtests.pricing import PriceTable
from loadtests.prompts import Prompt, SyntheticPrompts, is_correct
from loadtests.scenario import ScenarioSpec
from loadtests.shapes import ArrivalSchedule
from loadtests.tenant_traffic import DOWNGRADE_HEADER, TenantAssigner


@dataclass(frozen=True)
class Job:
    index: int
    prompt: Prompt
    max_tokens: int
    due_s: float | None = None  # trace replay: send at this time after the run start
    model: str = "auto"  # the `model` sent


class Workload:
    """Hands out jobs, builds request bodies and collects every raw sample."""

    def __init__(
        self,
        spec: ScenarioSpec,
        prompts: SyntheticPrompts | list[Prompt],
        prices: PriceTable,
        schedule: ArrivalSchedule | None = None,
        tenant_keys: dict[str, str] | None = None,
    ):
        """`tenant_keys`: tenant name -> API key, for every tenant of `spec` (see tenant_traffic.tenant_keys)."""
        self.spec = spec
        self.prompts = prompts
        self.prices = prices
        self.schedule = schedule
        self.samples: list[RequestSample] = []
        self.lateness_s: list[float] = []  # trace replay: how late arrivals were sent
        self._ids = count()
        self.t0: float | None = None  # perf_counter at the run start
        self.in_flight: dict[int, RequestSample] = {}  # sent, not yet finished
        self.stopping = False  # the run is over: users send nothing new
        self.id_offset, self.id_step = 0, 1  # distributed: worker k of n numbers requests k, k+n, ...
        self._keys = dict(tenant_keys or {})
        missing = [t.name for t in spec.tenants if t.name not in self._keys]
        if missing:
            raise ValueError(f"no API key for tenants {missing}")
        self._tenants = (
            TenantAssigner([t.name for t in spec.tenants], [t.share for t in spec.tenants]) if spec.tenants else None
        )

    def next_tenant(self) -> str | None:
        """The tenant of a user starting now (None: the scenario has no tenants)."""
        return None if self._tenants is None else self._tenants.next()

    def request_headers(self, tenant: str | None) -> dict[str, str]:
        """The headers that make a request `tenant`'s (its API key); none without a tenant."""
        return {} if tenant is None else {"authorization": f"Bearer {self._keys[tenant]}"}

    def probe_headers(self) -> dict[str, str]:
        """Headers for the reachability check and the /v1/models polls: the first tenant's key, if any."""
        return self.request_headers(self.spec.tenants[0].name) if self.spec.tenants else {}

    def next_job(self) -> Job | None:
        """The next request to send; None when a trace is exhausted."""
        if self.stopping:
            return None
        models = self.spec.requested_models
        if self.schedule is None:
            i = next(self._ids) * self.id_step + self.id_offset
            return Job(i, self._prompt(i, None), self.spec.max_tokens, None, models[i % len(models)])
        taken = self.schedule.take()
        if taken is None:
            return None
        i, req = taken
        i = i * self.id_step + self.id_offset
        return Job(i, self._prompt(i, req.input_tokens), req.output_tokens, req.at_s, models[i % len(models)])

    def _prompt(self, i: int, input_tokens: int | None) -> Prompt:
        if isinstance(self.prompts, list):
            # with n requested models, requests i..i+n-1 ask each model the same prompt (a fair comparison)
            return self.prompts[(i // len(self.spec.requested_models)) % len(self.prompts)]
        syn = self.spec.prompts.synthetic
        return self.prompts.make(input_tokens or (syn.input_tokens if syn else 128), i)

    def path(self) -> str:
        return "/v1/chat/completions" if self.spec.endpoint == "chat" else "/v1/completions"

    def body(self, job: Job) -> dict:
        """The JSON body; streams ask for usage so TPOT uses the server's token count."""
        body: dict = {"model": job.model, "max_tokens": job.max_tokens, "stream": self.spec.stream}
        if self.spec.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": job.prompt.text}]
        else:
            body["prompt"] = job.prompt.text
        if self.spec.stream:
            body["stream_options"] = {"include_usage": True}
        body.update(self.spec.extra_body)
        return body

    def new_sample(self, now: float, job: Job, tenant: str | None = None) -> RequestSample:
        """A sample for `job` being sent now (for `tenant`); it stays in flight until :meth:`finish`."""
        start = now - (self.t0 if self.t0 is not None else now)
        sample = RequestSample(
            start_s=start, requested_model=job.model, warmup=start < self.spec.warmup_s, tenant=tenant
        )
        self.in_flight[id(sample)] = sample
        return sample

    def close_unfinished(self, now: float, grace_s: float) -> int:
        """Record every request still in flight as unfinished; returns how many."""
        t0 = self.t0 if self.t0 is not None else now
        left = list(self.in_flight.values())
        for sample in left:
            sample.ok, sample.error_type = False, UNFINISHED
            sample.error = f"no answer by the end of the run plus {grace_s:g} s grace"
            sample.e2e_s = now - t0 - sample.start_s
            self.samples.append(sample)
        self.in_flight.clear()
        return len(left)

    def apply_headers(self, sample: RequestSample, get) -> None:
        """Petit's response headers (absent on plain OpenAI servers). `get(name)` -> str | None."""
        sample.model = get("x-petit-model") or sample.model
        sample.route_reason = get("x-petit-route-reason")
        sample.downgrade = get(DOWNGRADE_HEADER)
        cost, basis = get("x-petit-cost-usd"), get("x-petit-cost-basis")
        if cost is not None and basis == "usage":
            sample.cost_usd, sample.cost_basis = float(cost), "usage"
        elif cost is not None:
            sample.cost_usd, sample.cost_basis = float(cost), "estimate"

    def finish(self, sample: RequestSample, job: Job, answer: str) -> RequestSample:
        """Price from the table when the server gave no exact cost; grade labelled prompts; keep it."""
        if sample.ok and sample.cost_basis != "usage":
            table = self.prices.cost_usd(
                sample.model or sample.requested_model, sample.prompt_tokens, sample.output_tokens
            )
            if table is not None:
                sample.cost_usd, sample.cost_basis = table, "price_table"
        if sample.ok:
            sample.correct = is_correct(answer, job.prompt)
        self.in_flight.pop(id(sample), None)
        if sample.error_type != UNFINISHED:  # an unfinished one is already recorded
            self.samples.append(sample)
        return sample
