"""Worker processes that hammer one key through ``KrakenClient``: several processes, several
"hosts" (a runtime directory each), any nonce store (``KRAKENWATCH_NONCE_STORE`` in their
environment: a bot needs no code change)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["WORKER", "run_workers"]

WORKER = """
import json, sys, threading
import broker.nonce
from broker import KrakenClient
url, key, secret, store, calls, threads, ahead = sys.argv[1:8]
if float(ahead):
    # this process's clock runs ahead (a host whose clock was later stepped back)
    real = broker.nonce.now_in_unit
    broker.nonce.now_in_unit = lambda unit: real(unit) + int(float(ahead) * broker.nonce.NONCE_UNITS[unit])
api = KrakenClient(key, secret, base_url=url, store_dir=store)
errors = []
def work():
    for _ in range(int(calls)):
        errors.extend(api.query_private("Balance")["error"])
pool = [threading.Thread(target=work) for _ in range(int(threads))]
[t.start() for t in pool]; [t.join() for t in pool]
print(json.dumps({"errors": errors}))
"""


def run_workers(
    url: str,
    key: str,
    secret: str,
    stores: list[Path],
    *,
    calls: int,
    threads: int = 1,
    ahead: float = 0.0,
    hosts: list[Path] | None = None,
    env: Mapping[str, str] | None = None,
) -> list[list[str]]:
    """Run one worker process per store directory, concurrently; return each one's errors.
    ``hosts``: a runtime directory per worker (default: the caller's, shared by all); ``env``:
    more variables for every worker (e.g. ``KRAKENWATCH_NONCE_STORE``)."""
    base = {**os.environ, **(env or {})}
    if hosts is None:
        envs = [base] * len(stores)
    else:
        envs = [{**base, "XDG_RUNTIME_DIR": str(host)} for host in hosts]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                url,
                key,
                secret,
                str(store),
                str(calls),
                str(threads),
                str(ahead),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=worker_env,
        )
        for store, worker_env in zip(stores, envs, strict=True)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out)["errors"])
    return results
