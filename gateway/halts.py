"""The kill switch: halts per account or per client credential, kept in the guard's store so they
outlive a restart and bind every gateway that shares the store.

* :meth:`HaltBoard.halt` writes the halt and its log entry, then waits until no request of the
  account's key is in flight anywhere (the nonce store's lock): a call that opens or changes orders
  reads the halts right before it leaves, with the key held, so once :meth:`halt` returns no such
  call leaves on any gateway of the store.
* Each gateway follows the store's log (every :data:`POLL_S`) and keeps a copy of the halts for
  its quick refusals and its pages; halts and resumes made elsewhere (``krakenwatch gateway halt``,
  another replica) become events within a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from .guardstore import GuardLogEntry, GuardStore, GuardStoreError
from .guardview import HALT, RESUME, GuardEvent, HaltRecord

__all__ = ["POLL_S", "HaltBoard", "halt_event"]

log = logging.getLogger("krakenwatch.gateway")

#: how often a gateway reads the halts and the log of the store
POLL_S = 0.25
#: the longest a halt's reason may be
MAX_REASON = 500


def halt_event(entry: GuardLogEntry) -> GuardEvent:
    """The timeline's event of a halt or a resume."""
    scope = entry.account if entry.client is None else f"{entry.account}/{entry.client}"
    if entry.kind == HALT:
        detail = f"halted {scope} ({entry.origin}): {entry.reason}"
    else:
        detail = f"resumed {scope} ({entry.origin})"
    data = {"client": entry.client, "reason": entry.reason, "origin": entry.origin}
    return GuardEvent(entry.kind, entry.account, detail, data, entry.at)


def check_halt(
    account: str, client: str | None, reason: str | None, accounts: Iterable[str]
) -> str:
    """``reason`` stripped; ``ValueError`` naming what is wrong (an unknown account, an empty or
    over-long reason)."""
    known = sorted(accounts)
    if account not in known:
        raise ValueError(
            f"unknown account {account!r}; the gateway's accounts are {', '.join(known)}"
        )
    if client is not None and not client.strip():
        raise ValueError("--client: empty; name a client credential, or leave it out")
    if reason is None:
        return ""
    text = " ".join(reason.split())
    if not text:
        raise ValueError("--reason: empty; say why (it is shown on the timeline)")
    if len(text) > MAX_REASON:
        raise ValueError(f"--reason: longer than {MAX_REASON} characters")
    return text


class HaltBoard:
    """The halts every gateway of the store obeys (see the module docstring)."""

    def __init__(
        self,
        store: GuardStore,
        accounts: Mapping[str, str],
        on_event: Callable[[GuardEvent], None],
        *,
        poll_s: float = POLL_S,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        #: account label -> its key id (a halt binds a label on its key only)
        self.keys = dict(accounts)
        self.accounts = frozenset(accounts)
        self._on_event = on_event
        self._poll_s = poll_s
        self._clock = clock
        #: guards the copy of the halts (held for no I/O: the quick refusals take it)
        self._lock = threading.Lock()
        #: one reader of the store at a time (each log entry is reported once)
        self._reading = threading.Lock()
        self._halts: dict[tuple[str, str | None], HaltRecord] = {}
        #: where this gateway is in the store's log (``None``: not read yet)
        self._cursor: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: why the store could not be read lately (``None``: it could)
        self.problem: str | None = None
        try:  # a store out of reach now is read later; orders fail closed meanwhile
            self.poll()
        except GuardStoreError as exc:
            self.problem = str(exc)

    def _read(self) -> dict[tuple[str, str | None], HaltRecord]:
        return {
            (h.account, h.client): h for k, h in self.store.halts() if self.keys.get(h.account) == k
        }

    # -- reading ----------------------------------------------------------------------------------

    @property
    def halts(self) -> tuple[HaltRecord, ...]:
        with self._lock:
            return tuple(sorted(self._halts.values(), key=lambda h: h.at))

    def halted(self, account: str, client: str) -> HaltRecord | None:
        """The halt that binds ``client``'s calls on ``account`` (this gateway's copy)."""
        with self._lock:
            return self._halts.get((account, None)) or self._halts.get((account, client))

    def halted_now(self, account: str, client: str) -> HaltRecord | None:
        """The same, read from the store now (right before an order leaves; raises
        :class:`~gateway.guardstore.GuardStoreError` when the store cannot be read)."""
        key_id = self.keys[account]
        halts = {(h.account, h.client): h for k, h in self.store.halts() if k == key_id}
        return halts.get((account, None)) or halts.get((account, client))

    # -- writing ----------------------------------------------------------------------------------

    def halt(self, account: str, client: str | None, reason: str, origin: str) -> HaltRecord:
        """Write a halt (and its log entry); the caller then waits for the key to be idle."""
        text = check_halt(account, client, reason, self.accounts)
        record = HaltRecord(account, client, text, origin, self._clock())
        key_id = self.keys[account]
        self.store.put_halt(key_id, record)
        self.store.append(GuardLogEntry(HALT, account, client, text, origin, record.at, key_id))
        self.poll()
        return record

    def resume(self, account: str, client: str | None, origin: str) -> bool:
        """Lift a halt; ``False`` when there was none."""
        check_halt(account, client, None, self.accounts)
        key_id = self.keys[account]
        if not self.store.drop_halt(key_id, account, client):
            return False
        entry = GuardLogEntry(RESUME, account, client, "", origin, self._clock(), key_id)
        self.store.append(entry)
        self.poll()
        return True

    # -- following the store ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._follow, name="gateway-halts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def poll(self) -> None:
        """Read the halts and the new log entries; report each entry as an event."""
        entries: list[GuardLogEntry] = []
        with self._reading:
            halts = self._read()  # first: the copy stays right even when the log cannot be read
            with self._lock:
                self._halts = halts
            if self._cursor is None:  # from now on: what happened before is not news
                self._cursor = self.store.log_end()
            else:
                entries, self._cursor = self.store.log_since(self._cursor)
        for entry in entries:
            if self.keys.get(entry.account) == entry.key_id:
                self._on_event(halt_event(entry))

    def _follow(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self.poll()
                self.problem = None
            except GuardStoreError as exc:
                if self.problem is None:
                    log.warning("halts: %s", exc)
                self.problem = str(exc)
