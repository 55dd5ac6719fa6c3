"""The :class:`Gateway`: accounts + settings in; private and public calls answered; metrics out.

It knows nothing about HTTP servers (nothing here imports them): :mod:`gateway.routes` turns it
into Starlette routes and an app, :mod:`gateway.server` runs those on uvicorn. Embedding it (``up
--gateway``) means serving :func:`gateway.routes.create_app` (or mounting
:func:`gateway.routes.create_routes` and calling :meth:`Gateway.start` / :meth:`Gateway.stop` from
the host's lifespan). In-process callers share a key's single writer and rate budget with the bots:
:meth:`Gateway.forward` / :meth:`Gateway.call` send a form body through the gateway's own client,
:meth:`Gateway.take_turn` runs a call of the caller's own ``KrakenClient`` (the dashboard's monitor)
in the key's lane (:mod:`gateway.inprocess`).

A private call goes through, in order: the method name, the credential (``API-Key``: an account's
own key, or a client credential of the client file, see :mod:`gateway.credentials`), the body
(form-encoded, exactly one nonce), the signature over the raw body, the credential's method list,
the freshness of a state-changing call's nonce (:mod:`gateway.replay`), then the key's
:class:`~gateway.lanes.Lane`, which claims the request in the replay memory and sends it with the
gateway's own nonce through ``KrakenClient.forward_private`` (the shared nonce store, so ``up``,
``check`` and Python bots on the host coordinate with it), once the key is held and right after
checking that the bot is still there and its deadline has not passed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, TypeVar

from prometheus_client import CollectorRegistry, Counter

from broker import AccountConfig, Observer
from broker.codes import api_error_from_codes
from broker.stages import mark

from .answers import ABANDONED, Reply, refusal
from .auth import UNKNOWN, Authenticator, signature_matches
from .credentials import Credentials
from .datadir import private_data_dir, replay_guard
from .form import BodyError, check_content_type, split_nonce
from .guard import TradeJob
from .guarddesk import GuardDesk
from .guardview import GuardEvent, GuardSnapshot, HaltRecord
from .inprocess import OwnCall
from .jobs import STOPPING, Job, Run
from .keys import KeyLanes
from .methods import known_private, method_label, valid_public
from .metrics import CredentialsGauge, GatewayMetrics, LaneGauge
from .public import PublicProxy
from .ratemodel import RateModel, RateObserver
from .reloader import ClientFileReloader
from .replay import Claim
from .settings import GatewaySettings
from .watch import answer

__all__ = ["Gateway"]

PERMISSION_DENIED = "EGeneral:Permission denied"
INVALID_NONCE = "EAPI:Invalid nonce"
UNKNOWN_METHOD = "EGeneral:Unknown method"
#: threads for public calls (private calls have one per key)
PUBLIC_WORKERS = 8
#: beyond its wait and its own timeout, how long an in-process caller waits for its answer
TURN_MARGIN_S = 10.0
T = TypeVar("T")


class _Caller(NamedTuple):
    """Who a private call is counted for."""

    client: str = UNKNOWN
    account: str = UNKNOWN


class Gateway:
    """A Kraken-compatible signing gateway for ``accounts`` (see the module docstring)."""

    def __init__(
        self,
        accounts: Sequence[AccountConfig],
        settings: GatewaySettings,
        *,
        authenticator: Authenticator | None = None,
        registry: CollectorRegistry | None = None,
        invalid_nonces: Counter | None = None,
        observer: Observer | None = None,
    ):
        if not accounts:
            raise ValueError("a gateway needs at least one account")
        self.settings = settings
        self.accounts = list(accounts)
        private_data_dir(settings)  # first
        #: the accounts' keys and the client file's credentials (``None`` with an ``authenticator``)
        self.credentials: Credentials | None = None
        if authenticator is None:
            self.credentials = authenticator = Credentials(self.accounts, settings.config_path)
        self.authenticator = authenticator
        self.replays = replay_guard(settings)
        keys = len({a.key_id for a in self.accounts})
        self._executor = ThreadPoolExecutor(keys, thread_name_prefix="gateway-key")
        self._public_executor = ThreadPoolExecutor(PUBLIC_WORKERS, thread_name_prefix="gateway-pub")
        keyed = KeyLanes.build(self.accounts, settings, self._executor, observer)
        self._lanes, self._lane_of, self._clients = keyed.lanes, keyed.by_account, keyed.clients
        self.public = PublicProxy(
            settings.api_url,
            self._public_executor,
            timeout_s=settings.request_timeout_s,
            cache_s=settings.public_cache_s,
        )
        self.desk = GuardDesk(self.accounts, settings, keyed, self.forward, self.public)
        self.desk.credentials = self.credentials
        #: halts, order budgets, dead man's switches, other writers named
        self.guard = self.desk.guard
        self.metrics = GatewayMetrics(
            [lane.account for lane in self._lanes.values()],
            self._gauges,
            registry=registry,
            invalid_nonces=invalid_nonces,
            credentials=self._credentials_gauge if self.credentials is not None else None,
            guard=self.guard.snapshot,
        )
        #: charges calls made by other clients of these keys (the monitor's) to the rate models
        self.observer = RateObserver({key_id: lane.rate for key_id, lane in self._lanes.items()})
        self.started = False
        self.stopping = False
        #: the event loop the gateway serves on (set by :meth:`start`)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._reloader: ClientFileReloader | None = None
        if self.credentials is not None and self.credentials.path is not None:
            self._reloader = ClientFileReloader(self.credentials, settings.reload_interval_s)

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Ready to serve (called from the server's lifespan); from then on the client file is
        re-read when it changes, and on SIGHUP when serving from the main thread."""
        self.loop = self.desk.loop = asyncio.get_running_loop()
        if self._reloader is not None:
            self._reloader.start(self.loop)
        self.guard.start()
        self.started = True

    async def stop(self) -> None:
        """Refuse what is queued, let calls in flight finish, release threads and sessions."""
        self.stopping = True
        if self._reloader is not None:
            await self._reloader.stop()
        await asyncio.gather(*(lane.close() for lane in self._lanes.values()))
        self.desk.stop()
        self.public.close()
        self.replays.store.close()
        for client in self._clients:
            client.close()
        self._executor.shutdown(wait=False)
        self._public_executor.shutdown(wait=False)

    # -- what others read -------------------------------------------------------------------------

    def rate_model(self, account: str) -> RateModel:
        """The rate model of ``account``'s key (shared by every label of that key)."""
        return self._lane_of[account].rate

    # -- the trading guard ------------------------------------------------------------------------

    def guard_snapshot(self) -> GuardSnapshot:
        """Halts, dead man's switches, other writers and modelled trading counters, now."""
        return self.guard.snapshot()

    def add_guard_listener(self, callback: Callable[[GuardEvent], None]) -> None:
        """``callback`` gets every guard event (halts and resumes from any process, other
        writers, failed re-arms), from the gateway's threads: it must not block."""
        self.guard.add_listener(callback)

    def halt(
        self, account: str, reason: str, *, client: str | None = None, origin: str
    ) -> HaltRecord:
        """Halt ``account``'s calls that open or change orders (only ``client``'s when given);
        returns once none can leave on any gateway of the store. Blocking: call it from a
        thread, never the gateway's loop. ``ValueError`` names an unknown account or client,
        or an empty reason."""
        return self.desk.halt(account, reason, client=client, origin=origin)

    def resume(self, account: str, *, client: str | None = None, origin: str) -> bool:
        """Lift a halt; ``False`` when there was none."""
        return self.desk.resume(account, client=client, origin=origin)

    def observe_trading_counter(self, account: str, pair: str, level: float) -> None:
        """Kraken's own trading counter of ``pair`` from ``account``'s stream (``ratecount``)."""
        self.desk.observe(account, pair, level)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the gateway can serve, and why (per account: queue, modelled counter)."""
        store_ok = os.access(self.settings.store_dir, os.W_OK)
        ok = self.started and not self.stopping and store_ok
        doc: dict[str, Any] = {
            "ok": ok,
            "started": self.started,
            "stopping": self.stopping,
            "nonce_store_writable": store_ok,
            "accounts": [
                {
                    "account": a.label,
                    "tier": self.settings.tier_of(a).name,
                    "queue_depth": self._lane_of[a.label].depth,
                    "rate_level": round(self._lane_of[a.label].rate.level(), 3),
                }
                for a in self.accounts
            ],
        }
        credentials = self.credentials
        if credentials is not None:
            doc["clients"] = {
                "file": None if credentials.path is None else str(credentials.path),
                "in_use": len(credentials.table.clients),
                "skipped": len(credentials.table.skipped),
                "problem": credentials.problem,
            }
        return ok, doc

    def _credentials_gauge(self) -> CredentialsGauge:
        credentials = self.credentials
        assert credentials is not None
        table = credentials.table
        return CredentialsGauge(
            len(table.clients), credentials.problem is not None, dict(credentials.reloads)
        )

    def _gauges(self) -> Iterator[LaneGauge]:
        for lane in self._lanes.values():
            yield LaneGauge(
                lane.account, lane.rate.level(), lane.rate.limit, lane.depth, dict(lane.refused)
            )

    # -- calls ------------------------------------------------------------------------------------

    async def private(
        self,
        method: str,
        headers: Mapping[str, str],
        body: bytes,
        disconnected: Callable[[], Awaitable[object]] | None = None,
    ) -> Reply | None:
        """Answer ``POST /0/private/<method>`` (``headers`` with lower-case names: ``api-key``,
        ``api-sign`` and ``content-type`` are read). ``None`` when the client went away before
        its call was sent (it was dropped, nothing was sent)."""
        label = method_label(method, private=True)
        caller = _Caller()
        if not known_private(method):  # an allowlist: exact names only, nothing sent
            return self._done(caller, label, refusal(UNKNOWN_METHOD))
        principal = self.authenticator.identify(headers.get("api-key", ""))
        if principal is None:
            return self._done(caller, label, refusal("EAPI:Invalid key"))
        caller = _Caller(principal.client, principal.account.label)
        try:
            check_content_type(headers.get("content-type"))
            parts = split_nonce(body)
        except BodyError as exc:
            return self._done(caller, label, refusal(exc.code))
        urlpath = f"/0/private/{method}"
        signed = signature_matches(
            principal.secret, urlpath, parts.nonce_text, body, headers.get("api-sign", "")
        )
        if principal.named:
            self.metrics.authenticated(principal.client, signed)
        if not signed:
            return self._done(caller, label, refusal("EAPI:Invalid signature"))
        if not principal.permits(method):  # nothing goes upstream
            return self._done(caller, label, refusal(PERMISSION_DENIED))
        mark("authenticated")
        claim = self.replays.check(
            principal.client + principal.account.key_id,
            principal.client,
            method,
            parts.nonce_text,
            body,
        )
        if isinstance(claim, str):  # not fresh: nothing goes upstream
            return self._done(caller, label, refusal(claim))
        mark("replay checked")
        trade = await self.desk.admit(
            caller.account, caller.client, method, parts.fields, principal.order_share
        )
        if isinstance(trade, Reply):  # halted: nothing goes upstream
            return self._done(caller, label, trade)
        mark("guard admitted")
        reply, job = await self._queue(
            principal.account.label, method, parts.fields, disconnected, claim=claim, trade=trade
        )
        if reply is None:
            self.metrics.abandoned.labels(self._lane_of[caller.account].account).inc()
            return None
        answered = self._done(caller, label, reply, job)
        mark("counted")
        return answered

    async def forward(
        self, account: str, method: str, fields: bytes = b"", client: str = "internal"
    ) -> Reply:
        """An in-process private call for ``account`` through its key's lane (for the monitor
        under ``up --gateway``): same writer, same rate budget, same metrics as the bots'.
        ``fields`` is the form-encoded body without a nonce. Await it on the gateway's event loop
        (from another thread: ``asyncio.run_coroutine_threadsafe``)."""
        reply, job = await self._queue(account, method, fields, None)
        assert reply is not None
        return self._done(_Caller(client, account), method_label(method, private=True), reply, job)

    def call(
        self,
        account: str,
        method: str,
        fields: bytes = b"",
        client: str = "internal",
        timeout: float | None = None,
    ) -> Reply:
        """:meth:`forward` from another thread (the monitor's): blocks until the answer."""
        if self.loop is None:
            raise RuntimeError("the gateway is not started")
        call = self.forward(account, method, fields, client)
        return asyncio.run_coroutine_threadsafe(call, self.loop).result(timeout)

    def take_turn(
        self,
        account: str,
        method: str,
        call: Callable[[], T],
        *,
        client: str = "internal",
        max_wait_s: float | None = None,
    ) -> T:
        """Run ``call``, one private call of ``method`` made by an in-process client of
        ``account``'s key with its own ``KrakenClient`` (the dashboard's monitor), in the key's
        lane: it waits for its turn and the rate budget like the bots' calls, is charged to the
        rate model and counted in the metrics under ``client``. The caller's client reports
        Kraken's invalid nonces to the shared counter itself.

        Blocks the calling thread (never the gateway's loop) and returns what ``call`` returns or
        raises what it raises. A call the lane refuses (queue full, wait longer than
        ``max_wait_s``, stopping) raises the :class:`~broker.KrakenAPIError` a bot would get, and
        ``call`` never runs."""
        loop = self.loop
        if loop is None or loop.is_closed() or self.stopping:
            raise api_error_from_codes([STOPPING], account=account, method=method)
        own = OwnCall(call, account, method)
        wait = self._lane_of[account].max_wait_s if max_wait_s is None else max_wait_s
        turn = self._turn(account, method, own.run, client, wait)
        answered = asyncio.run_coroutine_threadsafe(turn, loop)
        return own.outcome(answered, wait + self.settings.request_timeout_s + TURN_MARGIN_S)

    async def _turn(
        self, account: str, method: str, run: Run, client: str, max_wait_s: float
    ) -> Reply:
        reply, job = await self._queue(account, method, b"", None, run=run, max_wait_s=max_wait_s)
        assert reply is not None
        caller = _Caller(client, account)
        return self._done(caller, method_label(method, private=True), reply, job, reported=True)

    async def public_call(self, method: str, query: str) -> Reply:
        """Answer ``GET /0/public/<method>?<query>``."""
        label = method_label(method, private=False)
        if not valid_public(method):
            reply = refusal(UNKNOWN_METHOD)
            self.metrics.public.labels(label, reply.outcome).inc()
            return reply
        reply, cached = await self.public.get(method, query)
        self.metrics.public.labels(label, "cached" if cached else reply.outcome).inc()
        return reply

    async def _queue(
        self,
        account: str,
        method: str,
        fields: bytes,
        disconnected: Callable[[], Awaitable[object]] | None,
        *,
        run: Run | None = None,
        max_wait_s: float | None = None,
        claim: Claim | None = None,
        trade: TradeJob | None = None,
    ) -> tuple[Reply | None, Job | None]:
        lane = self._lane_of[account]
        if self.stopping:
            return refusal(STOPPING, outcome="upstream_error", status=503), None
        job = lane.submit(method, fields, run=run, max_wait_s=max_wait_s, claim=claim, trade=trade)
        if isinstance(job, Reply):
            return job, None
        mark("queued")
        reply = await answer(lane, job, disconnected)
        mark("woken")
        return (None if reply is ABANDONED else reply), job

    def _done(
        self,
        caller: _Caller,
        method: str,
        reply: Reply,
        job: Job | None = None,
        *,
        reported: bool = False,
    ) -> Reply:
        """Count an answered call (``reported``: the caller's own client reports invalid
        nonces)."""
        lane = self._lane_of.get(caller.account)
        account = lane.account if lane is not None else caller.account
        if not reply.by_gateway and INVALID_NONCE in reply.codes and lane is not None:
            self.guard.foreign_writer(caller.account, method)
        # a success is counted right after its answer is written (the loop runs the flush next)
        # and before anything reads the metrics: not on the answer's path. The rest at once
        later = self.loop is not None and reply.outcome == "ok"
        record = self.metrics.record_later if later else self.metrics.record
        record(
            caller.client,
            account,
            method,
            reply,
            queue_wait_s=job.queue_wait_s if job is not None else None,
            upstream_s=job.upstream_s if job is not None else None,
            count_invalid_nonce=not reported,
        )
        if later:
            assert self.loop is not None
            self.loop.call_soon(self.metrics.flush)
        return reply
