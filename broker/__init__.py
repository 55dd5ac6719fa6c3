"""broker: a nonce-safe Kraken client library for bots and for krakenwatch.

No Streamlit, no Prometheus, no SQLite: a bot can import it alone.

>>> from broker import KrakenClient, PublicClient
>>> api = KrakenClient(key, secret, account="MASTER")      # drop-in for krakenex.API(key, secret)
>>> api.query_private("Balance")                            # krakenex contract
>>> api.call_private("Balance")                             # returns result or raises KrakenError
>>> PublicClient().server_time()                            # public calls: no key, no nonce

Live account streams (Kraken WebSocket v2 ``balances`` and ``executions``; docs/streams.md):

>>> for event in stream_events(api):                        # a bot: blocking iterator
...     if isinstance(event, Execution): ...
>>> with StreamHub() as hub:                                # many accounts, one thread
...     handle = hub.open(api, on_event=queue.put)          # on_event runs on the hub's thread
...     handle.wait_for("up", timeout=15)

``AccountStream`` is the asyncio client underneath (``await stream.run()`` until ``stop()``): a
fresh ``GetWebSocketsToken`` per connection, both subscriptions acknowledged before ``up``, a
heartbeat watchdog, reconnects with full-jitter ``Backoff``, ``refused`` (no more tries until
``restart()``) without the key's WebSocket permission. Its events (frozen dataclasses):
``StreamStateChanged``, ``BalancesSnapshot``, ``BalanceUpdate``, ``OrdersSnapshot``,
``Execution``, ``RateCount``, ``Heartbeat``, ``SystemStatus`` (``StreamEvent`` is their union);
``with_rest_names`` re-keys stream balances by REST asset names; ``StreamInfo`` reads a stream's
state and counters at once (``info()``), ``StreamHandle`` is a hub's stream, ``StreamOptions``
and ``Subscriptions`` are the options. The URL is
``KRAKEN_WS_AUTH_URL``, else Kraken's own only when the REST URL is Kraken's own
(``ws_url_default``).
"""

from .accounts import (
    AccountConfig,
    Discovery,
    Problem,
    discover_accounts,
    load_environment,
)
from .client import ForwardedAnswer, KrakenClient
from .errors import (
    NONCE_DIAGNOSES,
    CallAbandonedError,
    ConfigurationError,
    ConnectionLostError,
    HTTPStatusError,
    InvalidArgumentsError,
    InvalidKeyError,
    InvalidNonceError,
    InvalidSecretError,
    InvalidSignatureError,
    KeyBusyError,
    KrakenAPIError,
    KrakenConnectionError,
    KrakenError,
    KrakenTimeout,
    MarketRestrictedError,
    NonceStoreError,
    NonceStoreUnavailable,
    NonceUnitDowngradeError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ReentrantCallError,
    ResponseFormatError,
    ServiceUnavailableError,
    TemporaryLockoutError,
    ThrottledError,
    TransportError,
)
from .nonce import NONCE_UNITS, NonceStatus
from .observer import CallEvent, FanOut, Observer, RefreshEvent
from .paths import DEFAULT_WS_AUTH_URL, parse_ws_url, ws_url_default
from .public import PublicClient
from .signing import key_id, mask_key
from .skew import SkewEstimate, estimate_clock_skew, single_sample_skew
from .stream import AccountStream
from .streambackoff import Backoff
from .streamevents import (
    STREAM_STATES,
    BalancesSnapshot,
    BalanceUpdate,
    Execution,
    Heartbeat,
    OrdersSnapshot,
    RateCount,
    StreamEvent,
    StreamState,
    StreamStateChanged,
    SystemStatus,
    with_rest_names,
)
from .streamhub import StreamHandle, StreamHub, StreamOptions, stream_events
from .streamparse import Subscriptions
from .streamstate import StreamInfo

__all__ = [
    "DEFAULT_WS_AUTH_URL",
    "NONCE_DIAGNOSES",
    "NONCE_UNITS",
    "STREAM_STATES",
    "AccountConfig",
    "AccountStream",
    "Backoff",
    "BalanceUpdate",
    "BalancesSnapshot",
    "CallAbandonedError",
    "CallEvent",
    "ConfigurationError",
    "ConnectionLostError",
    "Discovery",
    "Execution",
    "FanOut",
    "ForwardedAnswer",
    "HTTPStatusError",
    "Heartbeat",
    "InvalidArgumentsError",
    "InvalidKeyError",
    "InvalidNonceError",
    "InvalidSecretError",
    "InvalidSignatureError",
    "KeyBusyError",
    "KrakenAPIError",
    "KrakenClient",
    "KrakenConnectionError",
    "KrakenError",
    "KrakenTimeout",
    "MarketRestrictedError",
    "NonceStatus",
    "NonceStoreError",
    "NonceStoreUnavailable",
    "NonceUnitDowngradeError",
    "Observer",
    "OrdersSnapshot",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "Problem",
    "PublicClient",
    "RateCount",
    "RateLimitError",
    "ReentrantCallError",
    "RefreshEvent",
    "ResponseFormatError",
    "ServiceUnavailableError",
    "SkewEstimate",
    "StreamEvent",
    "StreamHandle",
    "StreamHub",
    "StreamInfo",
    "StreamOptions",
    "StreamState",
    "StreamStateChanged",
    "Subscriptions",
    "SystemStatus",
    "TemporaryLockoutError",
    "ThrottledError",
    "TransportError",
    "discover_accounts",
    "estimate_clock_skew",
    "key_id",
    "load_environment",
    "mask_key",
    "parse_ws_url",
    "single_sample_skew",
    "stream_events",
    "with_rest_names",
    "ws_url_default",
]
