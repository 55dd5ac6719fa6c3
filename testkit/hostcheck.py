"""The checker of the multi-host fault suite: what each bot was told (:mod:`testkit.hostbots`'
logs) against what the simulator judged (its request journal, :mod:`simulator.journal`), per round
of faults (:mod:`testkit.hostfaults`), and the one table that sums it up per fault kind.

Per round, over the calls made between its start and its end:

* invalid nonces at the simulator (journal entries answered ``EAPI:Invalid nonce``);
* peak in flight per key at the simulator (from each journal entry's arrival to its judgement);
* calls failed closed (the gateway could not sign: nonce store unavailable, nothing sent);
* told failed but reached: a bot was told anything but ok, yet the simulator judged its request
  (legitimate when the answer was lost: outcome unknown, a broken connection); among them, told
  *nothing was sent* (:data:`~testkit.hostbots.NOT_SENT`) but reached: never legitimate;
* told ok but missing: a bot was told ok, yet the simulator accepted no request with its id;
* sent while cut off: requests of a host cut from Redis that reached the simulator more than
  :data:`CUT_GRACE_S` after the cut and before the heal (every request needs its high-water mark
  written to Redis first);
* time to recover: from the heal until every gateway host got an ok for a call made after it;
* throughput (ok answers per second, all hosts) before, during and after the fault.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .hostbots import NOT_SENT

__all__ = [
    "BotLogs",
    "Call",
    "Journal",
    "RoundResult",
    "RoundTimes",
    "fault_hit",
    "judge_round",
    "kind_rows",
    "peak_in_flight",
    "render_table",
    "violations",
]

INVALID_NONCE = "EAPI:Invalid nonce"
#: a request whose high-water mark was written just before its host was cut from Redis may
#: still be on its way for this long
CUT_GRACE_S = 0.5
#: the headers of :func:`kind_rows`' rows
HEADERS = [
    "fault",
    "rounds",
    "invalid nonces",
    "peak in flight per key",
    "failed closed",
    "told failed, reached",
    "told not sent, reached",
    "told ok, missing",
    "sent while cut off",
    "recovery after heal: s (max)",
    "ok/s before",
    "ok/s during",
    "ok/s after",
]


@dataclass(frozen=True)
class Call:
    """One bot call as logged: ``host`` is the gateway host it went through."""

    id: str
    host: str
    key: str
    t0: float
    t1: float
    outcome: str
    detail: str


class BotLogs:
    """The bots' JSON-lines logs by host, read as they grow (complete lines only)."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self.paths = paths
        self.calls: list[Call] = []
        self._offsets = dict.fromkeys(paths, 0)
        self._first_ok: dict[str, list[tuple[float, float]]] = defaultdict(list)

    def poll(self) -> None:
        for host, path in self.paths.items():
            if not path.exists():
                continue
            with path.open("rb") as log:
                log.seek(self._offsets[host])
                data = log.read()
            complete = data[: data.rfind(b"\n") + 1]
            self._offsets[host] += len(complete)
            for line in complete.decode("utf-8").splitlines():
                doc = json.loads(line)
                call = Call(
                    doc["id"], host, doc["key"], doc["t0"], doc["t1"], doc["outcome"], doc["detail"]
                )
                self.calls.append(call)
                if call.outcome == "ok":
                    self._first_ok[host].append((call.t0, call.t1))

    def ok_since(self, host: str, since: float) -> float | None:
        """When ``host``'s first ok answer for a call made at or after ``since`` came."""
        answers = [t1 for t0, t1 in self._first_ok[host] if t0 >= since]
        return min(answers) if answers else None

    def all_ok_since(self, since: float) -> float | None:
        """When the last host got its first ok for a call made at or after ``since``."""
        self.poll()
        firsts = [self.ok_since(host, since) for host in self.paths]
        return None if any(t is None for t in firsts) else max(t for t in firsts if t)


class Journal:
    """The simulator's journal, fetched incrementally with ``fetch(path) -> JSON``."""

    def __init__(self, fetch: Callable[[str], Any]) -> None:
        self.fetch = fetch
        self.entries: list[dict[str, Any]] = []
        self.last = 0

    def poll(self) -> None:
        doc = self.fetch(f"/_sim/journal/{self.last}")
        self.entries += doc["entries"]
        self.last = int(doc["last"])


@dataclass
class RoundTimes:
    """When a round began, its fault started and healed, every host recovered, and it ended
    (``time.monotonic()``); ``target`` the host the fault hit."""

    kind: str
    index: int
    target: str
    begin: float
    started: float = 0.0
    healed: float = 0.0
    recovered: float | None = None
    end: float = 0.0
    cut_host: str | None = None
    #: what the fault did that the calls cannot show (a failover)
    note: str = ""


@dataclass
class RoundResult:
    times: RoundTimes
    calls: int = 0
    invalid_nonces: int = 0
    peak_in_flight: int = 0
    failed_closed: int = 0
    told_failed_reached: int = 0
    told_not_sent_reached: int = 0
    told_ok_missing: int = 0
    sent_while_cut: int = 0
    recovery_s: float | None = None
    ok_per_s: dict[str, float] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    #: whether the fault showed its effect, and the evidence
    hit: bool = False
    evidence: str = ""


def peak_in_flight(entries: Iterable[dict[str, Any]]) -> int:
    """The most requests of one key in flight at once (arrival to judgement)."""
    events: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for e in entries:
        events[e["key"]] += [(e["arrived"], 1), (e["judged"], -1)]
    peak = 0
    for points in events.values():
        level = 0
        for _at, step in sorted(points, key=lambda p: (p[0], p[1])):
            level += step
            peak = max(peak, level)
    return peak


def _rate(calls: Sequence[Call], start: float, end: float) -> float:
    if end <= start:
        return 0.0
    return sum(1 for c in calls if c.outcome == "ok" and start <= c.t1 < end) / (end - start)


def judge_round(
    times: RoundTimes, calls: Sequence[Call], entries: Sequence[dict[str, Any]], before_s: float
) -> RoundResult:
    """Judge one round (see the module): ``calls`` and ``entries`` may cover the whole run."""
    result = RoundResult(times)
    mine = [c for c in calls if times.begin <= c.t0 < times.end]
    seen = [e for e in entries if times.begin <= e["arrived"] < times.end]
    judged = {e["request"] for e in entries}
    accepted = {e["request"] for e in entries if e["error"] is None}
    result.calls = len(mine)
    result.invalid_nonces = sum(1 for e in seen if str(e["error"]).startswith(INVALID_NONCE))
    result.peak_in_flight = peak_in_flight(seen)
    result.failed_closed = sum(1 for c in mine if c.outcome == "closed")
    for c in mine:
        if c.outcome != "ok" and c.id in judged:
            result.told_failed_reached += 1
            if c.outcome in NOT_SENT:
                result.told_not_sent_reached += 1
                result.examples.append(f"told {c.outcome} ({c.detail}) but reached: {c.id}")
        if c.outcome == "ok" and c.id not in accepted:
            result.told_ok_missing += 1
            result.examples.append(f"told ok but not accepted: {c.id}")
    cut = times.cut_host
    for e in seen if cut else ():
        if e["request"].startswith(f"{cut}:") and (
            times.started + CUT_GRACE_S < e["arrived"] < times.healed
        ):
            result.sent_while_cut += 1
            result.examples.append(f"reached Kraken while {cut} was cut from Redis: {e}")
    if times.recovered is not None:
        result.recovery_s = max(0.0, times.recovered - times.healed)
    result.hit, result.evidence = fault_hit(times, mine)
    result.ok_per_s = {
        "before": _rate(mine, times.started - before_s, times.started),
        "during": _rate(mine, times.started, times.healed),
        "after": _rate(mine, times.recovered or times.healed, times.end),
    }
    return result


def fault_hit(times: RoundTimes, calls: Sequence[Call]) -> tuple[bool, str]:
    """Whether the round's fault showed the effect it must have (so a fault that silently did
    nothing cannot pass), and the evidence."""
    target = [c for c in calls if c.host == times.target]
    window = (times.started + 0.5, times.healed)
    answered = [c for c in target if window[0] < c.t1 < window[1]]
    if times.kind == "gateway-partition":
        closed = sum(1 for c in target if c.outcome == "closed")
        return closed > 0, f"{closed} calls failed closed on {times.target}"
    if times.kind == "primary-partition":
        return "failover" in times.note, times.note or "no failover seen"
    if times.kind == "gateway-kill":
        broken = sum(1 for c in target if c.outcome in ("refused", "lost"))
        return broken > 0, f"{broken} calls refused or cut on {times.target}"
    if times.kind == "gateway-pause":
        # asked and answered while it was stopped: impossible unless the pause did nothing (an
        # answer written just before the stop may be read late by a bot thread on a busy host)
        during = [c for c in answered if c.t0 > window[0]]
        waited = sum(1 for c in target if c.t0 < window[0] and c.t1 > times.healed)
        return not during and waited > 0, (
            f"{len(during)} calls asked and answered while {times.target} was paused, "
            f"{waited} calls held"
        )
    ok = sum(1 for c in answered if c.outcome == "ok")
    return ok == 0, f"{ok} ok answers through {times.target} while its link was down"


def _fmt_s(values: Sequence[float | None]) -> str:
    if any(v is None for v in values):
        return "not recovered"
    return f"{max(v for v in values if v is not None):.1f}"


def kind_rows(results: Sequence[RoundResult], kinds: Sequence[str]) -> list[list[str]]:
    """One row per fault kind (:data:`HEADERS`): sums, the peak, the slowest recovery, and the
    median throughput over its rounds."""
    rows = []
    for kind in kinds:
        mine = [r for r in results if r.times.kind == kind]
        if not mine:
            continue

        def median_rate(when: str, rounds: list[RoundResult] = mine) -> str:
            return f"{statistics.median(r.ok_per_s[when] for r in rounds):.0f}"

        rows.append(
            [
                kind,
                str(len(mine)),
                str(sum(r.invalid_nonces for r in mine)),
                str(max(r.peak_in_flight for r in mine)),
                str(sum(r.failed_closed for r in mine)),
                str(sum(r.told_failed_reached for r in mine)),
                str(sum(r.told_not_sent_reached for r in mine)),
                str(sum(r.told_ok_missing for r in mine)),
                str(sum(r.sent_while_cut for r in mine)) if mine[0].times.cut_host else "–",
                _fmt_s([r.recovery_s for r in mine]),
                median_rate("before"),
                median_rate("during"),
                median_rate("after"),
            ]
        )
    return rows


def render_table(rows: Sequence[Sequence[str]], headers: Sequence[str] = HEADERS) -> str:
    """A plain-text table, columns aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def violations(results: Sequence[RoundResult], kind: str, recovery_bound_s: float) -> list[str]:
    """What must hold for the rounds of ``kind`` and did not, each with its figures."""
    wrong = []
    for r in (r for r in results if r.times.kind == kind):
        name = f"{kind} round {r.times.index} on {r.times.target}"
        checks = [
            (r.invalid_nonces == 0, f"{r.invalid_nonces} invalid nonces at the simulator"),
            (r.peak_in_flight <= 1, f"{r.peak_in_flight} requests of one key in flight"),
            (r.told_ok_missing == 0, f"{r.told_ok_missing} told ok but not accepted"),
            (
                r.told_not_sent_reached == 0,
                f"{r.told_not_sent_reached} told nothing was sent but reached",
            ),
            (
                r.sent_while_cut == 0,
                f"{r.sent_while_cut} requests reached Kraken while cut off from Redis",
            ),
            (
                r.recovery_s is not None and r.recovery_s <= recovery_bound_s,
                f"recovery {r.recovery_s if r.recovery_s is None else round(r.recovery_s, 1)} s "
                f"> {recovery_bound_s:g} s",
            ),
            (r.calls > 0, "no calls at all"),
            (r.hit, f"the fault showed no effect ({r.evidence})"),
        ]
        wrong += [f"{name}: {what}" for ok, what in checks if not ok]
        wrong += [f"{name}: {example}" for example in r.examples[:5]]
    return wrong
