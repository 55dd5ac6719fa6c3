"""4. Clock skew accuracy: ``estimate_clock_skew`` vs a single sample, at known simulator offsets.

The simulator's ``clock_offset_s`` is its clock minus the real clock; the estimate is local minus
Kraken, so the truth is ``-offset`` and the error is ``estimate + offset``. Both run on this host's
clock, so the truth is exact. The single sample is taken at a random phase of the second (after a
random wait), since its error depends on where in the server's second it lands.
"""

from __future__ import annotations

import random
import time

from broker import KrakenClient, estimate_clock_skew, single_sample_skew
from simulator import Scenario

from .kit import Context, running
from .report import Section, Summary, Table, Verdict

NUMBER = 4
TITLE = "Clock skew accuracy"
MAX_ERROR_S = 0.050
MAX_PROBES = 10
TARGET = f"|estimate − truth| ≤ {MAX_ERROR_S * 1000:g} ms with ≤ {MAX_PROBES} probes, for every offset and repetition."
OFFSETS = (-2.3, -0.37, 0.37, 1.5)


def run(ctx: Context) -> Section:
    offsets = (-0.37, 1.5) if ctx.quick else OFFSETS
    section = Section(NUMBER, TITLE, TARGET)
    rng = random.Random(4)
    table = Table(
        [
            "simulator offset s",
            "truth (local − Kraken) s",
            "estimate error ms",
            "max abs error ms",
            "probes",
            "claimed uncertainty ± ms",
            "estimate wall s",
            "single-sample error ms",
            "single-sample max abs error ms",
        ]
    )
    worst_error = 0.0
    worst_probes = 0
    truth_inside = True
    with running(Scenario(tier="unlimited", lockout_threshold=0)) as sim:
        client = KrakenClient(base_url=sim.url, timeout=5.0, store_dir=ctx.scratch("skew-store"))
        results: dict[float, list[tuple[float, int, float, float, float]]] = {
            o: [] for o in offsets
        }
        for rep in range(ctx.reps):
            for offset in offsets:
                sim.set_clock_offset(offset)
                truth = -offset
                time.sleep(rng.uniform(0.0, 1.0))  # a random phase for the single sample
                single = single_sample_skew(client)
                t0 = time.perf_counter()
                estimate = estimate_clock_skew(client, max_probes=MAX_PROBES)
                wall = time.perf_counter() - t0
                error = estimate.offset_s - truth
                truth_inside &= abs(error) <= estimate.uncertainty_s + 1e-9
                results[offset].append(
                    (error, estimate.probes, estimate.uncertainty_s, wall, single.offset_s - truth)
                )
                ctx.log(
                    f"4 rep {rep + 1}: offset {offset:+.2f} s: error {error * 1000:+.1f} ms in "
                    f"{estimate.probes} probes ({wall:.1f} s); single sample "
                    f"{(single.offset_s - truth) * 1000:+.0f} ms"
                )
        client.session.close()
    for offset in offsets:
        rs = results[offset]
        errors = [r[0] for r in rs]
        probes = [r[1] for r in rs]
        singles = [r[4] for r in rs]
        worst_error = max(worst_error, *(abs(e) for e in errors))
        worst_probes = max(worst_probes, *probes)
        table.add(
            f"{offset:+.2f}",
            f"{-offset:+.2f}",
            Summary.of(errors).fmt(1, scale=1000),
            f"{max(abs(e) for e in errors) * 1000:.1f}",
            Summary.of([float(p) for p in probes]).fmt(0),
            Summary.of([r[2] for r in rs]).fmt(1, scale=1000),
            Summary.of([r[3] for r in rs]).fmt(1),
            Summary.of(singles).fmt(0, scale=1000),
            f"{max(abs(e) for e in singles) * 1000:.0f}",
        )
    section.tables.append(table)
    section.verdicts += [
        Verdict(
            f"abs(error) ≤ {MAX_ERROR_S * 1000:g} ms (every offset, every repetition)",
            f"worst {worst_error * 1000:.1f} ms",
            worst_error <= MAX_ERROR_S,
        ),
        Verdict(
            f"≤ {MAX_PROBES} probes",
            f"at most {worst_probes}",
            worst_probes <= MAX_PROBES,
        ),
    ]
    if not truth_inside:
        section.notes.append(
            "in at least one run the true offset lay outside the estimate's claimed uncertainty."
        )
    section.how = (
        "one in-process simulator on 127.0.0.1 with no added latency; for each offset "
        "`sim.set_clock_offset(offset)`, then one `single_sample_skew` at a random phase of the "
        f"second, then `estimate_clock_skew(client, max_probes={MAX_PROBES})` with its default "
        "target uncertainty (10 ms), through a keyless `KrakenClient`. Error = estimate − (−offset) "
        "(the estimate is local − Kraken). Median (min–max) over "
        f"{ctx.reps} repetition(s), offsets interleaved. 'estimate wall s' is mostly waiting for "
        "the server's second boundaries (by design)."
    )
    return section
