"""14. Multi-host faults: the Redis nonce store across hosts, under faults.

Three gateway hosts, a Redis primary and two replicas, three Sentinels and the simulator, each in
a Linux network namespace of its own (testkit/netns.py; needs root), bots on every gateway host
calling their gateway on two keys, then rounds of each fault (testkit/hostfaults.py): a gateway
host cut from Redis, the primary cut off (the Sentinels fail over), a gateway killed (``-9``) and
restarted, a gateway frozen (``SIGSTOP``) past its lease, a gateway's link to the simulator
restarted. The checker (testkit/hostcheck.py) matches what each bot was told with the
simulator's journal of the requests it judged. Skipped, with the reason, where namespaces are not
allowed. A full run also measures the primary's partition with a single replica, for contrast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from testkit.hostcheck import HEADERS, RoundResult, kind_rows
from testkit.hostcluster import ClusterSettings, cluster
from testkit.hostfaults import KINDS, RECOVERY_MARGIN_S, Campaign
from testkit.netns import netns_support

from .kit import Context
from .report import Section, Table, Verdict

NUMBER = 14
TITLE = "Multi-host faults"
SETTINGS = ClusterSettings()
BOUND_S = SETTINGS.lease_s + RECOVERY_MARGIN_S
TARGET = (
    "every fault kind: 0 invalid nonces at the simulator, at most 1 request per key in flight "
    "there, 0 calls told ok that it did not accept, 0 told 'nothing was sent' that reached it, "
    f"every gateway host serving again ≤ lease + 5 s ({BOUND_S:g} s) after the fault heals."
)
HOW = (
    f"Hosts are network namespaces on two bridges in a namespace of their own ('store': a Redis "
    f"primary and {SETTINGS.redis_replicas} replicas, three Sentinels, the gateways; 'kraken': "
    f"the simulator, the gateways), 10.213.x.0/24 picked per run. Each "
    f"gateway host: `krakenwatch gateway` on its loopback with its own data and runtime dirs, "
    f"`KRAKENWATCH_NONCE_STORE=redis-sentinel://s1,s2,s3/kwmaster?lease={SETTINGS.lease_s:g}`, "
    f"request timeout {SETTINGS.request_timeout_s:g} s, and {SETTINGS.threads} krakenex bot "
    f"threads per key ({SETTINGS.keys} keys) calling Balance back to back, each call named by a "
    f"`kw_request` field the simulator journals (latency {SETTINGS.latency_ms[0]:g}-"
    f"{SETTINGS.latency_ms[1]:g} ms, no rate limit). Sentinel down-after "
    f"{SETTINGS.down_after_ms} ms, quorum 2. A round: 2 s of traffic, the fault (partitions and "
    "the freeze last one lease + 1 s, the link to the simulator is down for the request timeout "
    "+ 1 s, the killed gateway is started again at once), the heal, the recovery (until every "
    "gateway host has an ok answer for a call made after the heal), 3 s of traffic. A cut is "
    "the host's port on the bridge taken down (packets vanish). "
    "Throughput: ok answers per second over all hosts (median over rounds); 'during' is from the "
    "fault to its heal."
)


def _skipped(section: Section, reason: str) -> Section:
    table = Table(["measured", "why not"])
    table.add("no: skipped", reason)
    section.tables.append(table)
    section.placeholder = True
    section.notes.append(f"skipped on this machine: {reason}")
    section.how = HOW
    return section


def _table(results: list[RoundResult], kinds: Sequence[str], suffix: str = "") -> Table:
    table = Table(list(HEADERS))
    for row in kind_rows(results, kinds):
        table.add(row[0] + suffix, *row[1:])
    return table


def _verdicts(results: list[RoundResult]) -> list[Verdict]:
    invalid = sum(r.invalid_nonces for r in results)
    peak = max(r.peak_in_flight for r in results)
    missing = sum(r.told_ok_missing for r in results)
    reached = sum(r.told_not_sent_reached + r.sent_while_cut for r in results)
    recovery = {kind: [r.recovery_s for r in results if r.times.kind == kind] for kind in KINDS}
    slowest = {
        kind: None if any(v is None for v in values) else max(v for v in values if v is not None)
        for kind, values in recovery.items()
        if values
    }
    shown = ", ".join(
        f"{kind} {'never' if s is None else f'{s:.1f} s'}" for kind, s in slowest.items()
    )
    return [
        Verdict("0 invalid nonces at the simulator", str(invalid), invalid == 0),
        Verdict("peak in flight per key ≤ 1", str(peak), peak <= 1),
        Verdict(
            "0 told ok but missing, 0 told 'nothing sent' (or cut off) but reached",
            f"{missing}, {reached}",
            missing == 0 and reached == 0,
        ),
        Verdict(
            f"recovery ≤ {BOUND_S:g} s after the heal (slowest round per kind)",
            shown,
            all(s is not None and s <= BOUND_S for s in slowest.values()),
        ),
    ]


def run(ctx: Context) -> Section:
    section = Section(NUMBER, TITLE, TARGET)
    support = netns_support()
    if not support.ok:
        ctx.log(f"multi-host faults: skipped ({support.reason})")
        return _skipped(section, support.reason)
    rounds = 1 if ctx.quick else 3
    ctx.log(f"multi-host faults: {rounds} round(s) of {len(KINDS)} fault kinds")
    with cluster(ctx.scratch("hosts"), SETTINGS) as running:
        results = Campaign(running, say=ctx.log).run(rounds)
    section.tables.append(_table(results, KINDS))
    section.verdicts += _verdicts(results)
    if not ctx.quick:
        ctx.log("multi-host faults: the primary's partition with a single replica")
        single = replace(SETTINGS, redis_replicas=1)
        with cluster(ctx.scratch("hosts-one-replica"), single) as running:
            contrast = Campaign(running, say=ctx.log).run(2, ["primary-partition"])
        section.tables.append(_table(contrast, ["primary-partition"], " (one replica)"))
        section.notes.append(
            "With a single replica, the new primary of a failover has no replica left to "
            "acknowledge writes (WAIT 1) until the old primary is back and a replica again: "
            "Sentinel converts it some 10 s after it is reachable (built into Sentinel), then the "
            "full resync (with Redis' default repl-diskless-sync-delay of 5 s, 5 s more; the "
            "suite's servers run with 0). Not judged: the contrast table."
        )
    section.notes.append(
        "'told failed, reached' is reported, not judged: a request whose answer was lost on a cut "
        "link or a killed gateway may have arrived. 'sent while cut off' counts requests of a host "
        "cut from Redis that reached the simulator more than 0.5 s after the cut."
    )
    section.how = HOW
    return section
