"""The bots of one host in the multi-host fault suite: unmodified krakenex clients (base URL: the
host's own gateway) calling ``Balance`` in a loop, each call named by a request id that the
simulator's journal keeps (:data:`simulator.journal.REQUEST_FIELD`), every answer appended to a
JSON-lines log as it comes.

Run as ``python -m testkit.hostbots JOB`` inside the host (``ip netns exec``), ``JOB`` a JSON file:
``{"host": "gw1", "url": "http://127.0.0.1:8788", "keys": [[name, key, secret], ...],
"threads": 2, "log": "/path/bots.jsonl"}`` (``threads`` per key). It runs until SIGTERM or SIGINT,
lets each thread finish its call, and exits 0.

A log line: ``{"id", "key", "t0", "t1", "outcome", "detail"}``; ``t0``/``t1`` are
``time.monotonic()`` when the call was made and answered (one clock for every process of the
machine, namespaces included). ``outcome`` is one of :data:`OUTCOMES`.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import requests

from simulator.journal import REQUEST_FIELD

from .bots import GATEWAY_HEADER, krakenex_api

__all__ = ["NOT_SENT", "OUTCOMES", "classify"]

#: what a bot can be told, and what the gateway's answer promises about it
OUTCOMES = {
    "ok": "Kraken's answer, no error",
    "closed": "the gateway failed closed: it cannot sign for the key (nonce store); nothing sent",
    "busy": "EService:Busy from the gateway: the key stayed busy; nothing sent",
    "unreachable": "HTTP 502 from the gateway: Kraken could not be reached; nothing sent",
    "unknown": "HTTP 504 from the gateway: sent, no answer; it may have reached Kraken",
    "invalid_nonce": "EAPI:Invalid nonce",
    "refused": "the gateway refused the connection (not running); nothing sent",
    "lost": "the connection to the gateway broke before an answer; it may have reached Kraken",
    "timeout": "no answer from the gateway in time; it may have reached Kraken",
    "other": "anything else (see detail)",
}
#: outcomes whose answer says that nothing was sent to Kraken
NOT_SENT = frozenset({"closed", "busy", "unreachable", "refused"})
CALL_TIMEOUT_S = 30.0
#: a bot that was told "failed" waits this long before its next call
BACKOFF_S = 0.05


def classify(status: int, body: Any, by_gateway: bool) -> tuple[str, str]:
    """(outcome, detail) of an HTTP answer: ``body`` its decoded JSON (or text)."""
    errors = body.get("error") if isinstance(body, dict) else None
    first = str(errors[0]) if errors else ""
    if status == 200 and isinstance(errors, list) and not errors:
        return "ok", ""
    if "cannot sign for this key" in first:
        return "closed", first[:160]
    if first.startswith("EService:Busy") and by_gateway:
        return "busy", first
    if first.startswith("EAPI:Invalid nonce"):
        return "invalid_nonce", first[:160] + (" (gateway)" if by_gateway else "")
    if status == 502 and by_gateway:
        return "unreachable", first[:160]
    if status == 504:
        return "unknown", first[:160]
    return "other", f"HTTP {status} {first[:160] or str(body)[:160]}"


def _call(api: Any, request_id: str) -> tuple[str, str]:
    try:
        api.query_private("Balance", {REQUEST_FIELD: request_id}, timeout=CALL_TIMEOUT_S)
        response = api.response
    except requests.HTTPError as exc:
        response = exc.response
    except requests.exceptions.ConnectionError as exc:
        refused = "Connection refused" in str(exc) or "NewConnectionError" in str(exc)
        return ("refused" if refused else "lost"), type(exc).__name__
    except requests.Timeout as exc:
        return "timeout", type(exc).__name__
    except ValueError as exc:  # not JSON
        return "other", f"{type(exc).__name__}: {str(exc)[:120]}"
    if response is None:
        return "other", "no response"
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:200]
    return classify(response.status_code, body, bool(response.headers.get(GATEWAY_HEADER)))


class _Log:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self._out.write(line)
            self._out.flush()


def _bot(
    job: dict[str, Any], key: list[str], thread: int, log: _Log, stop: threading.Event
) -> None:
    name, api_key, secret = key
    api = krakenex_api(api_key, secret, job["url"])
    seq = 0
    while not stop.is_set():
        seq += 1
        request_id = f"{job['host']}:{name}:{thread}:{seq}"
        t0 = time.monotonic()
        outcome, detail = _call(api, request_id)
        t1 = time.monotonic()
        log.write(
            {
                "id": request_id,
                "key": name,
                "t0": t0,
                "t1": t1,
                "outcome": outcome,
                "detail": detail,
            }
        )
        if outcome != "ok":
            stop.wait(BACKOFF_S)


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with Path(job["log"]).open("a", encoding="utf-8") as out:
        log = _Log(out)
        threads = [
            threading.Thread(target=_bot, args=(job, key, i, log, stop), daemon=True)
            for key in job["keys"]
            for i in range(int(job["threads"]))
        ]
        for thread in threads:
            thread.start()
        while not stop.wait(0.2):
            pass
        for thread in threads:
            thread.join(CALL_TIMEOUT_S + 5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
