"""Injected faults: what goes wrong between a client and Kraken (CDN errors, outages, hangs).

Faults are set as a whole (``set_faults`` replaces the previous set; no arguments clears) and apply
to API requests only, never to the ``/_sim/`` admin routes. With ``count=N`` they apply to the next
N requests in ``scope`` (and, with ``methods``, only to requests for those API methods, e.g.
``["AddOrder"]``) and then clear themselves; with ``probability=p`` each request is hit
with probability p (the soak's random faults). Precedence when several are set: ``drop``, then
``hang``, then ``http_status``, then ``body`` (a raw HTTP 200 body, for malformed answers), then
``api_error``; ``latency_ms`` replaces the scenario's latency
and ``system_status`` overrides the scenario's status for the requests the faults apply to.

``late_ms=N`` is a late delivery: the request is held until its client gives up (closes the
connection, e.g. after its read timeout), then judged ``N`` ms later as if it had only just
arrived; nobody reads the answer. It shows what a late request does to the next one.

A hung request is answered by nothing: it waits until the faults are set or cleared explicitly
(a ``count`` running out does not release it) or the simulator stops, and then its connection is
closed without a response.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass
from typing import TypeGuard

from .scenario import SYSTEM_STATUSES

__all__ = ["FAULT_FIELDS", "FaultController", "Faults", "make_faults"]

FAULT_FIELDS = (
    "latency_ms",
    "late_ms",
    "http_status",
    "api_error",
    "body",
    "hang",
    "drop",
    "system_status",
    "count",
    "scope",
    "methods",
    "probability",
)
_SCOPES = ("all", "private", "public")


@dataclass(frozen=True)
class Faults:
    latency_ms: tuple[float, float] | None = None
    late_ms: float | None = None
    http_status: int | None = None
    api_error: str | None = None
    body: str | None = None
    hang: bool = False
    drop: bool = False
    system_status: str | None = None
    count: int | None = None
    scope: str = "all"
    #: API method names the faults apply to (``None``: every method)
    methods: tuple[str, ...] | None = None
    probability: float = 1.0

    @property
    def empty(self) -> bool:
        return (
            self.latency_ms is None
            and self.late_ms is None
            and self.http_status is None
            and self.api_error is None
            and self.body is None
            and not self.hang
            and not self.drop
            and self.system_status is None
        )

    def applies_to(self, kind: str, method: str) -> bool:
        return (
            not self.empty
            and self.scope in ("all", kind)
            and (self.methods is None or method in self.methods)
        )

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        if self.latency_ms is not None:
            data["latency_ms"] = list(self.latency_ms)
        if self.methods is not None:
            data["methods"] = list(self.methods)
        return data


def make_faults(**kw: object) -> Faults:
    """Validate fault settings (the ``set_faults`` keywords). Raises ``ValueError``."""
    unknown = sorted(set(kw) - set(FAULT_FIELDS))
    if unknown:
        raise ValueError(f"unknown fault {unknown[0]!r} (known: {', '.join(FAULT_FIELDS)})")
    # checked in this order: the first bad setting is the one reported
    return Faults(
        latency_ms=_latency(kw.get("latency_ms")),
        late_ms=_late(kw.get("late_ms")),
        http_status=_http_status(kw.get("http_status")),
        api_error=_api_error(kw.get("api_error")),
        body=_body(kw.get("body")),
        probability=_probability(kw.get("probability", 1.0)),
        system_status=_system_status(kw.get("system_status")),
        count=_count(kw.get("count")),
        scope=_scope(kw.get("scope", "all")),
        methods=_methods(kw.get("methods")),
        hang=_flag("hang", kw.get("hang", False)),
        drop=_flag("drop", kw.get("drop", False)),
    )


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _latency(value: object) -> tuple[float, float] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(_is_number(v) for v in value)
        or not 0 <= value[0] <= value[1]
    ):
        raise ValueError("latency_ms must be [lo, hi] with 0 <= lo <= hi")
    return float(value[0]), float(value[1])


def _late(value: object) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not 0 <= value <= 600_000:
        raise ValueError("late_ms must be a number of milliseconds in [0, 600000]")
    return float(value)


def _http_status(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
        raise ValueError("http_status must be an HTTP error status (400..599), e.g. 502 or 503")
    return value


def _api_error(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError("api_error must be a Kraken error string, e.g. 'EService:Unavailable'")
    return value


def _body(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError("body must be a string (the raw HTTP 200 answer)")
    return value


def _probability(value: object) -> float:
    if not _is_number(value) or not 0 < value <= 1:
        raise ValueError("probability must be a number in (0, 1]")
    return float(value)


def _system_status(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in SYSTEM_STATUSES:
        raise ValueError(f"system_status must be one of {', '.join(SYSTEM_STATUSES)}")
    return value


def _count(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("count must be an integer >= 1")
    return value


def _scope(value: object) -> str:
    if not isinstance(value, str) or value not in _SCOPES:
        raise ValueError(f"scope must be one of {', '.join(_SCOPES)}")
    return value


def _methods(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(m, str) and m for m in value)
    ):
        raise ValueError('methods must be a non-empty list of API method names, e.g. ["AddOrder"]')
    return tuple(str(m) for m in value)


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


class FaultController:
    """Thread-safe holder of the current faults."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._faults = Faults()
        self._remaining: int | None = None
        self._generation = 0
        self._closed = False
        self._hanging = 0
        self._rng = random.Random()

    def set(self, faults: Faults) -> None:
        with self._cond:
            self._faults = faults
            self._remaining = faults.count
            self._generation += 1
            self._cond.notify_all()

    def clear(self) -> None:
        self.set(Faults())

    def current(self) -> dict[str, object]:
        with self._cond:
            data = self._faults.to_dict()
            data["remaining"] = self._remaining
            data["hanging"] = self._hanging
            return data

    def claim(self, kind: str, method: str) -> tuple[Faults | None, int]:
        """The faults that apply to one request of ``kind`` ("public"/"private") for API
        ``method``, consuming one use of ``count``; plus the generation a hung request waits on."""
        with self._cond:
            faults = self._faults
            if not faults.applies_to(kind, method):
                return None, self._generation
            if faults.probability < 1.0 and self._rng.random() >= faults.probability:
                return None, self._generation
            if self._remaining is not None:
                self._remaining -= 1
                if self._remaining <= 0:
                    self._faults = Faults()
                    self._remaining = None
            return faults, self._generation

    def wait_released(self, generation: int) -> None:
        """Block a hung request until the faults are set/cleared explicitly or :meth:`close`."""
        with self._cond:
            self._hanging += 1
            self._cond.notify_all()
            try:
                while not self._closed and self._generation == generation:
                    self._cond.wait()
            finally:
                self._hanging -= 1
                self._cond.notify_all()

    def wait_hanging(self, count: int, timeout: float) -> None:
        """Block until at least ``count`` requests hang; ``TimeoutError`` otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._hanging >= count, timeout):
                raise TimeoutError(f"{count} hung request(s) not seen within {timeout} s")

    def close(self) -> None:
        """Release every hung request (the simulator is stopping)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
