"""broker: a nonce-safe Kraken client library for bots and for krakenwatch.

No Streamlit, no Prometheus, no SQLite: a bot can import it alone.

>>> from broker import KrakenClient, PublicClient
>>> api = KrakenClient(key, secret, account="MASTER")      # drop-in for krakenex.API(key, secret)
>>> api.query_private("Balance")                            # krakenex contract
>>> api.call_private("Balance")                             # returns result or raises KrakenError
>>> PublicClient().server_time()                            # public calls: no key, no nonce
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
from .public import PublicClient
from .signing import key_id, mask_key
from .skew import SkewEstimate, estimate_clock_skew, single_sample_skew

__all__ = [
    "NONCE_DIAGNOSES",
    "NONCE_UNITS",
    "AccountConfig",
    "CallAbandonedError",
    "CallEvent",
    "ConfigurationError",
    "ConnectionLostError",
    "Discovery",
    "FanOut",
    "ForwardedAnswer",
    "HTTPStatusError",
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
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "Problem",
    "PublicClient",
    "RateLimitError",
    "ReentrantCallError",
    "RefreshEvent",
    "ResponseFormatError",
    "ServiceUnavailableError",
    "SkewEstimate",
    "TemporaryLockoutError",
    "ThrottledError",
    "TransportError",
    "discover_accounts",
    "estimate_clock_skew",
    "key_id",
    "load_environment",
    "mask_key",
    "single_sample_skew",
]
