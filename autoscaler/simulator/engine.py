"""The fleet simulator's core: nodes, replicas with continuous batching, queues.

Discrete-time: the clock advances in `tick_s` steps; arrivals, control periods
and GPU events are events on that clock, and within a step each replica runs
``tick / iteration_time`` engine iterations (chunked prefill FIFO, then one
token per decoding sequence per iteration). See profiles.py for the timing model.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from autoscaler.simulator.profiles import ReplicaProfile
from serving.fleet.tenants import PRIORITIES

OK, REJECTED, FAILED, TOO_LONG = 1, 2, 3, 4
"""Request outcomes: answered; rejected (429, queue timeout, never answered); failed (its replica
died after the first token); too long for every context window (the gateway answers 400)."""


@dataclass
class Requests:
    """All requests of a run; results are filled in place."""

    arrival: np.ndarray
    n_in: np.ndarray
    n_out: np.ndarray
    model: np.ndarray = field(init=False)
    auto: np.ndarray = field(init=False)
    priority: np.ndarray = field(init=False)  # the tenant's priority class index; len(PRIORITIES): no tenant
    ttft: np.ndarray = field(init=False)
    done: np.ndarray = field(init=False)
    status: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.arrival)
        self.model = np.full(n, -1, dtype=int)
        self.auto = np.ones(n, dtype=bool)
        self.priority = np.full(n, len(PRIORITIES), dtype=int)
        self.ttft = np.full(n, np.nan)
        self.done = np.full(n, np.nan)
        self.status = np.zeros(n, dtype=int)


class Replica:
    """One model replica on one node."""

    def __init__(self, model: int, gpus: float, node: int, profile: ReplicaProfile, now: float):
        self.model, self.gpus, self.node, self.p = model, gpus, node, profile
        self.ready_at = now + profile.startup_s
        self.draining = False
        self.ids = np.empty(0, dtype=int)
        self.pre = np.empty(0)
        self.dec = np.empty(0)
        self.kv = 0.0
        # The prefill chunk of the iteration in progress and its tokens not yet processed: an
        # iteration keeps its chunk until done, so a tick shorter than an iteration neither
        # shrinks the chunk with the prompt's remainder (prefill slowing geometrically) nor lets
        # a prompt that arrived mid-iteration join it.
        self.chunk = 0.0
        self.chunk_left = 0.0

    def ready(self, now: float) -> bool:
        return now >= self.ready_at

    @property
    def active(self) -> int:
        return len(self.ids)

    def room(self, need_kv: float) -> bool:
        return self.active < self.p.max_num_seqs and self.kv + need_kv <= self.p.kv_tokens

    def admit(self, rid: int, n_in: float, n_out: float) -> None:
        self.ids = np.append(self.ids, rid)
        self.pre = np.append(self.pre, max(n_in, 1.0))
        self.dec = np.append(self.dec, max(n_out, 1.0))
        self.kv += n_in + n_out

    def step(self, now: float, dt: float, req: Requests) -> None:
        """Run `dt` seconds of engine iterations; record TTFT and completions."""
        if not len(self.ids):
            return
        p = self.p
        prefilling = self.pre > 0
        decoding = ~prefilling
        b_dec = int(decoding.sum())
        pending = float(self.pre[prefilling].sum())
        if pending <= 0:
            self.chunk = self.chunk_left = 0.0
        elif self.chunk_left <= 1e-9:
            self.chunk = self.chunk_left = min(max(p.max_batched_tokens - b_dec, 1), pending)
        chunk = self.chunk
        tau_ms = p.t0_ms + p.t1_ms * b_dec + p.prefill_ms_per_token * chunk
        if p.kv_ms_per_token and b_dec:  # attention reads every decoding sequence's context
            ids = self.ids[decoding]
            tau_ms += p.kv_ms_per_token * float((req.n_in[ids] + req.n_out[ids] - self.dec[decoding]).sum())
        iters = dt * 1000.0 / tau_ms
        if pending > 0:
            self._prefill(now, dt, iters * chunk, prefilling, req)
            self.chunk_left = max(self.chunk_left - iters * chunk, 0.0)
        self.dec[decoding] -= iters
        finished = self.dec <= 0
        if finished.any():
            done_ids = self.ids[finished]
            req.done[done_ids] = now + dt
            req.status[done_ids] = OK
            self.kv -= float((req.n_in[done_ids] + req.n_out[done_ids]).sum())
            keep = ~finished
            self.ids, self.pre, self.dec = self.ids[keep], self.pre[keep], self.dec[keep]

    def _prefill(self, now: float, dt: float, budget: float, prefilling: np.ndarray, req: Requests) -> None:
        idx = np.nonzero(prefilling)[0]
        cum = np.cumsum(self.pre[idx])
        done = cum <= budget + 1e-9
        fin = idx[done]
        if len(fin):
            rids = self.ids[fin]
            first = np.isnan(req.ttft[rids])
            at = now + dt * np.minimum(cum[done] / max(budget, 1e-9), 1.0)
            req.ttft[rids[first]] = at[first] - req.arrival[rids[first]] + self.p.ttft_overhead_ms / 1000.0
            self.pre[fin] = 0.0
            self.dec[fin] -= 1.0  # the first token comes out of the prefill
        rest = idx[~done]
        if len(rest):
            used = cum[done][-1] if done.any() else 0.0
            self.pre[rest[0]] -= budget - used


class Cluster:
    """Nodes of `per_node` GPUs; replicas placed best-fit; whole nodes fail and return, in a
    seeded random order (the same for every policy of a scenario), so a fleet packed onto
    the first nodes is not spared by construction."""

    def __init__(self, total: int, per_node: int, seed: int = 0):
        self.per_node = per_node
        n = total // per_node
        self.alive = [True] * n
        self.used = [0.0] * n
        self.rank = [0] * n  # nodes with the highest rank go first
        for r, i in enumerate(np.random.default_rng(seed + 104729).permutation(n)):
            self.rank[int(i)] = r

    @property
    def gpus(self) -> float:
        return float(sum(self.per_node for a in self.alive if a))

    @property
    def held(self) -> float:
        return float(sum(u for u, a in zip(self.used, self.alive) if a))

    def place(self, gpus: float) -> int | None:
        """Best fit: the live node with the fewest free GPUs that still fit (bin packing, as
        Kubernetes' MostAllocated scoring or Ray's PACK), so small replicas do not scatter
        over nodes a large one needs whole."""
        fits = [(self.per_node - u, i) for i, (a, u) in enumerate(zip(self.alive, self.used)) if a]
        fits = [(free, i) for free, i in fits if free >= gpus - 1e-9]
        if not fits:
            return None
        i = min(fits)[1]
        self.used[i] += gpus
        return i

    def release(self, node: int, gpus: float) -> None:
        self.used[node] = max(0.0, self.used[node] - gpus)

    def set_fraction(self, fraction: float) -> list[int]:
        """Keep round(fraction x nodes) nodes alive (the lowest ranks); returns nodes that just died."""
        n_alive = round(fraction * len(self.alive))
        died = [i for i in range(len(self.alive)) if self.alive[i] and self.rank[i] >= n_alive]
        for i in range(len(self.alive)):
            self.alive[i] = self.rank[i] < n_alive
            if i in died:
                self.used[i] = 0.0
        return died


class Fleet:
    """Replicas, pending replicas and queues per model; reconciles replica targets."""

    def __init__(self, gpus: list[float], profiles: list[ReplicaProfile], max_queue: list[int], cluster: Cluster):
        self.gpus, self.profiles, self.max_queue, self.cluster = gpus, profiles, max_queue, cluster
        self.replicas: list[list[Replica]] = [[] for _ in gpus]
        self.pending = [0] * len(gpus)
        self.queues: list[deque[int]] = [deque() for _ in gpus]

    def count(self, m: int) -> int:
        return sum(1 for r in self.replicas[m] if not r.draining) + self.pending[m]

    def ready(self, m: int, now: float) -> int:
        return sum(1 for r in self.replicas[m] if not r.draining and r.ready(now))

    def reconcile(self, m: int, target: int, now: float) -> None:
        """Create or remove replicas of model `m` towards `target`; pending ones are placed when GPUs allow."""
        diff = target - self.count(m)
        if diff > 0:
            self.pending[m] += diff
        while diff < 0:
            diff += 1
            if self.pending[m]:
                self.pending[m] -= 1
                continue
            live = [r for r in self.replicas[m] if not r.draining]
            victim = max(live, key=lambda r: (not r.ready(now), r.ready_at if not r.ready(now) else -r.active))
            victim.draining = True
        self.place_pending(now)

    def place_pending(self, now: float) -> None:
        for m in sorted(range(len(self.gpus)), key=lambda m: -self.gpus[m]):
            while self.pending[m]:
                node = self.cluster.place(self.gpus[m])
                if node is None:
                    break
                self.pending[m] -= 1
                self.replicas[m].append(Replica(m, self.gpus[m], node, self.profiles[m], now))

    def kill_nodes(self, nodes: list[int], req: Requests) -> None:
        """Replicas on dead nodes vanish; requests still in prefill go back to the queue head
        (retried), streams that had begun fail; the replicas come back as pending (as
        Kubernetes would reschedule the pods)."""
        for m, reps in enumerate(self.replicas):
            for r in [r for r in reps if r.node in nodes]:
                reps.remove(r)
                for rid in r.ids[::-1]:
                    if np.isnan(req.ttft[rid]):
                        self.queues[m].appendleft(int(rid))
                    else:
                        req.status[rid] = FAILED
                if not r.draining:
                    self.pending[m] += 1

    def step(self, now: float, dt: float, req: Requests, timeout_s: float) -> None:
        for m, reps in enumerate(self.replicas):
            self._admit(m, now, req, timeout_s)
            for r in reps:
                if r.ready(now):
                    r.step(now, dt, req)
            for r in [r for r in reps if r.draining and not r.active]:
                reps.remove(r)
                self.cluster.release(r.node, r.gpus)

    def _admit(self, m: int, now: float, req: Requests, timeout_s: float) -> None:
        q = self.queues[m]
        open_reps = [r for r in self.replicas[m] if not r.draining and r.ready(now)]
        while q:
            rid = q[0]
            if now - req.arrival[rid] > timeout_s and np.isnan(req.ttft[rid]):
                q.popleft()
                req.status[rid] = REJECTED
                continue
            need = req.n_in[rid] + req.n_out[rid]
            fits = [r for r in open_reps if r.room(need)]
            if not fits:
                break
            q.popleft()
            min(fits, key=lambda r: r.active).admit(rid, req.n_in[rid], req.n_out[rid])

    def enqueue(self, m: int, rid: int, req: Requests) -> None:
        if len(self.queues[m]) >= self.max_queue[m] or not (self.count(m) or self.replicas[m]):
            req.status[rid] = REJECTED
            return
        self.queues[m].append(rid)

    def held_gpus(self) -> float:
        return sum(r.gpus for reps in self.replicas for r in reps)
