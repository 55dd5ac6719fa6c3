"""Kraken's error codes mapped onto :mod:`broker.errors`: one error per ``error`` list, classified
by its most severe code (every code kept on ``codes``)."""

from __future__ import annotations

from .errors import (
    InvalidArgumentsError,
    InvalidKeyError,
    InvalidNonceError,
    InvalidSignatureError,
    KrakenAPIError,
    MarketRestrictedError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    TemporaryLockoutError,
    ThrottledError,
)

__all__ = ["api_error_from_codes", "error_class_for_code"]


#: raw code prefix -> class, in order of severity: when Kraken answers several errors at once the
#: error is classified by the most severe (a lockout or a bad key explains everything after it)
_BY_SEVERITY: tuple[tuple[str, type[KrakenAPIError]], ...] = (
    ("EGeneral:Temporary lockout", TemporaryLockoutError),
    ("EAPI:Invalid key", InvalidKeyError),
    ("EAPI:Invalid signature", InvalidSignatureError),
    ("EGeneral:Permission denied", PermissionDeniedError),
    ("EAPI:Invalid nonce window", InvalidNonceError),
    ("EAPI:Invalid nonce", InvalidNonceError),
    ("EService:Throttled", ThrottledError),
    ("EAPI:Rate limit exceeded", RateLimitError),
    ("EOrder:Rate limit exceeded", RateLimitError),
    ("EGeneral:Too many requests", RateLimitError),
    ("EService:Market in cancel_only mode", MarketRestrictedError),
    ("EService:Market in post_only mode", MarketRestrictedError),
    ("EService:Market in limit_only mode", MarketRestrictedError),
    ("EGeneral:Invalid arguments", InvalidArgumentsError),
    ("EGeneral:Unknown method", InvalidArgumentsError),
    ("EService:Unavailable", ServiceUnavailableError),
    ("EService:Busy", ServiceUnavailableError),
    ("EService:Deadline elapsed", ServiceUnavailableError),
    ("EGeneral:Internal error", ServiceUnavailableError),
    ("EService", ServiceUnavailableError),  # any other EService:*: Kraken-side, retry later
)
_UNKNOWN_RANK = len(_BY_SEVERITY)


def _classify(code: str) -> tuple[int, type[KrakenAPIError]]:
    # Kraken's documentation also writes codes with blanks around the colons
    normal = ":".join(part.strip() for part in code.strip().split(":"))
    for rank, (prefix, cls) in enumerate(_BY_SEVERITY):
        if normal == prefix or normal.startswith(prefix + ":"):
            return rank, cls
    return _UNKNOWN_RANK, KrakenAPIError


def error_class_for_code(code: str) -> type[KrakenAPIError]:
    """Map a raw Kraken error string to its class (the generic one when unknown)."""
    return _classify(code)[1]


def api_error_from_codes(
    codes: list[str], *, account: str | None = None, method: str | None = None
) -> KrakenAPIError:
    """The error for a whole ``error`` list: classified by its most severe entry (warnings ``W…``
    are skipped), every code kept on ``codes``. Unknown codes keep their raw string."""
    errors = [c for c in codes if not c.startswith("W")] or list(codes)
    code = min(errors, key=lambda c: _classify(c)[0])
    return error_class_for_code(code)(code, codes=list(codes), account=account, method=method)
