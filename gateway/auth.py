"""Who is calling: the credential named by ``API-Key``, and whether ``API-Sign`` is right.

The gateway answers ``EAPI:Invalid key`` and ``EAPI:Invalid signature`` itself, without
contacting Kraken (failed calls count towards Kraken's lockouts). The signature is checked the way
Kraken checks it: ``base64(HMAC-SHA512(secret, urlpath + SHA256(nonce + body)))`` over the raw
body as received, compared in constant time.

Authentication is pluggable: an :class:`Authenticator` maps an ``API-Key`` to a
:class:`Principal` (the credential's secret, the account to sign for, the ``client`` label, and
for a gateway-issued credential the methods it may call). :class:`AccountKeys` accepts the
accounts' own keys (``client="account-key"``, every method: whoever holds the account's secret can
call Kraken directly anyway); :class:`gateway.credentials.Credentials` adds the gateway's client
credentials.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from broker import AccountConfig
from broker.signing import InvalidSecretError, signature

from .methods import permitted

__all__ = [
    "ACCOUNT_KEY_CLIENT",
    "UNKNOWN",
    "AccountKeys",
    "Authenticator",
    "Principal",
    "signature_matches",
]

#: the ``client`` label of bots that sign with the account's own key
ACCOUNT_KEY_CLIENT = "account-key"
#: the ``client`` and ``account`` labels of a request whose key nobody knows
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Principal:
    """A verified caller's identity: which account the gateway signs for, and as whom."""

    #: the ``client`` label (``account-key``, or a gateway credential's name)
    client: str
    #: the account the gateway signs for
    account: AccountConfig
    #: the secret the caller signs with (the account's, or the credential's)
    secret: str = field(repr=False)
    #: a gateway client credential (its methods are checked), not the account's own key
    named: bool = False
    #: the methods a named client may call (``None``: all but those that move funds)
    allow: frozenset[str] | None = None
    #: the share of each pair's order budget this caller may use (``None``: no own limit)
    order_share: float | None = None

    def permits(self, method: str) -> bool:
        """Whether this caller may call ``method`` (the account's own key may call anything)."""
        return not self.named or permitted(method, self.allow)


class Authenticator(Protocol):
    def identify(self, api_key: str) -> Principal | None:
        """The principal an ``API-Key`` header names, or ``None`` when nobody has that key."""
        ...


class AccountKeys:
    """Bots authenticate with the account's own key and secret."""

    def __init__(self, accounts: Iterable[AccountConfig]):
        self.by_key: dict[str, Principal] = {}
        for account in accounts:
            # a key under two labels: the first (MASTER first) names it, as in discovery
            self.by_key.setdefault(
                account.key, Principal(ACCOUNT_KEY_CLIENT, account, account.secret)
            )

    def identify(self, api_key: str) -> Principal | None:
        return self.by_key.get(api_key.strip()) if api_key else None


def signature_matches(
    secret: str, urlpath: str, nonce_text: str, body: bytes, api_sign: str
) -> bool:
    """Whether ``api_sign`` is the signature of ``body`` (as received) with ``secret``."""
    try:
        given = base64.b64decode(api_sign.strip(), validate=True)
        expected = signature(urlpath, nonce_text, body, secret)
    except (binascii.Error, ValueError, InvalidSecretError):
        return False
    return hmac.compare_digest(given, expected)
