"""One lane per Kraken key, however many account labels share it.

Each key gets its own :class:`~broker.KrakenClient` (the key's single writer, on the shared nonce
store) and a :class:`~gateway.lanes.Lane` that sends the key's calls one at a time through it,
paced by the key's :class:`~gateway.ratemodel.RateModel`. A key under two labels has one counter at
Kraken, so its lane takes the stricter of their tiers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from broker import AccountConfig, KrakenClient, Observer
from broker.limits import Tier

from .lanes import Lane
from .ratemodel import RateModel
from .settings import GatewaySettings

__all__ = ["KeyLanes"]


@dataclass
class KeyLanes:
    #: key id -> the key's lane
    lanes: dict[str, Lane]
    #: account label -> the lane of its key
    by_account: dict[str, Lane]
    #: the keys' clients (closed by the gateway when it stops)
    clients: list[KrakenClient]
    #: account label -> the client of its key
    client_of: dict[str, KrakenClient]

    @classmethod
    def build(
        cls,
        accounts: Sequence[AccountConfig],
        settings: GatewaySettings,
        executor: ThreadPoolExecutor,
        observer: Observer | None = None,
    ) -> KeyLanes:
        by_key: dict[str, list[AccountConfig]] = {}
        for account in accounts:
            by_key.setdefault(account.key_id, []).append(account)
        lanes: dict[str, Lane] = {}
        clients: dict[str, KrakenClient] = {}
        for key_id, sharing in by_key.items():
            first = sharing[0]
            client = KrakenClient(
                first.key,
                first.secret,
                account=first.label,
                nonce_unit=first.nonce_unit,
                store_dir=settings.store_dir,
                nonce_store=settings.nonce_store,
                durable=settings.durable,
                base_url=settings.api_url,
                timeout=settings.request_timeout_s,
                observer=observer,
                keep_alive=True,  # one kept-alive connection per key, without requests' machinery
            )
            clients[key_id] = client
            tier = min((settings.tier_of(a) for a in sharing), key=_strictness)
            lanes[key_id] = Lane(
                first.label,
                client.forward_private,
                RateModel(tier, enforce=settings.rate_limited),
                executor,
                capacity=settings.max_queue,
                max_wait_s=settings.max_queue_wait_s,
                store_lost_at=_lost_at_of(client),
                send_on_loop=client.forward_private_on_loop,
            )
        return cls(
            lanes,
            {a.label: lanes[a.key_id] for a in accounts},
            list(clients.values()),
            {a.label: clients[a.key_id] for a in accounts},
        )


def _lost_at_of(client: KrakenClient) -> Callable[[], float | None]:
    return lambda: client.nonce_store_lost_at


def _strictness(tier: Tier) -> tuple[float, float]:
    return tier.maximum, tier.decay_per_s
