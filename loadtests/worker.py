"""One Locust worker of `petit loadtest --workers N` (or started by hand on another host).

    python -m loadtests.worker --master-host HOST --master-port PORT --index K --of T
                               --scenario FILE [--fleet FILE | --prices FILE] [--trace-dir DIR]

Builds the same workload as the master from the same scenario file, takes its
share (requests numbered K, K+T, ...; trace arrivals i with i % T == K),
streams finished samples to the master every second and, when the master
says `petit_stop`, waits up to the stop grace for its requests in flight and
sends the rest as unfinished. See loadtests/distributed.py.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

import gevent
from locust.env import Environment

from loadtests.cli import build_workload
from loadtests.config_files import LoadTestInputError
from loadtests.locust_glue import OpenAIStreamUser
from loadtests.runner import Interrupt, drain
from loadtests.scenario import load_scenario
from loadtests.shapes import ArrivalSchedule
from loadtests.workload import Workload

BATCH_S = 1.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtests.worker", description=__doc__.split("\n")[0])
    p.add_argument("--master-host", required=True)
    p.add_argument("--master-port", type=int, required=True)
    p.add_argument("--index", type=int, required=True, help="this worker's number, 0..of-1")
    p.add_argument("--of", type=int, required=True, help="how many workers in all")
    p.add_argument("--scenario", required=True)
    p.add_argument("--fleet")
    p.add_argument("--prices")
    p.add_argument("--trace-dir")
    p.add_argument("--fail-fast-s", type=float)
    return p


class _Sender:
    """Streams finished samples to the master; the last batch carries `final`."""

    def __init__(self, runner: Any, workload: Workload, index: int) -> None:
        self.runner, self.workload, self.index = runner, workload, index
        self.sent_samples = self.sent_late = 0
        self.cpu0 = time.process_time()

    def flush(self, final: bool = False) -> None:
        wl = self.workload
        batch = [s.to_dict() for s in wl.samples[self.sent_samples :]]
        late = wl.lateness_s[self.sent_late :]
        self.sent_samples, self.sent_late = len(wl.samples), len(wl.lateness_s)
        if batch or late or final:
            data = {"index": self.index, "samples": batch, "lateness_s": late, "final": final}
            data["cpu_s"] = time.process_time() - self.cpu0
            self.runner.send_message("petit_samples", data)

    def loop(self) -> None:
        while True:
            gevent.sleep(BATCH_S)
            self.flush()

    def stop(self, environment: Any = None, msg: Any = None) -> None:
        wl = self.workload
        if wl.t0 is not None:  # this worker started a little after the master: run to its own end
            left = wl.t0 + wl.spec.duration_s - time.perf_counter()
            if 0 < left < 5:
                gevent.sleep(left)
        drain(self.workload, self.workload.spec.stop_grace_s, Interrupt())
        self.workload.close_unfinished(time.perf_counter(), self.workload.spec.stop_grace_s)
        self.flush(final=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the master, which stops the workers
    try:
        spec = load_scenario(args.scenario)
        workload, _ = build_workload(spec, args)
    except LoadTestInputError as err:
        print(f"worker {args.index}: error: {err}", file=sys.stderr)
        return 2
    workload.id_offset, workload.id_step = args.index, args.of
    if workload.schedule is not None:
        mine = [r for i, r in enumerate(workload.schedule.requests) if i % args.of == args.index]
        workload.schedule = ArrivalSchedule(mine)
    env = Environment(user_classes=[OpenAIStreamUser])
    env.petit_workload = workload  # type: ignore[attr-defined]
    runner = env.create_worker_runner(args.master_host, args.master_port)
    sender = _Sender(runner, workload, args.index)
    runner.register_message("petit_stop", sender.stop, concurrent=True)
    loop = gevent.spawn(sender.loop)
    runner.greenlet.join()
    loop.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
