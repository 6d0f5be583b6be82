"""The Locust side: a streaming OpenAI user and the shape wrapper.

The user speaks HTTP through geventhttpclient (the client under Locust's
FastHttpUser) and reads the SSE body line by line as it arrives, so each
timestamp is taken when its chunk is read. Timing and parsing live in the
pure :class:`loadtests.metrics.StreamTimer`; this module only moves bytes and
reports every request through `events.request.fire` (Locust's UI, CSV and
distributed workers see it), plus a `TTFT` pseudo-request per stream.

The run's state (the :class:`~loadtests.workload.Workload`) is attached to the
Locust environment as `environment.petit_workload`: no globals.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import gevent
from geventhttpclient import HTTPClient
from locust import LoadTestShape, User, constant, task

from loadtests.metrics import RequestSample, StreamTimer, fill_from_body
from loadtests.workload import Job, Workload


def split_target(target: str) -> tuple[str, str]:
    """`http://h:8000/v1` -> (`http://h:8000`, ``): the user adds `/v1/...` itself."""
    parts = urlsplit(target.rstrip("/"))
    prefix = parts.path[:-3] if parts.path.endswith("/v1") else parts.path
    return f"{parts.scheme}://{parts.netloc}", prefix


class OpenAIStreamUser(User):
    """Sends the workload's jobs to an OpenAI-compatible endpoint, one at a time."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.workload: Workload = self.environment.petit_workload  # type: ignore[attr-defined]
        if self.workload.t0 is None:  # a distributed worker: its run starts with its first user
            self.workload.t0 = time.perf_counter()
        base, self.prefix = split_target(self.host or "")
        self.tenant = self.workload.next_tenant()  # the user sends this tenant's key for its whole life
        timeout = self.workload.spec.request_timeout_s
        self.http = HTTPClient.from_url(
            base, concurrency=1, connection_timeout=min(timeout, 10.0), network_timeout=timeout
        )

    def on_stop(self) -> None:
        self.http.close()

    @task
    def one_request(self) -> None:
        job = self.workload.next_job()
        if job is None:  # trace exhausted: idle until the run ends
            gevent.sleep(0.5)
            return
        if job.due_s is not None and self.workload.t0 is not None:
            delay = self.workload.t0 + job.due_s - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            else:
                self.workload.lateness_s.append(-delay)
            if self.workload.stopping or job.due_s >= self.workload.spec.duration_s:
                return  # due after the run's end (a worker's clock may lag the master's): not sent
        self._run(job)
        if self.workload.spec.think_time_s and job.due_s is None:
            gevent.sleep(self.workload.spec.think_time_s)

    def _run(self, job: Job) -> None:
        wl = self.workload
        payload = json.dumps(wl.body(job)).encode()
        sent = time.perf_counter()
        sample = wl.new_sample(sent, job, self.tenant)
        answer = ""
        try:
            with gevent.Timeout(wl.spec.request_timeout_s, TimeoutError("request timed out")):
                answer = self._exchange(payload, sample, sent)
        except TimeoutError as err:
            _failed(sample, "timeout", str(err), sent)
        except (OSError, ConnectionError) as err:
            _failed(sample, "connection", f"{type(err).__name__}: {err}", sent)
        except Exception as err:  # a broken response must not kill the user: count it
            _failed(sample, "client_error", f"{type(err).__name__}: {err}", sent)
        wl.finish(sample, job, answer)
        self._report(sample)

    def _exchange(self, payload: bytes, sample: RequestSample, sent: float) -> str:
        resp = self.http.post(
            self.prefix + self.workload.path(),
            body=payload,
            headers={
                "content-type": "application/json",
                "accept": "text/event-stream",
                **self.workload.request_headers(self.tenant),
            },
        )
        try:
            sample.status = resp.status_code
            self.workload.apply_headers(sample, resp.get)
            if resp.status_code != 200:
                _failed(sample, f"http_{resp.status_code}", _error_text(resp.read()), sent)
                return ""
            if not self.workload.spec.stream:
                body = json.loads(resp.read())
                return fill_from_body(sample, body, sent, time.perf_counter())
            timer = StreamTimer(sample, sent)
            while True:
                line = resp.readline(b"\n")
                if not line:
                    break
                timer.line(line.decode("utf-8", "replace"), time.perf_counter())
            timer.finish(time.perf_counter())
            return timer.text
        finally:
            resp.release()

    def _report(self, s: RequestSample) -> None:
        fire = self.environment.events.request.fire
        name = f"{self.workload.spec.endpoint} {s.requested_model}" + (f" [{s.tenant}]" if s.tenant else "")
        exc = None if s.ok else RuntimeError(f"{s.error_type}: {s.error or ''}"[:200])
        fire(
            request_type="STREAM" if self.workload.spec.stream else "POST",
            name=name,
            response_time=(s.e2e_s or 0.0) * 1000,
            response_length=s.output_tokens or 0,
            exception=exc,
            context={"model": s.model, "route_reason": s.route_reason},
        )
        if s.ok and s.ttft_s is not None and self.workload.spec.stream:
            fire(
                request_type="TTFT",
                name=name,
                response_time=s.ttft_s * 1000,
                response_length=0,
                exception=None,
                context={},
            )


def _failed(sample: RequestSample, error_type: str, message: str, sent: float) -> None:
    sample.ok = False
    sample.error_type = sample.error_type or error_type
    sample.error = sample.error or message[:300]
    if sample.e2e_s is None:
        sample.e2e_s = time.perf_counter() - sent


def _error_text(raw: bytes) -> str:
    try:
        body = json.loads(raw)
        err = body.get("error", body) if isinstance(body, dict) else body
        return str(err.get("message", err) if isinstance(err, dict) else err)[:300]
    except (ValueError, AttributeError):
        return raw[:300].decode("utf-8", "replace")


def shape_class(pure_shape) -> type[LoadTestShape]:
    """A Locust LoadTestShape whose tick() is the pure shape's tick(run time).

    After the shape's end it keeps the last user count: the runner, not the
    shape, ends the run, after letting requests in flight finish (stop grace).
    """

    class ScenarioShape(LoadTestShape):
        last = None

        def tick(self):
            now = pure_shape.tick(self.get_run_time())
            if now is not None:
                self.last = now
            return self.last

    return ScenarioShape
