"""``python -m bench [--quick] [--output PATH] [--only 1,3]``: run the suite, write the results table.

A full run of every benchmark writes ``bench/RESULTS.md`` unless ``--output`` says otherwise; a
``--quick`` or ``--only`` run writes only where ``--output`` points (so it never overwrites the
reference results by accident). The markdown is printed to stdout as well, progress to stderr.
Exit status: 0 when every benchmark ran (missed targets included: benchmarks are not tests),
1 when a benchmark broke (its section shows the error), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from .kit import ROOT, Context
from .report import Section, Table, render_section

#: number -> (module, title) — the order of the results file
SUITE: dict[int, tuple[str, str]] = {
    1: ("bench.nonce_race", "Nonce race"),
    2: ("bench.overhead", "Overhead of one-writer-per-key"),
    3: ("bench.fleet", "Fleet verification"),
    4: ("bench.skew", "Clock skew accuracy"),
    5: ("bench.scrape", "Scrape cost"),
    6: ("bench.dashboard_cost", "Dashboard cost"),
    7: ("bench.soak", "Soak"),
    8: ("bench.nonce_store", "Redis nonce store"),
    9: ("bench.gateway_latency", "Gateway added latency"),
    10: ("bench.gateway_throughput", "Gateway throughput across keys"),
    11: ("bench.gateway_race", "Gateway nonce race"),
    12: ("bench.streams", "Account streams"),
    13: ("bench.guard", "Trading guard"),
    14: ("bench.hosts", "Multi-host faults"),
    15: ("bench.stage_profile", "Per-stage profile"),
}
DEFAULT_OUTPUT = ROOT / "bench" / "RESULTS.md"


def parse_only(text: str) -> list[int]:
    try:
        chosen = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use benchmark numbers like 1,3") from None
    unknown = [n for n in chosen if n not in SUITE]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"{text!r}: benchmarks are numbered {min(SUITE)}-{max(SUITE)}"
        )
    return chosen


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one repetition, fewer calls and sizes (about a minute); keeps the scripts alive",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"where to write the markdown (default for a full run: {DEFAULT_OUTPUT.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--only",
        type=parse_only,
        default=None,
        metavar="LIST",
        help="comma-separated benchmark numbers to run, e.g. 1,3",
    )
    return parser


def run_one(number: int, ctx: Context) -> Section:
    module_name, title = SUITE[number]
    ctx.log(f"--- {number}. {title}")
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
        section: Section = module.run(ctx)
    except Exception:
        target = "(the benchmark broke before reporting its target)"
        with_target = sys.modules.get(module_name)
        if with_target is not None:
            target = getattr(with_target, "TARGET", target)
        section = Section(number, title, target, error=traceback.format_exc())
        ctx.log(f"{number}. {title}: ERROR\n{section.error}")
    section.elapsed_s = time.perf_counter() - t0
    ctx.log(f"{number}. {title}: {section.status} in {section.elapsed_s:.0f} s")
    return section


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--", ".", ":(exclude)bench/RESULTS.md")
    except (OSError, subprocess.SubprocessError):
        return "not available"
    return f"{commit} (with uncommitted changes)" if dirty else commit


def render(
    sections: list[Section],
    *,
    quick: bool,
    started: dt.datetime,
    elapsed_s: float,
    load: tuple[str, str],
    argv: Sequence[str],
) -> str:
    mode = "quick (1 repetition, reduced sizes: keeps the scripts alive, not reference numbers)"
    if not quick:
        mode = "full (3 repetitions)"
    header = Table(["", ""])
    header.add("date (UTC)", started.strftime("%Y-%m-%d %H:%M:%S"))
    header.add("host", platform.node() or "unknown")
    header.add("CPUs", os.cpu_count() or "unknown")
    header.add("platform", platform.platform())
    header.add("Python", f"{platform.python_implementation()} {platform.python_version()}")
    header.add("git commit", git_commit())
    header.add("command", " ".join(["python -m bench", *argv]))
    header.add("mode", mode)
    header.add("load average (1 min) at start / end", f"{load[0]} / {load[1]}")
    header.add("total run time", f"{elapsed_s:.0f} s")
    summary = Table(["benchmark", "target", "measured", "verdict"])
    for s in sections:
        if s.verdicts and s.error is None:
            for v in s.verdicts:  # every target with its figure
                summary.add(s.heading, v.target, v.measured, f"**{v.word}**")
        else:  # no target, not measured, or the benchmark broke
            summary.add(s.heading, s.target, "–", s.status)
    parts = [
        "# krakenwatch benchmark results",
        "",
        "Written by `python -m bench` (`make bench`); every figure below is measured in this run, "
        "side by side with its baseline, as median (min–max) over repetitions. Do not edit by "
        "hand. The machine is shared and noisy: compare ratios, not absolute numbers.",
        "",
        header.markdown(),
        "",
        "## Summary",
        "",
        summary.markdown(),
        "",
    ]
    parts += [render_section(s) for s in sections]
    return "\n".join(parts).rstrip() + "\n"


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(args_list)
    chosen = args.only or sorted(SUITE)
    output: Path | None = args.output
    if output is None and not args.quick and args.only is None:
        output = DEFAULT_OUTPUT
    started = dt.datetime.now(dt.UTC)
    load_start = _load()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="krakenwatch-bench-") as tmp:
        ctx = Context(quick=args.quick, tmp=Path(tmp))
        sections = [run_one(number, ctx) for number in chosen]
    text = render(
        sections,
        quick=args.quick,
        started=started,
        elapsed_s=time.perf_counter() - t0,
        load=(load_start, _load()),
        argv=args_list,
    )
    sys.stdout.write(text)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        print(f"[bench] results written to {output}", file=sys.stderr)
    else:
        print("[bench] quick/partial run without --output: results printed only", file=sys.stderr)
    broken = [s.heading for s in sections if s.error is not None]
    if broken:
        print(f"[bench] broken benchmark(s): {', '.join(broken)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
