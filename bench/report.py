"""The results model (sections, tables, verdicts), summary statistics and the markdown rendering."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "MET",
    "MISSED",
    "NOT_MEASURED",
    "NO_TARGET",
    "Section",
    "Summary",
    "Table",
    "Verdict",
    "percentile",
    "render_section",
    "verdict_word",
]

MET, MISSED, NOT_MEASURED, NO_TARGET = "met", "MISSED", "not measured", "no target"


@dataclass(frozen=True)
class Summary:
    """Median with min and max over repetitions."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            raise ValueError("no values to summarise")
        return cls(statistics.median(values), min(values), max(values), len(values))

    def fmt(self, digits: int = 1, unit: str = "", scale: float = 1.0) -> str:
        """``12.3 (10.1–14.0)`` (the range is left out for a single value)."""
        m, lo, hi = self.median * scale, self.low * scale, self.high * scale
        text = f"{m:.{digits}f}{unit}"
        if self.n > 1:
            text += f" ({lo:.{digits}f}–{hi:.{digits}f})"
        return text


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def verdict_word(met: bool | None) -> str:
    return NOT_MEASURED if met is None else (MET if met else MISSED)


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        out = [line(self.headers), "|" + "|".join("---" for _ in self.headers) + "|"]
        out.extend(line(row) for row in self.rows)
        return "\n".join(out)


@dataclass
class Verdict:
    """One target, what was measured against it, and whether it was met (``None``: not measured)."""

    target: str
    measured: str
    met: bool | None

    @property
    def word(self) -> str:
        return verdict_word(self.met)


@dataclass
class Section:
    number: int
    title: str
    target: str
    how: str = ""
    tables: list[Table] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the traceback when the benchmark itself broke
    error: str | None = None
    elapsed_s: float = 0.0
    #: a section that is deliberately not measured yet (not an error)
    placeholder: bool = False

    @property
    def heading(self) -> str:
        return f"{self.number}. {self.title}"

    @property
    def status(self) -> str:
        if self.error is not None:
            return "ERROR"
        if self.placeholder or not self.verdicts:
            return NOT_MEASURED if self.placeholder else NO_TARGET
        if any(v.met is False for v in self.verdicts):
            return MISSED
        if any(v.met is None for v in self.verdicts):
            return NOT_MEASURED
        return MET


def render_section(section: Section) -> str:
    parts = [f"## {section.heading}", "", f"**Target:** {section.target}", ""]
    if section.error is not None:
        parts += [
            "**ERROR**: the benchmark broke; no figures. Traceback:",
            "",
            "```",
            section.error.rstrip(),
            "```",
            "",
        ]
    for table in section.tables:
        parts += [table.markdown(), ""]
    if section.verdicts:
        verdicts = Table(["target", "measured", "verdict"])
        for v in section.verdicts:
            verdicts.add(v.target, v.measured, f"**{v.word}**")
        parts += [verdicts.markdown(), ""]
    for note in section.notes:
        parts += [f"Note: {note}", ""]
    if section.how:
        parts += [f"_How measured:_ {section.how}", ""]
    if section.elapsed_s:
        parts += [f"_Run time of this section: {section.elapsed_s:.0f} s._", ""]
    return "\n".join(parts)
