"""The trading guard: what the gateway adds to a trading call besides the nonce and the call
counter. One object per gateway, used by the lanes (right before a call leaves, with the key held,
and after its answer) and by :class:`~gateway.core.Gateway` (halts, events, snapshots).

* **Order budget** per key and pair (:mod:`gateway.tradingbudget`, :mod:`gateway.tradeplan`): a
  transaction that would take a pair's counter over the threshold waits, up to the call's
  deadline, then is refused ``EOrder:Rate limit exceeded`` with nothing sent.
* **Kill switch** (:mod:`gateway.halts`): a halted account's (or client's) calls that open or
  change orders are refused ``EGeneral:Permission denied:halted``; cancels and queries pass.
* **Dead man's switch** (:mod:`gateway.deadman`) per account with ``CANCEL_AFTER``.
* **Another writer named**: Kraken refused a nonce the gateway issued (above everything it ever
  issued on the key): another program signs with the key.

Trouble with the guard's store fails closed for orders: nothing is sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from broker import AccountConfig, CallAbandonedError, KrakenClient
from broker.limits import TRADING_THRESHOLDS, Tier

from .answers import Reply, refusal
from .deadman import DeadMan
from .guardstore import GuardStore, GuardStoreError, OrderSeen, open_guard_store
from .guardview import (
    CANCEL_AFTER_FAILED,
    FOREIGN_WRITER,
    GuardEvent,
    GuardSnapshot,
    HaltRecord,
    PairCounter,
)
from .halts import HaltBoard
from .pairnames import PairNames
from .tradeplan import TradePlan, charges, learn, plan_for
from .tradingbudget import TradingBudget

__all__ = [
    "HALTED",
    "ORDER_RATE_LIMITED",
    "GuardHalted",
    "GuardNotYet",
    "TradeJob",
    "TradingGuard",
    "halted_refusal",
]

log = logging.getLogger("krakenwatch.gateway")

HALTED = "EGeneral:Permission denied:halted"
#: after :data:`HALTED` in a halted call's answer: the code client libraries map already
#: (ccxt's ``PermissionDenied`` matches it exactly)
PERMISSION_DENIED = "EGeneral:Permission denied"
ORDER_RATE_LIMITED = "EOrder:Rate limit exceeded"
#: beyond the request timeout, how long a halt waits for an order in flight to be answered
_IDLE_MARGIN_S = 5.0


class GuardHalted(CallAbandonedError):
    """Right before sending: the account (or the caller) is halted."""


class GuardNotYet(CallAbandonedError):
    """Right before sending: the order budget of a pair would overflow; try again in ``wait_s``."""

    def __init__(self, wait_s: float):
        super().__init__(f"the order budget allows this call in {wait_s:.2f} s")
        self.wait_s = wait_s


@dataclass(eq=False)
class TradeJob:
    """What the guard needs of one trading call in a lane."""

    account: str
    client: str
    plan: TradePlan
    fields: bytes
    #: the client credential's ``order_share`` (``None``: none)
    share: float | None = None
    #: pair -> the count charged before it left (given back when it was not sent)
    owed: dict[str, float] = field(default_factory=dict)
    #: the orders the gateway knew of when it was charged
    orders: list[OrderSeen] = field(default_factory=list)


def halted_refusal() -> Reply:
    """The answer to a call refused by a halt: ``["EGeneral:Permission denied:halted",
    "EGeneral:Permission denied"]``, HTTP 200, nothing sent."""
    return refusal(HALTED, also=(PERMISSION_DENIED,))


def _trading_tier(tier: Tier, scale: float) -> tuple[float, float]:
    threshold, decay = TRADING_THRESHOLDS[tier.name]
    return threshold, decay * scale


class TradingGuard:
    """The trading guard of one gateway (see the module docstring)."""

    def __init__(
        self,
        accounts: Sequence[AccountConfig],
        *,
        tiers: Mapping[str, Tier],
        clients: Mapping[str, KrakenClient],
        nonce_store: str,
        store_dir: Path,
        enforce: bool,
        decay_scale: float,
        idle_timeout_s: float,
        rearm: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ):
        self.store: GuardStore = open_guard_store(nonce_store, store_dir)
        self.pairs = PairNames()
        self._clock = clock
        self._clients = dict(clients)
        self._idle_timeout_s = idle_timeout_s + _IDLE_MARGIN_S
        self._key_of = {a.label: a.key_id for a in accounts}
        self._listeners: list[Callable[[GuardEvent], None]] = []
        self._lock = threading.Lock()
        self.board = HaltBoard(self.store, self._key_of, self._emit, clock=clock)
        self.budgets: dict[str, TradingBudget] = {}
        for a in accounts:
            if a.key_id not in self.budgets:
                threshold, decay = _trading_tier(tiers[a.label], decay_scale)
                self.budgets[a.key_id] = TradingBudget(
                    self.store, a.key_id, threshold, decay, enforce=enforce, clock=clock
                )
        self.dead_men = {
            a.label: DeadMan(a.label, a.cancel_after_s, _bound(rearm, a.label), clock=clock)
            for a in accounts
            if a.cancel_after_s
        }
        self._foreign: dict[str, int] = dict.fromkeys(self._key_of, 0)
        self._foreign_at: dict[str, float] = {}

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self.board.start()

    def stop(self) -> None:
        self.board.stop()
        self.store.close()

    def add_listener(self, callback: Callable[[GuardEvent], None]) -> None:
        with self._lock:
            self._listeners.append(callback)

    def _emit(self, event: GuardEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a listener's trouble never reaches a bot
                log.exception("guard event listener failed")

    # -- the calls --------------------------------------------------------------------------------

    def plan(self, method: str, fields: bytes) -> TradePlan | None:
        return plan_for(method, fields, self.pairs.canonical)

    def halted(self, account: str, client: str) -> HaltRecord | None:
        """This gateway's copy of the halts: a quick refusal before the call queues."""
        return self.board.halted(account, client)

    def before_send(self, job: TradeJob) -> None:
        """With the key held, right before the call leaves: refuse it when halted
        (:class:`GuardHalted`), hold it when a pair's budget would overflow
        (:class:`GuardNotYet`), else charge it. :class:`GuardStoreError` when the store fails."""
        if job.plan.halts and self.board.halted_now(job.account, job.client) is not None:
            raise GuardHalted(f"{job.account} is halted")
        key_id = self._key_of[job.account]
        try:
            self._settle_fired(job.account, key_id)
            job.orders = self.store.orders(key_id)
        except GuardStoreError as exc:
            if job.plan.halts:  # fail closed: no order leaves unguarded
                raise
            log.warning("%s %s: sent uncharged: %s", job.account, job.plan.method, exc)
            return  # a cancel is the way out: it leaves, uncharged
        job.owed = charges(job.plan, job.orders, self._clock())
        if not job.owed:
            return
        budget = self.budgets[key_id]
        try:
            wait = budget.take(job.owed, job.client, job.share, force=not job.plan.holds)
        except GuardStoreError as exc:
            job.owed = {}  # what was charged before the trouble stays charged: the safe side
            if job.plan.halts:
                raise
            log.warning("%s %s: sent uncharged: %s", job.account, job.plan.method, exc)
            return
        if wait > 0:
            job.owed = {}
            raise GuardNotYet(wait)

    def answered(self, job: TradeJob, sent: bool, body: bytes, codes: Sequence[str]) -> None:
        """After the answer (or after the call was not sent): learn the orders it opened and
        closed, and what Kraken said of the budget."""
        key_id = self._key_of[job.account]
        budget = self.budgets[key_id]
        try:
            if not sent:
                if job.owed:
                    budget.give_back(job.owed, job.client, job.share)
                return
            if ORDER_RATE_LIMITED in codes:  # Kraken's counter is full, whatever the model said
                for pair in job.owed or ([job.plan.pair] if job.plan.pair else []):
                    budget.raise_to(pair, budget.threshold)
            learned = learn(job.plan, body, job.fields, job.orders, self._clock())
            if learned.opened:
                self.store.remember(key_id, learned.opened)
            if learned.closed:
                self.store.forget(key_id, learned.closed)
        except GuardStoreError as exc:
            log.warning("%s: trading guard: %s", job.account, exc)

    def _settle_fired(self, account: str, key_id: str) -> None:
        """With the key held: the key's switch fired (the latest trigger any gateway of the
        store armed has passed) since the orders were last settled, so Kraken cancelled every
        order it had, each counted like a cancel."""
        if account not in self.dead_men:
            return
        trigger = self.store.counter(f"{key_id}|trigger")
        settled = self.store.counter(f"{key_id}|settled")
        now = self._clock()
        if trigger is None or trigger[0] > now or (settled and settled[0] >= trigger[0]):
            return
        self.store.set_counter(f"{key_id}|settled", trigger[0], now)
        orders = self.store.orders(key_id)
        owed = charges(TradePlan("CancelAll", every=True), orders, trigger[0])
        if owed:
            self.budgets[key_id].take(owed, force=True)
        self.store.forget(key_id, [o.txid for o in orders])

    # -- halts ------------------------------------------------------------------------------------

    def halt(self, account: str, reason: str, *, client: str | None, origin: str) -> HaltRecord:
        """Halt ``account`` (or its ``client``'s calls) and return once no call that opens or
        changes orders can leave on any gateway of the store."""
        record = self.board.halt(account, client, reason, origin)
        self._clients[account].wait_idle(self._idle_timeout_s)
        return record

    def resume(self, account: str, *, client: str | None, origin: str) -> bool:
        return self.board.resume(account, client, origin)

    # -- what Kraken says -------------------------------------------------------------------------

    def bot_called(self, account: str) -> None:
        dead_man = self.dead_men.get(account)
        if dead_man is not None:
            dead_man.bot_called()

    def rearm_done(self, account: str, trigger_at: float | None) -> None:
        """Kraken confirmed a re-arm: its trigger, shared with every gateway of the store (the
        latest wins), says when the orders are gone if nobody re-arms again."""
        self.dead_men[account].armed(trigger_at)
        if trigger_at is None:
            return
        scope = f"{self._key_of[account]}|trigger"
        try:
            found = self.store.counter(scope)
            if found is None or found[0] < trigger_at:
                self.store.set_counter(scope, trigger_at, self._clock())
        except GuardStoreError as exc:
            log.warning("%s: trading guard: %s", account, exc)

    def rearm_failed(self, account: str, error: str) -> None:
        dead_man = self.dead_men[account]
        dead_man.failed(error)
        failures = dead_man.state.failures
        detail = f"the dead man's switch could not be re-armed ({failures} failed): {error}"
        self._emit(
            GuardEvent(
                CANCEL_AFTER_FAILED,
                account,
                detail,
                {"error": error, "failures": failures},
                self._clock(),
            )
        )

    def foreign_writer(self, account: str, method: str) -> None:
        """Kraken refused a nonce the gateway issued: another program signs with the key."""
        now = self._clock()
        with self._lock:
            self._foreign[account] = count = self._foreign.get(account, 0) + 1
            self._foreign_at[account] = now
        detail = (
            f"Kraken refused the gateway's nonce on {method}: another program signs with this "
            "key; find it, or give it its own key"
        )
        self._emit(
            GuardEvent(FOREIGN_WRITER, account, detail, {"method": method, "count": count}, now)
        )

    def observe(self, account: str, pair: str, level: float) -> None:
        """Kraken's own trading counter of ``pair`` (the account's stream)."""
        key_id = self._key_of.get(account)
        if key_id is None:
            return
        try:
            self.budgets[key_id].raise_to(self.pairs.canonical(pair), level)
        except GuardStoreError as exc:
            log.warning("%s: trading guard: %s", account, exc)

    # -- what a page reads ------------------------------------------------------------------------

    def snapshot(self) -> GuardSnapshot:
        trading: dict[str, dict[str, PairCounter]] = {}
        for account, key_id in self._key_of.items():
            budget = self.budgets[key_id]
            try:
                levels = budget.levels()
            except GuardStoreError:
                levels = {}
            trading[account] = {
                pair: PairCounter(round(level, 3), budget.threshold)
                for pair, level in levels.items()
            }
        with self._lock:
            foreign, foreign_at = dict(self._foreign), dict(self._foreign_at)
        return GuardSnapshot(
            taken_at=self._clock(),
            halts=self.board.halts,
            dead_man={a: d.state for a, d in self.dead_men.items()},
            foreign_writers=foreign,
            foreign_writer_at=foreign_at,
            trading=trading,
        )


def _bound(rearm: Callable[[str], None], account: str) -> Callable[[], None]:
    return lambda: rearm(account)
