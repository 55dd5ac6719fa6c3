"""The registry in the Prometheus text format, byte for byte as ``generate_latest`` writes it, with
each series' name and labels written once.

``generate_latest`` escapes, sorts and joins every label of every sample on every scrape: at 200
accounts that was most of a scrape (4,400 samples, two thirds of the time of ``/metrics``), while
the series barely change. :class:`TextWriter` keeps, per series (sample name and labels), the text
before its value; a scrape writes only the values. The cache is dropped when it grows well past the
series of a scrape (series that went away), so it stays the size of one exposition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import escape_label_name, escape_metric_name
from prometheus_client.utils import floatToGoString

__all__ = ["TextWriter", "family_header", "series_prefix"]

#: prometheus_client's number format (untyped upstream)
_number: Callable[[float], str] = floatToGoString
#: the type a family is written with (the rest keep theirs), and the suffix of its name
_TYPES = {
    "counter": ("counter", "_total"),
    "info": ("gauge", "_info"),
    "stateset": ("gauge", ""),
    "gaugehistogram": ("histogram", ""),
    "unknown": ("untyped", ""),
}
#: OpenMetrics-only samples, written after the family as gauges of their own (as upstream)
_OM_SUFFIXES = ("_created", "_gsum", "_gcount")
#: the cache is dropped when it holds more than this many times the series of a scrape (+ slack)
_GROWTH, _SLACK = 2, 1000

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


def family_header(name: str, documentation: str, mtype: str) -> str:
    """The ``# HELP`` and ``# TYPE`` lines of a family."""
    name = escape_metric_name(name)
    text = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {text}\n# TYPE {name} {mtype}\n"


def series_prefix(name: str, labels: dict[str, str]) -> str:
    """A sample line up to its value: the name and the sorted, escaped labels, then a space."""
    inner = ",".join(f'{escape_label_name(k)}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{escape_metric_name(name)}{{{inner}}} " if inner else f"{escape_metric_name(name)} "


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class TextWriter:
    """Writes a collector's families as ``generate_latest`` does; see the module docstring.

    Safe to share between threads: a cache entry is the same text whoever writes it.
    """

    def __init__(self) -> None:
        self._prefixes: dict[SeriesKey, str] = {}

    def write(self, families: Iterable[Metric]) -> bytes:
        prefixes = self._prefixes
        output: list[str] = []
        for metric in families:
            mtype, suffix = _TYPES.get(metric.type, (metric.type, ""))
            output.append(family_header(metric.name + suffix, metric.documentation, mtype))
            om_names = {metric.name + om: om for om in _OM_SUFFIXES}
            extra: dict[str, list[str]] = {}
            for s in metric.samples:
                key = (s.name, tuple(s.labels.items()))
                prefix = prefixes.get(key)
                if prefix is None:
                    prefix = prefixes[key] = series_prefix(s.name, s.labels)
                if s.timestamp is None:
                    line = f"{prefix}{_number(s.value)}\n"
                else:
                    line = f"{prefix}{_number(s.value)} {int(float(s.timestamp) * 1000):d}\n"
                om = om_names.get(s.name)
                if om is None:
                    output.append(line)
                else:
                    extra.setdefault(om, []).append(line)
            for om, lines in sorted(extra.items()):
                output.append(family_header(metric.name + om, metric.documentation, "gauge"))
                output.extend(lines)
        if len(prefixes) > _GROWTH * len(output) + _SLACK:
            self._prefixes = {}
        return "".join(output).encode("utf-8")
