"""Real Kraken client libraries as bots, unmodified but for their base URL: krakenex (ms nonces),
python-kraken-sdk (10 ns nonces) and ccxt (ms nonces), making private calls in threads and in
processes that are released together (for the gateway's tests and benchmarks).

Every call's outcome is a string: ``ok``, the first Kraken error code, ``HTTP <status>``, or the
exception's type; answers the gateway made itself (header ``X-Krakenwatch-Gateway``, seen with
krakenex only) get `` (gateway)`` appended.

Run as ``python -m testkit.bots`` this module is one bot process: a JSON job on stdin, ``ready``
on stdout, then it waits for ``go`` and prints its outcomes and its run time as one JSON line.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import requests

from .release import released_threads, run_released, serve_released

__all__ = ["CLIENTS", "BotsRun", "krakenex_api", "make_bot", "run_bot_processes", "run_threads"]

CLIENTS = ("krakenex", "kraken-sdk", "ccxt")
GATEWAY_HEADER = "X-Krakenwatch-Gateway"
_CODE = re.compile(r"\b([EW][A-Z][A-Za-z]*:[A-Za-z][^'\"\]\n,}]*)")
_STATUS = re.compile(r"^(\d{3}) - ")
WORKER_TIMEOUT_S = 300.0

#: one private call -> its outcome
Bot = Callable[[str], str]


def _from_exception(exc: BaseException) -> str:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    text = str(exc)
    status = _STATUS.match(text)  # python-kraken-sdk: "502 - <body>"
    if status:
        return f"HTTP {status.group(1)}"
    code = _CODE.search(text)
    return code.group(1).strip() if code else type(exc).__name__


def krakenex_api(key: str, secret: str, url: str) -> Any:
    """An unmodified ``krakenex.API`` on ``key``/``secret`` whose base URL is ``url``."""
    import krakenex

    api = krakenex.API(key, secret)
    api.uri = url
    return api


def _krakenex(key: str, secret: str, url: str) -> Bot:
    api = krakenex_api(key, secret, url)

    def call(method: str) -> str:
        errors = api.query_private(method, timeout=30)["error"]
        outcome = errors[0] if errors else "ok"
        response = api.response  # the last answer (reliable when one thread uses this bot)
        if response is not None and response.headers.get(GATEWAY_HEADER):
            outcome += " (gateway)"
        return outcome

    return call


def _kraken_sdk(key: str, secret: str, url: str) -> Bot:
    from kraken.spot import SpotClient

    client = SpotClient(key=key, secret=secret, url=url)

    def call(method: str) -> str:
        client.request("POST", f"/0/private/{method}", timeout=30)
        return "ok"

    return call


def _ccxt(key: str, secret: str, url: str) -> Bot:
    import ccxt

    exchange = ccxt.kraken(
        {"apiKey": key, "secret": secret, "timeout": 30_000, "enableRateLimit": False}
    )
    exchange.urls["api"] = {"public": url, "private": url}

    def call(method: str) -> str:
        exchange.request(method, ["private"], "POST")
        return "ok"

    return call


_FACTORIES: dict[str, Callable[[str, str, str], Bot]] = {
    "krakenex": _krakenex,
    "kraken-sdk": _kraken_sdk,
    "ccxt": _ccxt,
}


def make_bot(client: str, key: str, secret: str, url: str) -> Bot:
    """A bot of library ``client`` on ``key``, talking to ``url`` (Kraken, the simulator or the
    gateway); calling it makes one private call and returns the outcome (never raises)."""
    bot = _FACTORIES[client](key, secret, url)

    def call(method: str = "Balance") -> str:
        try:
            return bot(method)
        except Exception as exc:
            return _from_exception(exc)

    return call


def run_threads(
    client: str,
    keys: Sequence[tuple[str, str]],
    url: str,
    *,
    threads: int,
    calls: int,
    method: str = "Balance",
    shared: bool = True,
    before_go: Callable[[], None] | None = None,
) -> Counter[str]:
    """``threads`` threads per key x ``calls`` calls each, all released together; ``shared``: the
    threads of a key share one client object (as in one bot process), else one each."""
    bots: list[Bot] = []
    for key, secret in keys:
        common = make_bot(client, key, secret, url) if shared else None
        bots += [common or make_bot(client, key, secret, url) for _ in range(threads)]
    return released_threads([partial(bot, method) for bot in bots], calls, before_go)


@dataclass
class BotsRun:
    outcomes: Counter[str]
    #: from "go" to the last answer of the slowest process
    seconds: float


def run_bot_processes(jobs: Sequence[Mapping[str, Any]]) -> BotsRun:
    """One process per job (``client``, ``keys`` as ``[[key, secret], ...]``, ``url``,
    ``threads`` per key, ``calls``, optional ``method`` and ``shared``), all released together once
    every one is ready: the summed outcomes and the wall time."""
    run = BotsRun(Counter(), 0.0)
    for report in run_released("testkit.bots", jobs, WORKER_TIMEOUT_S):
        run.outcomes.update(report["outcomes"])
        run.seconds = max(run.seconds, float(report["seconds"]))
    return run


def _work(job: dict[str, Any], ready_then_wait: Callable[[], None]) -> dict[str, Any]:
    started: list[float] = []

    def go() -> None:
        ready_then_wait()
        started.append(time.perf_counter())

    outcomes = run_threads(
        job["client"],
        [(key, secret) for key, secret in job["keys"]],
        job["url"],
        threads=int(job["threads"]),
        calls=int(job["calls"]),
        method=job.get("method", "Balance"),
        shared=bool(job.get("shared", True)),
        before_go=go,
    )
    return {"outcomes": dict(outcomes), "seconds": time.perf_counter() - started[0]}


if __name__ == "__main__":
    sys.exit(serve_released(_work))
