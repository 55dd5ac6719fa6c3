"""Threads and worker processes released together, for races (tests and benchmarks).

:func:`released_threads` runs callables in threads that all start at one moment. Across
processes, the parent starts one ``python -m MODULE`` per job and writes the job (JSON) to its stdin; each
worker prepares (its client objects, its threads), prints ``ready``, waits for ``go`` and prints
its result as one JSON line. The parent sends ``go`` only once every worker is ready, so they all
start at the same moment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .env import ROOT, subprocess_environ

__all__ = ["released_threads", "run_released", "serve_released"]

TIMEOUT_S = 300.0


def released_threads(
    calls: Sequence[Callable[[], str]],
    repeat: int,
    before_go: Callable[[], None] | None = None,
) -> Counter[str]:
    """A thread per callable, each calling it ``repeat`` times, all released together (after
    ``before_go``, e.g. waiting for a parent's ``go``); the counted outcomes they returned."""
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(len(calls) + 1)

    def worker(call: Callable[[], str]) -> None:
        local: Counter[str] = Counter()
        barrier.wait()
        for _ in range(repeat):
            local[call()] += 1
        with lock:
            outcomes.update(local)

    pool = [threading.Thread(target=worker, args=(call,), daemon=True) for call in calls]
    for t in pool:
        t.start()
    if before_go is not None:
        before_go()
    barrier.wait()
    for t in pool:
        t.join()
    return outcomes


def run_released(
    module: str, jobs: Sequence[Mapping[str, Any]], timeout: float = TIMEOUT_S
) -> list[dict[str, Any]]:
    """Run a ``module`` worker per job, release them together, return their results in order."""
    children = [
        subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=subprocess_environ(),
        )
        for _ in jobs
    ]
    try:
        for child, job in zip(children, jobs, strict=True):
            assert child.stdin is not None
            child.stdin.write(json.dumps(dict(job)) + "\n")
            child.stdin.flush()
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline().strip()
            if line != "ready":
                _, err = child.communicate(timeout=10)
                raise RuntimeError(f"{module} did not get ready ({line!r}): {err.strip()[-800:]}")
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = []
        for child in children:
            out, err = child.communicate(timeout=timeout)
            if child.returncode != 0:
                raise RuntimeError(f"{module} exited {child.returncode}: {err.strip()[-800:]}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def serve_released(work: Callable[[dict[str, Any], Callable[[], None]], Mapping[str, Any]]) -> int:
    """The worker's side: ``work(job, ready_then_wait)`` prepares, calls ``ready_then_wait()``
    when it is ready to start, and returns its result (printed as JSON)."""
    job = json.loads(sys.stdin.readline())

    def ready_then_wait() -> None:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            raise SystemExit("no 'go' from the parent")

    print(json.dumps(dict(work(job, ready_then_wait))), flush=True)
    return 0
