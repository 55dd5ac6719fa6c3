"""krakenwatch gateway: a Kraken-compatible signing gateway, so every bot on a key is safe and
observed.

Bots use it instead of ``https://api.kraken.com`` (only their base URL changes). It verifies each
private call's signature with the account's secret, replaces the bot's nonce with its own (through
``broker.KrakenClient`` and the shared nonce store), keeps one request per key in flight, holds
calls within a conservative model of Kraken's rate limit, and passes Kraken's answers back
unchanged. See the README's "Signing gateway" section.

=====================  ==========================================================================
module                 concern
=====================  ==========================================================================
``core``               :class:`Gateway`: accounts + settings in, calls answered, metrics out
``inprocess``          an in-process client's own call, run in its key's lane (``take_turn``)
``reloader``           re-reading the client file while serving: on change, and on SIGHUP
``routes``             the Starlette routes and app (HTTP semantics, body limit, disconnects)
``admin``              ``POST /admin/halt | resume``, ``GET /admin/halts`` (KRAKENWATCH_ADMIN_TOKEN)
``server``             uvicorn on a pre-bound socket: foreground (CLI), or a thread (ServerThread)
``readtimeout``        the HTTP server's read timeout (headers and body within --read-timeout)
``cli``                ``krakenwatch gateway``
``clientcli``          ``krakenwatch gateway add-client | list-clients | remove-client``
``haltcli``            ``krakenwatch gateway halt | resume | halts`` (the kill switch from a shell)
``arguments``          what the two commands parse alike (one-line errors, --config, --env-file)
``settings``           accounts and settings from the environment / ``.env``
``auth``               who is calling: credential lookup, signature check (pluggable)
``credentials``        the accounts' keys + the client credentials, swapped whole on reload
``clientfile``         the client credentials file (TOML, 0600): read, checked, added to
``form``               the bot's nonce out of a form body, every other byte kept
``replay``             refusing replays of state-changing calls: fresh nonces, claimed once
``replaystore``        the replay memory beside the nonces (SQLite in the data dir, or Redis)
``datadir``            the data dir made private, the replay memory opened, before serving
``sqlitefile``         the SQLite files beside the nonces: private, WAL, failing closed
``guarddesk``          the trading guard wired to the gateway: admits calls, halts, re-arms
``guard``              the trading guard: right before an order leaves, and after its answer
``tradeplan``          what a trading call does to the per-pair counters; what its answer taught
``tradingbudget``      the modelled per-pair trading counters (the order budget, shares)
``pairnames``          one name per pair (``XBTUSD``, ``XXBTZUSD``, ``BTC/USD``), from AssetPairs
``halts``              the kill switch: halts in the store, followed by every gateway
``deadman``            an account's dead man's switch, re-armed while its bots call
``guardstore``         halts, counters and recent orders beside the nonces (SQLite, or Redis)
``guardview``          what the guard shows a dashboard: snapshots and events
``methods``            the allowlist of Kraken's private methods: reads, changes, moves funds
``ratemodel``          the conservative model of Kraken's per-key call counter
``keys``               one lane per Kraken key, however many account labels share it
``lanes``              one queue and one writer per key
``public``             public calls passed through (short cache for reference data)
``answers``            Kraken's answers passed back; the gateway's own Kraken-shaped answers
``families``           the metric families: one table of names, types, help, labels, buckets
``metrics``            the Prometheus registry (its own, and the host's when embedded)
``traffic``            the recent picture of the calls, for a dashboard page
=====================  ==========================================================================

Imports run one way: ``cli`` -> ``clientcli`` -> ``arguments``; ``cli`` -> ``server`` ->
``routes`` -> ``core`` -> the modules below it. Nothing under ``core`` imports the HTTP layer or
the command line.
"""

from .core import Gateway
from .settings import GatewayConfig, GatewaySettings, load_config

__all__ = ["Gateway", "GatewayConfig", "GatewaySettings", "load_config"]
