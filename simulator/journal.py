"""The request journal: how each private request that names itself was judged, so a checker can
match what a client was told with what reached the simulated Kraken.

A request names itself with the form field :data:`REQUEST_FIELD` (``kw_request=<id>``, any text;
Kraken's methods ignore fields they do not know, and a gateway forwards it with every other byte
of the body). Each judged private request carrying it is kept (the newest :data:`MAX_ENTRIES`):
its key's name, the id as received, the nonce, the first error code (``null`` when accepted),
and when it arrived and when it was judged (``time.monotonic()`` of the simulator's host: on one
machine the same clock as every other process's). Requests without the field are not kept.

* ``GET /_sim/journal``          every entry kept, oldest first: ``{"entries": [...], "last": n}``
* ``GET /_sim/journal/<after>``  the entries whose ``seq`` is greater than ``after``
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any, Protocol
from urllib.parse import parse_qsl

from .keys import KeyState

__all__ = ["MAX_ENTRIES", "REQUEST_FIELD", "Journal", "JournalTarget", "handle_journal"]

REQUEST_FIELD = "kw_request"
MAX_ENTRIES = 200_000
_NEEDLE = REQUEST_FIELD.encode("ascii") + b"="


class Journal:
    """The kept entries (thread-safe); :meth:`record` is the engine's hook."""

    def __init__(self, limit: int = MAX_ENTRIES) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._lock = threading.Lock()
        self._seq = 0

    def record(self, ks: KeyState | None, body: bytes, answer: bytes, arrived: float) -> None:
        """Keep one judged private request of ``ks`` (``answer``: the JSON body it got) if its
        ``body`` carries :data:`REQUEST_FIELD`."""
        if ks is None or _NEEDLE not in body:
            return
        fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        request = next((value for name, value in fields if name == REQUEST_FIELD), None)
        if request is None:
            return
        nonce = next((value for name, value in fields if name == "nonce"), "")
        try:
            errors = json.loads(answer).get("error") or []
        except (ValueError, AttributeError):
            errors = ["(not JSON)"]
        entry = {
            "key": ks.name,
            "request": request,
            "nonce": nonce,
            "error": str(errors[0]) if errors else None,
            "arrived": arrived,
            "judged": time.monotonic(),
        }
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._entries.append(entry)

    def since(self, after: int = 0) -> dict[str, Any]:
        """``{"entries": [...], "last": n}``: the entries after sequence number ``after``."""
        with self._lock:
            entries = [dict(e) for e in self._entries if e["seq"] > after]
            return {"entries": entries, "last": self._seq}


class JournalTarget(Protocol):
    def journal_since(self, after: int) -> dict[str, Any]: ...


def handle_journal(sim: JournalTarget, verb: str, route: str) -> tuple[int, Any]:
    """``journal`` or ``journal/<after>`` (the route without ``/_sim/``)."""
    if verb != "GET":
        return 405, {"error": "use GET"}
    after = route.removeprefix("journal").strip("/") or "0"
    if not after.isdigit():
        return 400, {"error": "journal/<after>: after is a sequence number"}
    return 200, sim.journal_since(int(after))
