"""7. Soak: ``krakenwatch up`` for 30 minutes, 20 accounts, 1 % random faults.

The simulator runs in its own process; every minute the fault kind changes (HTTP 502, HTTP 503,
``EService:Busy``, ``EService:Unavailable``, a dropped connection), each hitting a request with
probability 1 %. Measured: resident memory growth of the ``krakenwatch up`` process, events
written per hour, private calls, invalid nonces (target 0), accounts connected at the end.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from typing import Any

from simulator import Scenario, scenario_environment
from testkit.procs import rss_mib, up_process

from .kit import Context, external_simulator, fleet_keys
from .report import Section, Table, Verdict

NUMBER = 7
TITLE = "Soak"
TARGET = "0 invalid nonces over the soak, every account connected at the end; reported: memory growth, events per hour."
FAULTS = (
    {"http_status": 502},
    {"http_status": 503},
    {"api_error": "EService:Busy"},
    {"api_error": "EService:Unavailable"},
    {"drop": True},
)


def _admin(url: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 (loopback)
        url + path,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        return dict(json.loads(response.read()))


def run(ctx: Context) -> Section:
    minutes = 0.25 if ctx.quick else 30.0
    step_s = 5.0 if ctx.quick else 60.0
    n = 20
    keys = fleet_keys(ctx, n, "soak")
    workdir = ctx.scratch("soak")
    section = Section(NUMBER, TITLE, TARGET)
    with external_simulator(
        ctx, Scenario(keys=keys, tier="unlimited", lockout_threshold=0), "soak"
    ) as url:
        env = {
            **scenario_environment(Scenario(keys=keys), url),
            "KRAKENWATCH_DATA_DIR": str(workdir / "data"),
            "KRAKENWATCH_POLL_INTERVAL": "5",
            "KRAKENWATCH_TIER": "pro",
            "KRAKENWATCH_REQUEST_TIMEOUT": "5",
        }
        with up_process(env, workdir) as up:
            up.wait_verified(n)
            started = time.monotonic()
            rss_start = rss_mib(up.proc.pid)
            samples = [(0.0, rss_start)]
            minute = 0
            while time.monotonic() - started < minutes * 60:
                _admin(
                    url,
                    "/_sim/faults",
                    {**FAULTS[minute % len(FAULTS)], "probability": 0.01, "scope": "private"},
                )
                minute += 1
                time.sleep(
                    max(
                        0.0,
                        min(started + minute * step_s, started + minutes * 60) - time.monotonic(),
                    )
                )
                samples.append(((time.monotonic() - started) / 60, rss_mib(up.proc.pid)))
                ctx.log(f"  soak step {minute}: RSS {samples[-1][1]:.1f} MiB")
            _admin(url, "/_sim/faults", {})
            elapsed_h = (time.monotonic() - started) / 3600
            deadline = time.monotonic() + 30
            doc = up.verify()
            while time.monotonic() < deadline:
                doc = up.verify()
                if all(a["state"] == "connected" for a in doc["accounts"]):
                    break
                time.sleep(0.5)
            rss_end = rss_mib(up.proc.pid)
        stats = _admin(url, "/_sim/stats")
    total = stats["total"]
    invalid, accepted = int(total["invalid_nonce"]), int(total["accepted"])
    with sqlite3.connect(
        f"file:{workdir / 'data' / 'krakenwatch.sqlite3'}?mode=ro", uri=True
    ) as conn:
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        by_kind = dict(conn.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    connected = sum(1 for a in doc["accounts"] if a["state"] == "connected")
    table = Table(
        [
            "duration",
            "accounts",
            "fault rate",
            "private calls answered",
            "invalid nonces",
            "connected at end",
            "events",
            "events / hour",
            "RSS start → end MiB",
            "growth",
        ]
    )
    table.add(
        f"{minutes:g} min",
        n,
        f"1 % (kind rotates every {step_s:g} s)",
        accepted,
        invalid,
        f"{connected}/{n}",
        events,
        f"{events / elapsed_h:,.0f}",
        f"{rss_start:.1f} → {rss_end:.1f}",
        f"{rss_end - rss_start:+.1f} MiB",
    )
    section.tables.append(table)
    curve = Table(["minute", "RSS MiB"])
    for at, rss in samples[:: max(1, len(samples) // 10)]:
        curve.add(f"{at:.0f}", f"{rss:.1f}")
    section.tables.append(curve)
    kinds = Table(["event kind", "count"])
    for kind, count in sorted(by_kind.items()):
        kinds.add(kind, count)
    section.tables.append(kinds)
    section.verdicts.append(Verdict("0 invalid nonces", str(invalid), invalid == 0))
    section.verdicts.append(
        Verdict("every account connected after the faults stop", f"{connected}/{n}", connected == n)
    )
    section.how = (
        "`krakenwatch up` subprocess (poll 5 s, request timeout 5 s) against the simulator in its own "
        "process (tier unlimited); faults set through `/_sim/faults` with `probability=0.01`, scope "
        f"private, the kind rotating every {step_s:g} s; RSS = VmRSS of the `up` process; events counted in "
        "its SQLite store; calls and invalid nonces from the simulator's `/_sim/stats`."
    )
    return section
