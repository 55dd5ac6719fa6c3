"""The trading guard as the gateway serves it: built beside the key lanes, asked before a bot's
call queues (:meth:`GuardDesk.admit`), and the gateway's halts, re-arms of the dead man's
switches and Kraken's pair names. :mod:`gateway.guard` decides; this module wires it to the
gateway's loop, its own calls (re-arms go through the key's lane) and its public proxy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from broker import AccountConfig
from broker.stores import nonce_store_spec

from .answers import Reply
from .credentials import Credentials
from .deadman import DEADMAN_CLIENT, trigger_time
from .guard import TradeJob, TradingGuard, halted_refusal
from .guardview import HaltRecord
from .keys import KeyLanes
from .public import PublicProxy
from .settings import GatewaySettings
from .tradeplan import is_trading

__all__ = ["PAIRS_RETRY_S", "GuardDesk"]

#: how long the gateway takes pair names as spelled after Kraken could not list them
PAIRS_RETRY_S = 60.0
#: the gateway's own private call: (account, method, fields, client) -> the answer
Forward = Callable[[str, str, bytes, str], Awaitable[Reply]]


class GuardDesk:
    def __init__(
        self,
        accounts: Sequence[AccountConfig],
        settings: GatewaySettings,
        keyed: KeyLanes,
        forward: Forward,
        public: PublicProxy,
    ):
        """The guard of ``keyed``'s lanes (each lane asks it right before a call leaves);
        ``forward`` makes the gateway's own calls (re-arms), ``public`` asks for pair names."""
        #: halts, order budgets, dead man's switches, other writers named
        self.guard = TradingGuard(
            accounts,
            tiers={label: lane.rate.tier for label, lane in keyed.by_account.items()},
            clients=keyed.client_of,
            nonce_store=settings.nonce_store or nonce_store_spec(),
            store_dir=settings.store_dir,
            enforce=settings.rate_limited,
            decay_scale=settings.trading_decay_scale,
            idle_timeout_s=settings.request_timeout_s,
            rearm=self.rearm_soon,
        )
        for lane in keyed.lanes.values():
            lane.guard = self.guard
        self._forward = forward
        self._public = public
        #: the client credentials (to check a halt's client), when the gateway has them
        self.credentials: Credentials | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Kraken's pair names are asked for again after this (``time.monotonic()``)
        self._pairs_retry_at = 0.0
        self._pairs_lock = asyncio.Lock()
        #: the gateway's loop, once it serves
        self.loop: asyncio.AbstractEventLoop | None = None

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.guard.stop()

    # -- a bot's call -------------------------------------------------------------------------------

    async def admit(
        self, account: str, client: str, method: str, fields: bytes, share: float | None
    ) -> Reply | TradeJob | None:
        """Before a bot's call queues: the refusal of a halted call, the guard's part of a
        trading call, or ``None`` (nothing for the guard). Every bot call keeps the account's
        dead man's switch armed."""
        self.guard.bot_called(account)
        if not is_trading(method):
            return None
        await self._learn_pairs()
        plan = self.guard.plan(method, fields)
        if plan is None:
            return None
        if plan.halts and self.guard.halted(account, client) is not None:
            return halted_refusal()
        return TradeJob(account, client, plan, fields, share=share)

    async def _learn_pairs(self) -> None:
        """Learn Kraken's pair names before the first trading call (one ``AssetPairs``, shared
        by the calls that arrive meanwhile); when Kraken cannot say, names are taken as spelled
        and it is asked again a minute later."""
        pairs = self.guard.pairs
        if pairs.loaded or time.monotonic() < self._pairs_retry_at:
            return
        async with self._pairs_lock:
            if pairs.loaded:
                return
            reply, _ = await self._public.get("AssetPairs", "")
            if not pairs.load(reply.body):
                self._pairs_retry_at = time.monotonic() + PAIRS_RETRY_S

    def observe(self, account: str, pair: str, level: float) -> None:
        """Kraken's own counter of ``pair`` (the account's stream; any thread): applied once
        Kraken's pair names are known, so ``BTC/USD`` lands on the bots' ``XXBTZUSD``."""
        loop = self.loop
        if self.guard.pairs.loaded or loop is None or loop.is_closed():
            self.guard.observe(account, pair, level)
            return
        asyncio.run_coroutine_threadsafe(self._observe_later(account, pair, level), loop)

    async def _observe_later(self, account: str, pair: str, level: float) -> None:
        await self._learn_pairs()
        await asyncio.to_thread(self.guard.observe, account, pair, level)

    # -- halts ------------------------------------------------------------------------------------

    def halt(self, account: str, reason: str, *, client: str | None, origin: str) -> HaltRecord:
        self._check_client(account, client)
        return self.guard.halt(account, reason, client=client, origin=origin)

    def resume(self, account: str, *, client: str | None, origin: str) -> bool:
        self._check_client(account, client)
        return self.guard.resume(account, client=client, origin=origin)

    def _check_client(self, account: str, client: str | None) -> None:
        if client is None or self.credentials is None:
            return
        names = {c.name for c in self.credentials.table.clients if c.account == account}
        names.add("account-key")
        if client not in names:
            raise ValueError(
                f"--client: no client {client!r} on {account} (its clients: "
                f"{', '.join(sorted(names))})"
            )

    # -- the dead man's switches ------------------------------------------------------------------

    def rearm_soon(self, account: str) -> None:
        """Queue a re-arm of ``account``'s dead man's switch (called on the gateway's loop)."""
        task = asyncio.get_running_loop().create_task(self._rearm(account))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _rearm(self, account: str) -> None:
        dead_man = self.guard.dead_men[account]
        fields = f"timeout={dead_man.timeout_s}".encode()
        try:
            reply = await self._forward(account, "CancelAllOrdersAfter", fields, DEADMAN_CLIENT)
        except asyncio.CancelledError:  # the gateway stops: nothing to tell
            dead_man.failed("the gateway stopped")
            raise
        except Exception as exc:  # a failure of ours: said, and tried again with a later call
            self.guard.rearm_failed(account, f"not sent: {type(exc).__name__}")
            return
        if reply.outcome != "ok":
            self.guard.rearm_failed(account, reply.codes[0] if reply.codes else reply.outcome)
            return
        try:
            trigger = trigger_time(reply.body)
        except (ValueError, KeyError, TypeError, AttributeError):
            self.guard.rearm_failed(account, "Kraken's answer had no triggerTime that can be read")
            return
        self.guard.rearm_done(account, trigger)
