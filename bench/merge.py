"""``python -m bench.merge PARTIAL [--into bench/RESULTS.md]``: put the sections of a partial run
(``python -m bench --only 12 --output PARTIAL``) into the full results, in place of the same
sections of the full run, with their summary rows; the header says which sections were measured
again, when and on which commit (a full ``make bench`` takes most of an hour; a new benchmark
or a changed one need not wait for it). Exit 0 merged, 2 for a file that is not bench output.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from .kit import ROOT

SECTION = re.compile(r"^## (\d+)\. ", re.M)
ROW = re.compile(r"^\| (\d+)\. ")


class NotBenchOutput(ValueError):
    pass


def _header_value(text: str, name: str) -> str:
    found = re.search(rf"^\| {re.escape(name)} \| (.+?) \|$", text, re.M)
    if found is None:
        raise NotBenchOutput(f"no {name!r} row in its header")
    return found.group(1)


def _sections(text: str) -> dict[int, str]:
    """Section number -> its text (from its heading to the next one)."""
    starts = [(int(m.group(1)), m.start()) for m in SECTION.finditer(text)]
    ends = [s for _, s in starts[1:]] + [len(text)]
    return {n: text[s:e].rstrip() + "\n" for (n, s), e in zip(starts, ends, strict=True)}


def _number(row: str) -> int:
    found = ROW.match(row)
    return int(found.group(1)) if found else 0


def _summary_rows(text: str) -> list[str]:
    summary = text.split("## Summary", 1)[1].split("\n## ", 1)[0]
    return [line for line in summary.splitlines() if ROW.match(line)]


def merge(full: str, partial: str) -> str:
    if "## Summary" not in full or "## Summary" not in partial:
        raise NotBenchOutput("no summary")
    new_sections = _sections(partial)
    if not new_sections:
        raise NotBenchOutput("no benchmark section")
    numbers = sorted(new_sections)
    sections = {**_sections(full), **new_sections}
    rows = [r for r in _summary_rows(full) if _number(r) not in numbers]
    rows += _summary_rows(partial)
    rows.sort(key=_number)
    head, _, _ = full.partition("## Summary")
    said = (
        f"{', '.join(map(str, numbers))} on {_header_value(partial, 'date (UTC)')}, commit "
        f"{_header_value(partial, 'git commit')} (`{_header_value(partial, 'command')}`, "
        f"{_header_value(partial, 'mode').split(' (')[0]})"
    )
    head = re.sub(r"^\| measured again \| .+ \|\n", "", head, flags=re.M)
    head = head.replace("| total run time |", f"| measured again | {said} |\n| total run time |", 1)
    summary = "\n".join(
        [
            "## Summary",
            "",
            "| benchmark | target | measured | verdict |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    body = "\n".join(sections[n] for n in sorted(sections))
    return f"{head}{summary}\n\n{body}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.merge", description=__doc__)
    parser.add_argument("partial", type=Path)
    parser.add_argument("--into", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args(argv)
    try:
        merged = merge(args.into.read_text("utf-8"), args.partial.read_text("utf-8"))
    except (OSError, NotBenchOutput) as exc:
        print(f"bench.merge: {exc}", file=sys.stderr)
        return 2
    args.into.write_text(merged, encoding="utf-8")
    print(f"[bench] merged into {args.into}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
