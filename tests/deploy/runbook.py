"""The runbook (docs/alerts.md) as the alerts link to it, and the links between the README and the
docs pages: GitHub-style heading anchors."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from testkit.env import ROOT

README = ROOT / "README.md"
RUNBOOK = ROOT / "docs" / "alerts.md"
#: where the alerts' runbook_url annotations point (the runbook as GitHub renders it)
RUNBOOK_BASE = "https://github.com/krakenwatch/krakenwatch/blob/main/docs/alerts.md"
#: alerts about one account: they carry an `account` label and annotation, and Alertmanager
#: holds them back while Kraken is not online
PER_ACCOUNT_ALERTS = frozenset(
    {
        "KrakenInvalidNonceErrors",
        "KrakenAccountDown",
        "KrakenVerificationCheckFailing",
        "KrakenGatewayInvalidNonce",
        "KrakenGatewayRateLimited",
        "KrakenGatewayQueueSaturated",
        "KrakenStreamDown",
        "KrakenTradingRateCounterHigh",
        "KrakenBalanceMismatch",
    }
)
_HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE_RE = re.compile(r"^\s*(```|~~~)")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, inline markup and punctuation dropped
    (letters, digits, `_`, `-` and spaces stay), spaces become hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading).lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in ("L", "N", "M"))
    return kept.replace(" ", "-")


def heading_anchors(markdown: str) -> dict[str, str]:
    """anchor -> heading text for every heading outside code fences; repeated anchors get -1, -2
    as on GitHub."""
    anchors: dict[str, str] = {}
    seen: dict[str, int] = {}
    fenced = False
    for line in markdown.splitlines():
        if _FENCE_RE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING_RE.match(line)
        if match is None:
            continue
        text = match.group(2)
        slug = github_slug(text)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors[slug if count == 0 else f"{slug}-{count}"] = text.strip("`")
    return anchors


def runbook_sections() -> dict[str, str]:
    """Every runbook heading as a runbook URL -> its heading text."""
    anchors = heading_anchors(RUNBOOK.read_text(encoding="utf-8"))
    return {f"{RUNBOOK_BASE}#{anchor}": text for anchor, text in anchors.items()}


def markdown_section(title: str, path: Path = RUNBOOK) -> str:
    """The text of ``path`` from the heading ``title`` to the next heading of the same level."""
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"^(#+) {re.escape(title)}\n", text, re.MULTILINE)
    assert match, f"{path.name} has no heading {title!r}"
    level = match.group(1)
    end = re.search(rf"^{level} ", text[match.end() :], re.MULTILINE)
    return text[match.end() : match.end() + end.start()] if end else text[match.end() :]
