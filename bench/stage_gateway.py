"""The real gateway with its stage marks recorded, for the per-stage profile (benchmark 15).

``python -m bench.stage_gateway MARKS.json [gateway arguments]`` runs what ``krakenwatch gateway
[gateway arguments]`` runs (:func:`gateway.cli.main`, nothing duplicated) inside
:func:`broker.stages.recording`, and when it is stopped (SIGTERM or SIGINT: uvicorn shuts down and
returns) writes every mark of the process to ``MARKS.json`` as ``[[stage, perf_counter_ns], ...]``.
``perf_counter_ns`` is ``CLOCK_MONOTONIC`` on Linux, one clock for every process of the machine,
so the bench process can hold the gateway's marks against its own timings.

:func:`recorded_gateway` starts it (its own process group, like ``testkit.gateway``'s
``gateway_process``) and hands the marks over once it has stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from simulator import Scenario
from simulator.environment import scenario_environment
from testkit.env import subprocess_environ
from testkit.gateway import LISTENING
from testkit.net import eventually
from testkit.procs import spawn, stop_group

from .kit import Context

__all__ = ["Marks", "RecordedGateway", "main", "recorded_gateway"]

#: ``(stage, perf_counter_ns())`` in the order they happened
Marks = list[tuple[str, int]]


def _stop(signum: int, frame: FrameType | None) -> None:
    """Before uvicorn runs: stop at once; after it returns it re-raises the signal it caught and
    ends up here too. Either way the marks are written on the way out."""
    raise SystemExit(128 + signum)


def _exit_code(exc: SystemExit) -> int:
    """0 for a stop by SIGTERM/SIGINT, else what ``exc`` says."""
    if exc.code is None or exc.code in (128 + signal.SIGTERM, 128 + signal.SIGINT):
        return 0
    return exc.code if isinstance(exc.code, int) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(
            "usage: python -m bench.stage_gateway MARKS.json [gateway arguments]", file=sys.stderr
        )
        return 2
    out = Path(args[0])
    from broker.stages import recording
    from gateway.cli import main as gateway_main

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    code = 0
    with recording() as marks:
        try:
            code = gateway_main(args[1:])
        except SystemExit as exc:  # stopped by a signal (the usual way out), or argparse
            code = _exit_code(exc)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(marks), encoding="utf-8")
    os.replace(partial, out)
    return code


@dataclass
class RecordedGateway:
    """A running recorded gateway: its URL, and its marks once it has stopped."""

    url: str
    log: Path
    marks: Marks = field(default_factory=list)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def recorded_gateway(
    ctx: Context, scenario: Scenario, url: str, name: str
) -> Iterator[RecordedGateway]:
    """The gateway (``--no-rate-model``, any free port) for the accounts of ``scenario``'s keys in
    front of the simulator at ``url``, recording its marks; stopped after the block, when its
    :attr:`~RecordedGateway.marks` are filled in."""
    workdir = ctx.scratch(f"stage-gateway-{name}")
    out = workdir / "marks.json"
    env = {**scenario_environment(scenario, url), "KRAKENWATCH_DATA_DIR": str(workdir / "data")}
    argv = [sys.executable, "-m", "bench.stage_gateway", str(out), "--port", "0"]
    log = workdir / "gateway.log"
    proc = spawn([*argv, "--no-rate-model"], log, env=subprocess_environ(env), cwd=workdir)
    running = RecordedGateway("", log)

    def listening() -> str | None:
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway exited {proc.returncode}:\n{running.output()}")
        lines = running.output().splitlines()
        return next((line[len(LISTENING) :] for line in lines if line.startswith(LISTENING)), None)

    try:
        running.url = eventually(listening, 60.0, what="the gateway to listen")
        yield running
    except Exception as exc:  # what the gateway said goes with the error
        exc.add_note(f"the recorded gateway's log:\n{running.output()[-3000:]}")
        raise
    finally:
        code = stop_group(proc)
    if code != 0 or not out.exists():
        raise RuntimeError(
            f"the recorded gateway exited {code}, marks not written:\n{running.output()}"
        )
    running.marks = [(str(stage), int(ns)) for stage, ns in json.loads(out.read_text("utf-8"))]


if __name__ == "__main__":
    sys.exit(main())
