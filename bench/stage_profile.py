"""15. Per-stage profile: where the time of one private call goes, through the gateway and in
``KrakenClient`` alone.

The private call path marks where each stage ends (:func:`broker.stages.mark`); nothing is kept
unless a recorder is on. The gateway runs as its own process with the recorder on
(:mod:`bench.stage_gateway`, the real ``krakenwatch gateway`` code), in front of the simulator (its
own process, 0 ms latency); the bot is krakenex in the bench process with a counter nonce, making
sequential ``Balance`` calls. Beside it, blocks alternating with the gateway's, ``KrakenClient``
calls the simulator directly from the bench process with the recorder on there.

Each call's marks are split off the recorder's list (a call starts at its first mark), checked to
be the expected sequence in order (else the call is dropped and counted), and matched to the bot
call whose timing window holds them: ``perf_counter_ns`` is ``CLOCK_MONOTONIC``, one clock for all
processes of the machine, so the bot-observed time and what happened outside the gateway are per
call too. Stages are named by a table of (label, from mark, to mark[, from, to]), easy to adjust
when marks are added.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from time import perf_counter_ns
from typing import Any

from broker import KrakenClient
from broker.stages import mark, recording
from simulator import Scenario

from .gateway_latency import client
from .kit import Context, external_simulator, key_spec
from .report import Section, Table, Verdict, percentile
from .stage_gateway import Marks, recorded_gateway

NUMBER = 15
TITLE = "Per-stage profile"
TARGET = (
    "none: a profile of one private `Balance` call, stage by stage, through the gateway and in "
    "`KrakenClient` alone (simulator at 0 ms); every call's marks complete, in order."
)
WARMUP = 50

#: the marks of one private call through the gateway, in order (gateway process)
GATEWAY_MARKS = (
    "arrived", "routed", "authenticated", "replay checked", "guard admitted", "queued", "picked",
    "claimed", "call", "reserved", "still wanted", "signed", "answered", "released", "reported",
    "judged", "woken", "counted", "sent",
)  # fmt: skip
#: the marks of one ``KrakenClient.query_private`` call without a gateway
CLIENT_MARKS = ("call", "reserved", "signed", "answered", "released", "reported")


@dataclass(frozen=True)
class Stage:
    """A stage of a call: the time from one mark to another (plus, optionally, a second span)."""

    label: str
    spans: tuple[tuple[str, str], ...]

    @property
    def marks(self) -> frozenset[str]:
        return frozenset(name for span in self.spans for name in span)

    def applies(self, marks: Collection[str]) -> bool:
        return self.marks <= set(marks)

    def ns(self, call: Mapping[str, int]) -> int:
        return sum(call[end] - call[start] for start, end in self.spans)

    @property
    def route(self) -> str:
        return " + ".join(f"{start} → {end}" for start, end in self.spans)


def stage(label: str, start: str, end: str, *more: str) -> Stage:
    """``label`` from ``start`` to ``end`` (and ``more``: further start, end pairs)."""
    names = (start, end, *more)
    return Stage(label, tuple(zip(names[::2], names[1::2], strict=True)))


#: one row per stage, in path order; a stage shows for a side when all its marks are in the side's
#: sequence. Consecutive stages share their marks, so they add up to the total.
STAGES = (
    stage("HTTP in: request parsed, routed", "arrived", "routed"),
    stage("authentication: credential, body, signature, permission", "routed", "authenticated"),
    stage("replay check", "authenticated", "replay checked"),
    stage("trading guard", "replay checked", "guard admitted"),
    stage("lane: submitted to the key's lane", "guard admitted", "queued"),
    stage("lane: hand-over to the key's writer", "queued", "picked"),
    stage("replay claim", "picked", "claimed"),
    stage("to `KrakenClient`", "claimed", "call"),
    stage("nonce store: reserve + release", "call", "reserved", "answered", "released"),
    stage("last check and signing", "reserved", "signed"),
    stage("upstream send and receive (simulator)", "signed", "answered"),
    stage("`KrakenClient` report", "released", "reported"),
    stage("reply built", "reported", "judged"),
    stage("hand-back to the event loop", "judged", "woken"),
    stage("gateway metrics", "woken", "counted"),
    stage("HTTP out: response written", "counted", "sent"),
)
GATEWAY_TOTAL = stage("**total in the gateway**", "arrived", "sent")
CLIENT_TOTAL = stage("**total in `KrakenClient`**", "call", "reported")
BOT = "bot-observed total"
OUTSIDE = "outside: bot-observed − total"

#: a timing window per call: (perf_counter_ns before, after)
Windows = list[tuple[int, int]]


def split_calls(
    marks: Iterable[tuple[str, int]], sequence: Sequence[str]
) -> tuple[list[dict[str, int]], list[Marks]]:
    """The calls in a recorder's ``marks`` (each starts at ``sequence[0]``) whose marks are exactly
    ``sequence``, in order and in time, as {mark: ns}; and the groups of marks that were not
    (dropped)."""
    complete, dropped = [], []
    for group in map(folded, groups_of(marks, sequence[0])):
        in_order = all(a[1] <= b[1] for a, b in pairwise(group))
        if in_order and tuple(name for name, _ in group) == tuple(sequence):
            complete.append(dict(group))
        else:
            dropped.append(group)
    return complete, dropped


def groups_of(marks: Iterable[tuple[str, int]], first: str) -> list[Marks]:
    """The recorder's ``marks`` cut into calls, each starting at a ``first`` mark."""
    groups: list[Marks] = []
    for name, ns in marks:
        if name == first or not groups:
            groups.append([])
        groups[-1].append((name, ns))
    return groups


#: what a call tried on the event loop before it fell back to a worker thread (a step would have
#: blocked: a sync of the nonce store due, the key held elsewhere), marked again in the thread
LOOP_ATTEMPT = ("picked", "claimed", "call")


def folded(group: Marks) -> Marks:
    """A gateway call that fell back to a worker thread, as one call: its loop attempt's marks
    (:data:`LOOP_ATTEMPT`) and the thread's ``judged`` left out (the loop's follows), so the
    hand-over stage holds the attempt and the hand-over to the thread. Any other group as is."""
    names = [name for name, _ in group]
    if names.count("picked") != 2 or names.count("judged") != 2:
        return group
    drop = {names.index(name) for name in (*LOOP_ATTEMPT, "judged")}
    return [mark for i, mark in enumerate(group) if i not in drop]


def fell_back(group: Marks) -> bool:
    return [name for name, _ in group].count("picked") == 2


def stage_durations(call: Mapping[str, int], stages: Sequence[Stage] = STAGES) -> dict[str, int]:
    """ns per stage of one call ({mark: ns}), for the stages whose marks it has."""
    return {s.label: s.ns(call) for s in stages if s.applies(call.keys())}


def in_windows(
    windows: Sequence[tuple[int, int]], calls: Sequence[Mapping[str, int]], total: Stage
) -> list[tuple[int, Mapping[str, int]]]:
    """(window's ns, call) for each window that holds a whole call (``total``'s first and last
    marks); ``calls`` in time order."""
    (first, _), (_, last) = total.spans[0], total.spans[-1]
    starts = [call[first] for call in calls]
    matched = []
    for t0, t1 in windows:
        i = bisect.bisect_left(starts, t0)
        if i < len(calls) and calls[i][first] <= t1 and calls[i][last] <= t1:
            matched.append((t1 - t0, calls[i]))
    return matched


@dataclass
class Side:
    """One side's calls: ns per stage (and totals) over every call, per repetition the totals."""

    total: Stage
    made: int = 0
    ns: dict[str, list[int]] = field(default_factory=dict)
    reps: list[tuple[int, list[int], list[int]]] = field(default_factory=list)
    #: the mark sequences of the measured calls that were dropped, counted
    dropped: Counter[tuple[str, ...]] = field(default_factory=Counter)
    #: recorded calls that fell back from the event loop to a worker thread
    fell_back: int = 0

    @property
    def complete(self) -> int:
        return len(self.ns.get(BOT, []))

    def add(self, windows: Sequence[tuple[int, int]], calls: Sequence[Mapping[str, int]]) -> None:
        """One repetition: the bot's ``windows`` and the side's complete calls."""
        matched = in_windows(windows, calls, self.total)
        totals, bots = [], []
        for bot_ns, call in matched:
            durations = stage_durations(call, (*STAGES, self.total))
            durations[BOT] = bot_ns
            durations[OUTSIDE] = bot_ns - durations[self.total.label]
            for label, ns in durations.items():
                self.ns.setdefault(label, []).append(ns)
            totals.append(durations[self.total.label])
            bots.append(bot_ns)
        self.made += len(windows)
        self.reps.append((len(matched), totals, bots))

    def us(self, label: str, q: float) -> str:
        values = self.ns.get(label)
        return f"{percentile(values, q) / 1000:.1f}" if values else "–"


def timed(call: Callable[[], Any], calls: int) -> Windows:
    """``calls`` sequential calls, each's timing window; an error answer voids the run."""
    windows = []
    for _ in range(calls):
        t0 = perf_counter_ns()
        errors = call()["error"]
        windows.append((t0, perf_counter_ns()))
        if errors:
            raise RuntimeError(f"an error answer ({errors}) voids the profile")
    return windows


def measure(ctx: Context, blocks: int, block: int) -> tuple[Side, Side]:
    """Blocks of sequential calls alternating gateway / direct (ABBA...); the two sides."""
    keys = {
        "gateway": key_spec(ctx, "stages/gateway", account="MASTER"),
        "direct": key_spec(ctx, "stages/direct"),
    }
    scenario = Scenario(
        keys=list(keys.values()), tier="unlimited", lockout_threshold=0, latency_ms=(0.0, 0.0)
    )
    windows: list[dict[str, Windows]] = [{"gateway": [], "direct": []} for _ in range(ctx.reps)]
    with (
        external_simulator(ctx, scenario, "stage-profile") as url,
        recorded_gateway(ctx, scenario, url, "profile") as gw,
    ):
        bot = client(keys["gateway"].key, keys["gateway"].secret, gw.url)
        direct = KrakenClient(
            keys["direct"].key, keys["direct"].secret, base_url=url, store_dir=ctx.scratch("stages")
        )
        calls: dict[str, Callable[[], Any]] = {
            "gateway": lambda: bot.query_private("Balance", timeout=30),
            "direct": lambda: direct.query_private("Balance"),
        }
        with recording() as direct_marks:
            for call in calls.values():
                timed(call, WARMUP)  # connections open, code paths warm
            for rep in range(ctx.reps):
                for i in range(blocks):
                    for side in ("gateway", "direct") if i % 2 == 0 else ("direct", "gateway"):
                        windows[rep][side] += timed(calls[side], block)
                ctx.log(f"15 rep {rep + 1}: {blocks * block} calls per side")
    return (
        collect(GATEWAY_MARKS, GATEWAY_TOTAL, gw.marks, [w["gateway"] for w in windows]),
        collect(CLIENT_MARKS, CLIENT_TOTAL, direct_marks, [w["direct"] for w in windows]),
    )


def collect(sequence: Sequence[str], total: Stage, marks: Marks, reps: list[Windows]) -> Side:
    """A side from its recorder's ``marks`` and the bot's timing windows per repetition."""
    calls, dropped = split_calls(marks, sequence)
    calls.sort(key=lambda call: call[sequence[0]])
    side = Side(total)
    side.fell_back = sum(map(fell_back, groups_of(marks, sequence[0])))
    for windows in reps:
        side.add(windows, calls)
    every = sorted(window for windows in reps for window in windows)
    starts = [t0 for t0, _ in every]
    for group in dropped:  # those of the measured calls (not the warm-up's)
        i = bisect.bisect_right(starts, group[0][1]) - 1
        if i >= 0 and group[0][1] <= every[i][1]:
            side.dropped[tuple(name for name, _ in group)] += 1
    return side


def dropped_note(name: str, side: Side) -> str | None:
    if not side.dropped:
        return None
    names, count = side.dropped.most_common(1)[0]
    return (
        f"{name}: {sum(side.dropped.values())} measured call(s) dropped, their marks not the "
        f"expected sequence; most often ({count}×): {', '.join(names)}."
    )


def mark_cost_ns(n: int) -> tuple[float, float]:
    """ns per :func:`mark` in a tight loop (the loop's own cost included), recorder off and on;
    the best of 5 runs each."""

    def loop() -> float:
        t0 = perf_counter_ns()
        for _ in range(n):
            mark("cost")
        return (perf_counter_ns() - t0) / n

    off = min(loop() for _ in range(5))
    on = []
    with recording() as marks:
        for _ in range(5):
            marks.clear()
            on.append(loop())
    return off, min(on)


def stage_table(gateway: Side, direct: Side) -> Table:
    table = Table(
        [
            "stage",
            "marks",
            "through the gateway p50 (µs)",
            "p99 (µs)",
            "`KrakenClient` alone p50 (µs)",
            "p99 (µs)",
        ]
    )
    for s in (*STAGES, GATEWAY_TOTAL, CLIENT_TOTAL):
        cells = [side.us(s.label, q) for side in (gateway, direct) for q in (50, 99)]
        table.add(s.label, s.route, *cells)
    for label, what in (
        (BOT, "krakenex's call through the gateway / `KrakenClient.query_private`"),
        (OUTSIDE, "the client library, loopback and kernel; the krakenex-compatible answer"),
    ):
        table.add(label, what, *(side.us(label, q) for side in (gateway, direct) for q in (50, 99)))
    return table


def rep_table(gateway: Side, direct: Side) -> Table:
    table = Table(
        [
            "repetition",
            "calls per side",
            "complete: gateway / `KrakenClient`",
            "gateway total p50 / p99 (µs)",
            "bot-observed through the gateway p50 / p99 (µs)",
            "`KrakenClient` total p50 / p99 (µs)",
        ]
    )

    def p(values: list[int]) -> str:
        if not values:
            return "–"
        return f"{percentile(values, 50) / 1000:.1f} / {percentile(values, 99) / 1000:.1f}"

    for rep, ((g_n, g_totals, g_bots), (d_n, d_totals, _)) in enumerate(
        zip(gateway.reps, direct.reps, strict=True)
    ):
        made = gateway.made // len(gateway.reps)
        table.add(rep + 1, made, f"{g_n} / {d_n}", p(g_totals), p(g_bots), p(d_totals))
    return table


def cost_table(off: float, on: float, gateway: Side) -> tuple[Table, str]:
    per_call_us = len(GATEWAY_MARKS) * on / 1000
    total = gateway.ns.get(GATEWAY_TOTAL.label)
    share = f"{100 * per_call_us * 1000 / percentile(total, 50):.1f} %" if total else "–"
    table = Table(
        [
            "a mark, recorder off (ns)",
            "a mark, recorder on (ns)",
            "marks per gateway call",
            "their cost per call (µs)",
            "of the gateway's total p50",
        ]
    )
    table.add(f"{off:.0f}", f"{on:.0f}", len(GATEWAY_MARKS), f"{per_call_us:.1f}", share)
    note = (
        f"the timers cost less than they measure: a mark costs {on:.0f} ns with the recorder on "
        f"({off:.0f} ns off, as in production), {per_call_us:.1f} µs for the "
        f"{len(GATEWAY_MARKS)} marks of a call through the gateway ({share} of its total); each "
        "stage carries about one mark's cost."
    )
    return table, note


def run(ctx: Context) -> Section:
    section = Section(NUMBER, TITLE, TARGET)
    blocks, block = (6, 50) if ctx.quick else (10, 200)
    gateway, direct = measure(ctx, blocks, block)
    off, on = mark_cost_ns(100_000 if ctx.quick else 1_000_000)
    costs, cost_note = cost_table(off, on, gateway)
    section.tables += [stage_table(gateway, direct), rep_table(gateway, direct), costs]
    dropped = (gateway.made - gateway.complete, direct.made - direct.complete)
    section.verdicts.append(
        Verdict(
            "every call's marks complete, in order",
            f"{gateway.complete} of {gateway.made} through the gateway, "
            f"{direct.complete} of {direct.made} `KrakenClient` ({sum(dropped)} dropped)",
            sum(dropped) == 0 and gateway.made > 0,
        )
    )
    section.notes += [
        note
        for note in (
            dropped_note("through the gateway", gateway),
            dropped_note("`KrakenClient` alone", direct),
        )
        if note is not None
    ]
    section.notes += [
        f"{gateway.fell_back} of the gateway's recorded calls (warm-up included) fell back from "
        "the event loop to a worker thread (a sync of the nonce store was due: about once a "
        "second per key with the durable file store); their hand-over stage holds the loop's "
        "attempt and the hand-over to the thread.",
        cost_note,
        "p50 and p99 are taken per stage over every call, so the stages' percentiles do not add "
        "up to the total's (their per-call durations do: consecutive stages share their marks).",
    ]
    section.how = (
        "the simulator in its own process (latency 0), the real gateway (`python -m "
        "bench.stage_gateway`: `krakenwatch gateway --no-rate-model` with the stage recorder on) "
        "in its own process, and in the bench process krakenex with a counter nonce through the "
        "gateway and `KrakenClient` (durable file store) straight to the simulator, each on its "
        f"own key; {WARMUP} warm-up calls per side, then per repetition {blocks} blocks of "
        f"{block} sequential `Balance` calls per side, alternating the order; {ctx.reps} "
        "repetition(s). Each call's marks (`broker.stages`: one clock read and one append per "
        "mark) are split off the recorder's list, checked against the expected sequence (a call "
        "whose marks are not all there in order is dropped and counted) and matched to the bot "
        "call whose window holds them (`perf_counter_ns` is one monotonic clock for all "
        "processes); a stage is the time between two marks; percentiles over every call of all "
        "repetitions."
    )
    return section
