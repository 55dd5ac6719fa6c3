"""``python -m bench.merge``: a partial run's sections replace the full run's, with their rows."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from bench.__main__ import render
from bench.merge import main, merge
from bench.report import Section, Table, Verdict

ROOT = Path(__file__).resolve().parents[2]


def partial(number: int, measured: str) -> str:
    table = Table(["figure"])
    table.add(measured)
    section = Section(
        number,
        "Something",
        "a target",
        how="how",
        tables=[table],
        verdicts=[Verdict("a target", measured, True)],
    )
    started = dt.datetime(2026, 12, 6, 21, 0, tzinfo=dt.UTC)
    return render(
        [section],
        quick=False,
        started=started,
        elapsed_s=1.0,
        load=("0", "0"),
        argv=["--only", str(number)],
    )


def headings(text: str) -> list[str]:
    return re.findall(r"^## (.+)$", text, re.M)


def test_a_partial_run_replaces_its_sections_and_rows_and_says_so(tmp_path: Path) -> None:
    full = (ROOT / "bench" / "RESULTS.md").read_text("utf-8")
    merged = merge(full, partial(3, "first figure"))
    # section 3 replaced in place, the others as they were
    assert [h.split(".")[0] for h in headings(merged)] == [h.split(".")[0] for h in headings(full)]
    assert "## 3. Something" in merged and "## 3. Fleet verification" not in merged
    assert "first figure" in merged
    assert "| measured again | 3 on 2026-12-06 21:00:00" in merged
    rows = [line for line in merged.splitlines() if line.startswith("| 3. ")]
    assert rows == ["| 3. Something | a target | first figure | **met** |"]
    # a new benchmark goes after the others; merging again replaces, never doubles
    again = merge(merge(merged, partial(99, "new")), partial(3, "second figure"))
    assert headings(again)[-1] == "99. Something"
    assert "first figure" not in again and again.count("| measured again |") == 1
    assert [line for line in again.splitlines() if line.startswith("| 3. ")] == [
        "| 3. Something | a target | second figure | **met** |"
    ]
    for unchanged in ("## 1. Nonce race", "## 11. Gateway nonce race"):
        block = full.split(unchanged, 1)[1].split("\n## ", 1)[0]
        assert block in again


def test_a_file_that_is_not_bench_output_is_refused(tmp_path: Path) -> None:
    into = tmp_path / "RESULTS.md"
    into.write_text((ROOT / "bench" / "RESULTS.md").read_text("utf-8"))
    stray = tmp_path / "notes.md"
    stray.write_text("# notes\n")
    assert main([str(stray), "--into", str(into)]) == 2
    assert into.read_text() == (ROOT / "bench" / "RESULTS.md").read_text("utf-8")
