"""What the gateway keeps in the data dir, made ready before it serves: the data dir and its
nonce dir private (0700), and the replay memory beside the nonces (the data dir's store, or the
shared Redis). The trading guard's store sits beside them too (:mod:`gateway.guardstore`)."""

from __future__ import annotations

from broker import ConfigurationError
from broker.paths import nonce_sync_default
from broker.private import private_dir
from broker.stores import nonce_store_spec

from .replay import ReplayGuard
from .replaystore import open_replay_store
from .settings import GatewaySettings

__all__ = ["private_data_dir", "replay_guard"]


def private_data_dir(settings: GatewaySettings) -> None:
    """The data dir and its nonce dir: 0700 (created, or tightened and said so)."""
    try:
        private_dir(settings.store_dir.parent)
        private_dir(settings.store_dir)
    except OSError as exc:
        raise ConfigurationError(
            f"KRAKENWATCH_DATA_DIR: {exc}", variable="KRAKENWATCH_DATA_DIR"
        ) from None


def replay_guard(settings: GatewaySettings) -> ReplayGuard:
    """The replay memory beside the nonces: the data dir's store, or the shared Redis."""
    store = open_replay_store(
        settings.nonce_store or nonce_store_spec(),
        settings.store_dir,
        durable=nonce_sync_default() if settings.durable is None else settings.durable,
    )
    return ReplayGuard(store, settings.replay_window_s, counter_clients=settings.counter_clients)
