"""The one exception tree of ``broker``.

::

    KrakenError
    ├── ConfigurationError          bad account configuration (names the variable)
    │   ├── InvalidSecretError       the API secret is not valid base64
    │   └── NonceUnitDowngradeError  a coarser nonce unit than the key has already used
    ├── NonceStoreError             the nonce store cannot be read or written (names the path)
    │   └── NonceStoreUnavailable    the shared store (Redis) is down, timing out or read-only
    ├── ReentrantCallError          a call for a key from inside a call for the same key
    ├── KeyBusyError                the key stayed busy past the caller's deadline: nothing sent
    ├── CallAbandonedError          the caller gave up before the request left: nothing sent
    ├── TransportError              the request did not get an HTTP answer
    │   ├── KrakenConnectionError        could not connect: nothing was sent
    │   └── OutcomeUnknownError          sent, no answer: it may have reached Kraken
    │       ├── KrakenTimeout            no answer in time
    │       └── ConnectionLostError      the connection broke after sending
    ├── HTTPStatusError             a non-2xx answer (keeps status and a body excerpt)
    ├── ResponseFormatError         a 2xx answer that is not Kraken's JSON envelope
    └── KrakenAPIError              Kraken answered with an ``error`` list
        ├── InvalidNonceError            EAPI:Invalid nonce
        ├── InvalidKeyError              EAPI:Invalid key
        ├── InvalidSignatureError        EAPI:Invalid signature
        ├── PermissionDeniedError        EGeneral:Permission denied
        ├── RateLimitError               EAPI:Rate limit exceeded, EOrder:Rate limit exceeded,
        │   │                            EGeneral:Too many requests
        │   └── ThrottledError           EService:Throttled:<unix time> (``retry_at``)
        ├── TemporaryLockoutError        EGeneral:Temporary lockout
        ├── ServiceUnavailableError      EService:Unavailable / Busy / Deadline elapsed,
        │                                EGeneral:Internal error, any other EService:*
        ├── MarketRestrictedError        EService:Market in cancel_only / post_only / limit_only mode
        └── InvalidArgumentsError        EGeneral:Invalid arguments[:field], EGeneral:Unknown method

A failed transport is one of two siblings, never both: :class:`KrakenConnectionError` (nothing
left this host: safe to send again) or :class:`OutcomeUnknownError` (the request left and no answer
came back: it may have been executed, so it is never repeated blindly). ``except
KrakenConnectionError`` therefore never catches a call that may have reached Kraken.

Every error carries ``kind`` (a short stable identifier), ``explanation`` and ``remedy``
(operator-facing text), the ``account`` label and ``method`` when known, and for API errors every
raw Kraken code (``codes``) and the one it was classified by (``code``): the most severe (see
:mod:`broker.codes`). No error ever holds the API secret or the full API key.
"""

from __future__ import annotations

from typing import ClassVar

from .diagnoses import NONCE_DIAGNOSES

__all__ = [
    "NONCE_DIAGNOSES",
    "NOTHING_SENT",
    "CallAbandonedError",
    "ConfigurationError",
    "ConnectionLostError",
    "HTTPStatusError",
    "InvalidArgumentsError",
    "InvalidKeyError",
    "InvalidNonceError",
    "InvalidSecretError",
    "InvalidSignatureError",
    "KeyBusyError",
    "KrakenAPIError",
    "KrakenConnectionError",
    "KrakenError",
    "KrakenTimeout",
    "MarketRestrictedError",
    "NonceStoreError",
    "NonceStoreUnavailable",
    "NonceUnitDowngradeError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "RateLimitError",
    "ReentrantCallError",
    "ResponseFormatError",
    "ServiceUnavailableError",
    "TemporaryLockoutError",
    "ThrottledError",
    "TransportError",
    "nothing_sent_kinds",
]


class KrakenError(Exception):
    """Root of every error raised by ``broker``."""

    kind: ClassVar[str] = "error"
    explanation: ClassVar[str] = "The Kraken request failed."
    remedy: ClassVar[str] = "Check the logs for the cause."
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, account: str | None = None, method: str | None = None):
        super().__init__(message)
        self.message = message
        self.account = account
        self.method = method

    def __str__(self) -> str:
        where = " ".join(p for p in (self.account, self.method) if p)
        return f"{self.message} ({where})" if where else self.message


class ConfigurationError(KrakenError):
    kind = "configuration"
    explanation = "The account configuration is invalid; nothing was sent to Kraken."
    remedy = "Fix the named environment variable (or .env entry) and restart."

    def __init__(self, message: str, *, variable: str | None = None, account: str | None = None):
        super().__init__(message, account=account)
        self.variable = variable


class InvalidSecretError(ConfigurationError, ValueError):
    """The API secret is not valid base64. The message never contains the secret."""

    kind = "invalid_secret"
    remedy = "Copy the private key (secret) again into the account's _API_SECRET variable, whole."


class NonceStoreError(KrakenError):
    """The nonce store could not be read or written; nothing was sent to Kraken."""

    kind = "nonce_store"
    explanation = (
        "The nonce store could not be read or written, so the request was not sent (a nonce that "
        "is not recorded first could be reused after a restart)."
    )
    remedy = (
        "Check the named path: free disk space, a writable KRAKENWATCH_DATA_DIR (a directory, not "
        "a file), or move a corrupt record aside if no other program uses the key."
    )

    def __init__(
        self,
        message: str,
        *,
        path: object = None,
        account: str | None = None,
        method: str | None = None,
    ):
        super().__init__(message, account=account, method=method)
        self.path = path


class NonceStoreUnavailable(NonceStoreError):
    """The shared nonce store (Redis) cannot be reached or written; nothing was sent."""

    kind = "nonce_store_unavailable"
    retryable = True
    explanation = (
        "The shared nonce store (Redis) is unreachable, not answering, or read-only, so the "
        "request was not sent: without it, another host could be using the key at the same time."
    )
    remedy = (
        "Check the Redis named in KRAKENWATCH_NONCE_STORE (running, reachable, the primary and not "
        "a replica, the password); calls resume by themselves once it answers."
    )


class ReentrantCallError(KrakenError):
    """A thread asked for a key while it was already inside a call for that key."""

    kind = "reentrant_call"
    explanation = (
        "A call was made for a key from inside another call for the same key (a signal handler or "
        "a callback); sending it would put two requests of one key in flight, so it was refused."
    )
    remedy = (
        "Make the second call after the first one has returned (e.g. set a flag in the handler)."
    )


class KeyBusyError(KrakenError):
    """The key stayed busy (another request of it in flight here or on another host, or a hold
    after a lost answer) until the caller's deadline; nothing was sent."""

    kind = "key_busy"
    retryable = True
    explanation = (
        "Other requests of this key kept it busy for longer than the caller would wait, so the "
        "request was not sent."
    )
    remedy = (
        "Retry later; if it keeps happening, fewer programs (or calls) should share the key, or "
        "the deadline (the gateway's --max-queue-wait) should be longer."
    )


class CallAbandonedError(KrakenError):
    """The caller gave up (its deadline passed, or it went away) while the request waited for
    its key; the request was not sent."""

    kind = "abandoned"
    explanation = "The caller gave up before the request could be sent; nothing was sent."
    remedy = "Nothing to undo. Send the request again if it is still wanted."


class NonceUnitDowngradeError(ConfigurationError):
    kind = "nonce_unit_downgrade"
    explanation = (
        "This key has already sent nonces in a finer unit; Kraken would reject every nonce in a "
        "coarser unit forever, so nothing was sent."
    )
    remedy = (
        "Set the account's KRAKEN_<ACCOUNT>_NONCE_UNIT back to the unit the key used (or finer), "
        "or create a new API key for the coarser unit."
    )


class TransportError(KrakenError):
    kind = "transport"
    retryable = True
    #: True when the request may have reached Kraken (it was sent, no answer came back): such a
    #: call is never retried blindly, and a gateway answers it with HTTP 504 rather than 502.
    #: True exactly for :class:`OutcomeUnknownError` and its subclasses.
    outcome_unknown: ClassVar[bool] = False
    explanation = "The request did not get an answer from Kraken."
    remedy = (
        "Check network connectivity and DNS to api.kraken.com; the monitor retries with backoff."
    )


class KrakenConnectionError(TransportError):
    """Could not connect (refused, unreachable, unresolved, TLS or proxy refused): nothing was
    sent, so sending again cannot execute the call twice."""

    kind = "connection"
    explanation = "Could not connect to Kraken; nothing was sent."
    remedy = "Check network connectivity, proxies and DNS; verify KRAKEN_API_URL."


class OutcomeUnknownError(TransportError):
    """The request was sent and no answer came back: Kraken may have executed it. Never
    repeated blindly (an order could be placed twice)."""

    kind = "outcome_unknown"
    outcome_unknown = True
    explanation = "The request was sent but no answer came back; it may have reached Kraken."
    remedy = (
        "The call is not retried blindly: check the account (open orders, ledger) before "
        "repeating a call that changes state."
    )


class KrakenTimeout(OutcomeUnknownError):
    kind = "timeout"
    outcome_unknown = True
    explanation = "Kraken did not answer within the timeout."
    remedy = (
        "Kraken or the network is slow; the call may still have reached Kraken, so it is never "
        "retried blindly. Check status.kraken.com and the network path."
    )


class ConnectionLostError(OutcomeUnknownError):
    kind = "connection_lost"
    outcome_unknown = True
    explanation = "The connection to Kraken broke after the request was sent; it may have arrived."
    remedy = (
        "Usually a network or Kraken-side interruption. The call is not retried blindly: check "
        "the account (open orders, ledger) before repeating a call that changes state."
    )


class HTTPStatusError(KrakenError):
    kind = "http_status"
    retryable = True
    explanation = "Kraken (or its CDN) answered with an HTTP error instead of the API's JSON."
    remedy = "Usually a Kraken-side outage (502/503/520): check status.kraken.com and wait."

    def __init__(
        self,
        status: int,
        body_excerpt: str,
        *,
        account: str | None = None,
        method: str | None = None,
    ):
        super().__init__(f"HTTP {status}: {body_excerpt}", account=account, method=method)
        self.status = status
        self.body_excerpt = body_excerpt


class ResponseFormatError(KrakenError):
    kind = "bad_response"
    retryable = True
    explanation = "Kraken's answer was not the expected JSON document."
    remedy = "Usually a proxy or outage page; check KRAKEN_API_URL and status.kraken.com."


class KrakenAPIError(KrakenError):
    """Kraken answered with a non-empty ``error`` list. ``code`` is the code the error was
    classified by (the most severe), ``codes`` all of them."""

    kind = "api_error"
    explanation = "Kraken rejected the request."
    remedy = "See the raw Kraken error code for details."

    def __init__(
        self,
        code: str,
        *,
        codes: list[str] | None = None,
        account: str | None = None,
        method: str | None = None,
    ):
        super().__init__(code, account=account, method=method)
        self.code = code
        self.codes = list(codes) if codes else [code]


class InvalidNonceError(KrakenAPIError):
    kind = "invalid_nonce"
    #: one of :data:`NONCE_DIAGNOSES`' keys when the client could tell, else ``None``
    diagnosis: str | None = None
    explanation = (
        "Kraken saw a nonce that was not higher than the last one it accepted for this key: another "
        "program or process uses the same key, a restart started below the previous high-water "
        "mark, the nonce unit was downgraded, or the clock stepped back."
    )
    remedy = (
        "Give every program its own API key (a read-only key for krakenwatch); if a key must be "
        "shared, use broker.KrakenClient in every process with the same KRAKENWATCH_DATA_DIR. "
        "Never switch a key to a coarser nonce unit; sync the clock (NTP). Do not retry in a loop."
    )


class InvalidKeyError(KrakenAPIError):
    kind = "invalid_key"
    explanation = "Kraken does not know this API key (wrong, disabled or deleted)."
    remedy = (
        "Copy the API key again from Kraken (Settings > API) into the account's _API_KEY variable."
    )


class InvalidSignatureError(KrakenAPIError):
    kind = "invalid_signature"
    explanation = "The request signature did not match: the API secret does not belong to the key."
    remedy = "Copy the private key (secret) again into the account's _API_SECRET variable, whole."


class PermissionDeniedError(KrakenAPIError):
    kind = "permission_denied"
    explanation = "The API key lacks the permission this call needs."
    remedy = (
        "In Kraken's API key settings grant the missing permission (Query Funds; Query Open Orders "
        "& Trades; Create & Modify Orders only for trading keys), or use a key that has it."
    )


class RateLimitError(KrakenAPIError):
    kind = "rate_limited"
    retryable = True
    explanation = "The key's API call counter is over its tier's limit."
    remedy = "Call less often (krakenwatch polls within the Starter budget); wait for the counter to decay."


class ThrottledError(RateLimitError):
    """``EService:Throttled:<unix time>``: too many concurrent requests; retry after ``retry_at``."""

    kind = "throttled"
    explanation = "Kraken throttled the key: too many concurrent requests."
    remedy = "Wait until the time Kraken named (retry_at); send one request at a time per key."

    @property
    def retry_at(self) -> float | None:
        """The Unix time Kraken named, after which a retry may succeed."""
        try:
            return float(self.code.rsplit(":", 1)[-1].strip())
        except ValueError:
            return None


class TemporaryLockoutError(KrakenAPIError):
    kind = "temporary_lockout"
    retryable = True
    explanation = "Too many failed calls: Kraken locked this key out for about 15 minutes."
    remedy = "Stop all programs using the key, fix the failing calls, and wait ~15 minutes."


class ServiceUnavailableError(KrakenAPIError):
    kind = "service_unavailable"
    retryable = True
    explanation = "Kraken is unavailable, busy or had an internal error."
    remedy = "Kraken-side: check status.kraken.com; the monitor retries with backoff."


class MarketRestrictedError(KrakenAPIError):
    kind = "market_restricted"
    retryable = True
    explanation = (
        "The market is in cancel_only, post_only or limit_only mode: trading is restricted."
    )
    remedy = "Wait for Kraken to return to full trading (status.kraken.com)."


class InvalidArgumentsError(KrakenAPIError):
    kind = "invalid_arguments"
    explanation = "Kraken rejected the request's method or arguments."
    remedy = "The raw code names the field; fix the call's arguments or method name."


#: the errors raised before a request left for Kraken (with their subclasses): such a call
#: executed nothing and cost nothing on Kraken's counters
NOTHING_SENT: tuple[type[KrakenError], ...] = (
    ConfigurationError,
    NonceStoreError,
    ReentrantCallError,
    KeyBusyError,
    CallAbandonedError,
    KrakenConnectionError,
)


def nothing_sent_kinds() -> frozenset[str]:
    """The ``kind`` of every error in :data:`NOTHING_SENT` and of their subclasses."""
    kinds: set[str] = set()
    todo: list[type[KrakenError]] = list(NOTHING_SENT)
    while todo:
        cls = todo.pop()
        kinds.add(cls.kind)
        todo.extend(cls.__subclasses__())
    return frozenset(kinds)
