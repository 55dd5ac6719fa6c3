"""What the gateway sends back: Kraken's answer unchanged, or a Kraken-shaped answer of its own.

Every answer is a :class:`Reply` that also says how it is counted (``outcome``, the metrics
contract: ``ok``, ``kraken_error``, ``invalid_nonce``, ``rate_limited``, ``rejected``,
``upstream_error``) and whether the request may have reached Kraken.

When no answer came back from Kraken the gateway answers as Kraken's edge would, with a JSON body
whose text tells the bot what it may do:

* HTTP 502 (:data:`UNREACHABLE`): Kraken could not be reached, nothing was sent; safe to retry.
* HTTP 504 (:data:`OUTCOME_UNKNOWN`): the request was sent but no answer came back; it may have
  been executed. Its code is deliberately not one Kraken uses, so no client library retries it
  automatically: check (open orders, ledger) before sending it again.
* HTTP 503 (:func:`not_sent`): the gateway could not sign for the key (nonce store unavailable,
  nonce unit downgrade...); nothing was sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from broker import (
    ConfigurationError,
    ForwardedAnswer,
    HTTPStatusError,
    InvalidNonceError,
    KrakenAPIError,
    KrakenError,
    NonceStoreError,
    ReentrantCallError,
    TransportError,
)

__all__ = [
    "ABANDONED",
    "BUSY",
    "INTERNAL_ERROR",
    "JSON_TYPE",
    "OUTCOMES",
    "OUTCOME_UNKNOWN",
    "RATE_LIMITED",
    "UNREACHABLE",
    "Reply",
    "code_label",
    "from_call",
    "from_kraken",
    "from_transport",
    "not_sent",
    "refusal",
]

JSON_TYPE = "application/json"
OUTCOMES = ("ok", "kraken_error", "invalid_nonce", "rate_limited", "rejected", "upstream_error")

RATE_LIMITED = "EAPI:Rate limit exceeded"
#: the key stayed busy longer than the call may wait (Kraken's own code for "busy, retry")
BUSY = "EService:Busy"
UNREACHABLE = (
    "EService:Unavailable:the krakenwatch gateway could not reach Kraken; nothing was sent, "
    "safe to retry"
)
OUTCOME_UNKNOWN = (
    "EGateway:Outcome unknown:the request was sent to Kraken but no answer came back; it may have "
    "been executed, check (OpenOrders, ClosedOrders, Ledgers) before sending it again"
)
INTERNAL_ERROR = (
    "EGateway:Internal error:the krakenwatch gateway failed while forwarding; the request may "
    "have reached Kraken, check before sending it again"
)


@dataclass(frozen=True)
class Reply:
    """One answer to a bot, and how it counts."""

    status: int
    body: bytes
    content_type: str
    #: the metrics outcome (one of :data:`OUTCOMES`)
    outcome: str
    #: the Kraken error codes the answer carries (Kraken's, or the gateway's own)
    codes: tuple[str, ...] = ()
    #: answered by the gateway itself: Kraken saw nothing of this answer
    by_gateway: bool = False
    #: the request may have reached Kraken
    sent: bool = False


#: the client went away before its call was sent: nothing was sent, and nobody reads an answer
ABANDONED = Reply(499, b"", JSON_TYPE, "rejected", by_gateway=True)


def _error_body(codes: tuple[str, ...]) -> bytes:
    return json.dumps({"error": list(codes)}, separators=(",", ":")).encode("utf-8")


def refusal(
    code: str, *, outcome: str = "rejected", status: int = 200, also: tuple[str, ...] = ()
) -> Reply:
    """The gateway's own Kraken-shaped error; nothing was sent. ``also``: more codes after it
    (the plain code a client library maps, after one with the gateway's detail)."""
    codes = (code, *also)
    return Reply(status, _error_body(codes), JSON_TYPE, outcome, codes, by_gateway=True)


def from_kraken(answer: ForwardedAnswer) -> Reply:
    """Kraken's answer, passed back unchanged."""
    error = answer.error
    codes: tuple[str, ...] = ()
    if error is None:
        outcome = "ok"
    elif isinstance(error, KrakenAPIError):
        outcome = "invalid_nonce" if isinstance(error, InvalidNonceError) else "kraken_error"
        codes = tuple(error.codes)
    else:  # an HTTP error page, or a 200 that is not Kraken's JSON
        outcome = "upstream_error"
    return Reply(answer.status, answer.body, answer.content_type, outcome, codes, sent=True)


def from_call(error: KrakenError | None) -> Reply:
    """How a call made by an in-process client counts (its answer went to that client, so the
    reply has no body): ``error`` is what its ``KrakenClient`` raised, ``None`` for success."""
    if error is None:
        return Reply(200, b"", JSON_TYPE, "ok", sent=True)
    if isinstance(error, KrakenAPIError):
        outcome = "invalid_nonce" if isinstance(error, InvalidNonceError) else "kraken_error"
        return Reply(200, b"", JSON_TYPE, outcome, tuple(error.codes), sent=True)
    if isinstance(error, ConfigurationError | NonceStoreError | ReentrantCallError):
        return Reply(503, b"", JSON_TYPE, "upstream_error")  # refused before sending
    if isinstance(error, TransportError):
        status = 504 if error.outcome_unknown else 502
        return Reply(status, b"", JSON_TYPE, "upstream_error", sent=error.outcome_unknown)
    status = error.status if isinstance(error, HTTPStatusError) else 200
    return Reply(status, b"", JSON_TYPE, "upstream_error", sent=True)


def from_transport(error: TransportError) -> Reply:
    """No answer came back: 504 when the request may have reached Kraken, else 502."""
    if error.outcome_unknown:
        return Reply(
            504,
            _error_body((OUTCOME_UNKNOWN,)),
            JSON_TYPE,
            "upstream_error",
            (OUTCOME_UNKNOWN,),
            by_gateway=True,
            sent=True,
        )
    return refusal(UNREACHABLE, outcome="upstream_error", status=502)


def not_sent(error: Exception) -> Reply:
    """The gateway could not sign for the key; ``error`` says why (it never holds a secret)."""
    text = error.message if isinstance(error, KrakenError) else str(error)
    reason = " ".join(text.replace(":", " -").split())
    code = f"EService:Unavailable:the krakenwatch gateway cannot sign for this key ({reason}); nothing was sent"
    return refusal(code, outcome="upstream_error", status=503)


def code_label(code: str) -> str:
    """An error code without its free-text extra (``EGeneral:Invalid arguments:volume`` ->
    ``EGeneral:Invalid arguments``), for a metrics label."""
    parts = [part.strip() for part in code.split(":")]
    return ":".join(parts[:2])[:64]
