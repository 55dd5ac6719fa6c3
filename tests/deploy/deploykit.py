"""Helpers for the deploy tests: repository paths, tools, processes, the Dockerfile.

Everything listens on 127.0.0.1. Processes are started with their output in a log file (read back
into assertion messages) and are always terminated, then killed if they do not stop.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testkit.env import ROOT
from testkit.net import eventually, http_get, status_of

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY = ROOT / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
PROMETHEUS_YML = PROMETHEUS_DIR / "prometheus.yml"
ALERTS_YML = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST_YML = PROMETHEUS_DIR / "alerts_test.yml"
COMPOSE_YML = DEPLOY / "docker-compose.yml"
#: the venv's bin directory (krakenwatch, python, hadolint)
VENV_BIN = Path(sys.executable).parent


def tool(name: str, hint: str) -> str:
    """The path of an executable from the venv or PATH; fails the test with how to install it."""
    candidate = VENV_BIN / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        path = Path(directory) / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    raise AssertionError(f"{name} is not installed: {hint}")


def promtool() -> str:
    return tool("promtool", "install Debian's prometheus package (make system-deps)")


def prometheus() -> str:
    return tool("prometheus", "install Debian's prometheus package (make system-deps)")


def http_json(url: str, timeout: float = 5.0) -> Any:
    status, _, body = http_get(url, timeout)
    assert status == 200, f"GET {url} answered {status}: {body[:500]!r}"
    return json.loads(body)


# ------------------------------------------------------------------------------------ processes
@dataclass
class Process:
    """A started subprocess whose stdout+stderr go to ``log``."""

    argv: list[str]
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self, limit: int = 8000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {shlex.join(self.argv)} (exit {self.popen.poll()}) ---\n{text[-limit:]}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def catches(self, signum: int) -> bool:
        """Whether the process has a handler for ``signum`` (Linux: SigCgt in /proc/PID/status).
        PID 1 in a container only ever sees the signals it catches."""
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
        raise AssertionError(f"no SigCgt line for pid {self.popen.pid}")

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM (what `docker stop` sends), then SIGKILL after ``grace`` s. The exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        return int(self.popen.returncode)


@contextmanager
def running(
    argv: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Iterator[Process]:
    """Run ``argv`` for the duration of the block; always stopped (terminate, then kill)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    process = Process(list(argv), popen, log)
    try:
        yield process
    finally:
        process.stop()


class Server:
    """A running server process and its base URL; its waits fail with its log."""

    def __init__(self, url: str, process: Process):
        self.url = url
        self.process = process
        #: more context for a timeout message (the other processes' output)
        self.context: Callable[[], str] = str

    def wait(self, probe: Callable[[], Any], what: str, timeout: float = 30) -> Any:
        return eventually(
            probe,
            timeout,
            what=what,
            interval=0.25,
            on_timeout=lambda: f"{self.context()}\n{self.process.output(4000)}",
        )


@contextmanager
def ready_server(argv: Sequence[str], log: Path, port: int, what: str) -> Iterator[Process]:
    """Run ``argv`` (a Prometheus-style server listening on 127.0.0.1:``port``, cwd: the log's
    directory) until the block ends; yields once its ``/-/ready`` answers 200."""
    with running(argv, log, cwd=log.parent) as process:

        def ready() -> bool:
            assert process.alive(), process.output()
            return status_of(f"http://127.0.0.1:{port}/-/ready") == 200

        eventually(ready, 30, what=f"{what} to be ready", interval=0.1, on_timeout=process.output)
        yield process


# ------------------------------------------------------------------------------- the Dockerfile
@dataclass
class Instruction:
    keyword: str  # upper case
    args: str  # the rest of the logical line, continuations joined
    line: int  # first physical line (1-based)

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, else None."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value)
        return value


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> list[tuple[str, str]]:
        """ENV pairs in order (``ENV K=V K2="V 2"`` form)."""
        pairs = []
        for instruction in self.all("ENV"):
            for word in shlex.split(instruction.args):
                key, sep, value = word.partition("=")
                assert sep, f"line {instruction.line}: use ENV KEY=VALUE"
                pairs.append((key, value))
        return pairs


def parse_dockerfile(path: Path = DOCKERFILE) -> list[Stage]:
    """The stages of a Dockerfile (comments dropped, backslash continuations joined)."""
    stages: list[Stage] = []
    logical: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        logical.append((start, buffer + stripped))
        buffer = ""
    for number, text in logical:
        keyword, _, args = text.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip(), number)
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"line {number}: {keyword} before FROM"
            stages[-1].instructions.append(instruction)
    return stages


@dataclass
class Healthcheck:
    options: dict[str, str]
    command: list[str]

    def seconds(self, option: str) -> float:
        value = self.options[option]
        units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        for suffix in ("ms", "s", "m", "h"):
            if value.endswith(suffix):
                return float(value[: -len(suffix)]) * units[suffix]
        raise AssertionError(f"cannot read the duration {value!r}")


def parse_healthcheck(instruction: Instruction) -> Healthcheck:
    options: dict[str, str] = {}
    rest = instruction.args.strip()
    while rest.startswith("--"):
        option, _, rest = rest.partition(" ")
        key, _, value = option[2:].partition("=")
        options[key] = value
        rest = rest.strip()
    keyword, _, command = rest.partition(" ")
    assert keyword.upper() == "CMD", f"HEALTHCHECK must use CMD, got {rest!r}"
    parsed = Instruction("CMD", command, instruction.line).exec_form()
    assert parsed is not None, "HEALTHCHECK CMD must be in exec form (a JSON array)"
    return Healthcheck(options, parsed)
