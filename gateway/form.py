"""Taking a bot's private request body apart: its nonce out, every other byte kept.

A private request's body is form-encoded (``a=1&nonce=123&b=2``). The gateway needs the bot's
nonce text (the signature covers it) and the rest of the body exactly as the bot wrote it (the
gateway sends it after its own nonce, so Kraken sees the bot's fields byte-for-byte). Nothing is
re-encoded: pairs are split on ``&`` and only the nonce pair is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

__all__ = ["FORM_TYPE", "BodyError", "PrivateBody", "check_content_type", "split_nonce"]

FORM_TYPE = "application/x-www-form-urlencoded"
#: the largest nonce Kraken accepts (an unsigned 64-bit integer)
MAX_NONCE = 2**64 - 1


class BodyError(Exception):
    """The body cannot be forwarded; ``code`` is the Kraken error the bot gets."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class PrivateBody:
    #: the bot's nonce as it appears in the body (decimal digits), which its signature covers
    nonce_text: str
    #: the body without the nonce pair, every other byte as received
    fields: bytes


def _name(pair: bytes) -> bytes:
    return unquote_to_bytes(pair.partition(b"=")[0].replace(b"+", b" "))


def split_nonce(body: bytes) -> PrivateBody:
    """The bot's nonce and the remaining fields; :class:`BodyError` when there is not exactly one
    nonce, or it is not a decimal number Kraken would accept."""
    kept: list[bytes] = []
    nonces: list[bytes] = []
    for pair in body.split(b"&") if body else []:
        if _name(pair) == b"nonce":
            nonces.append(unquote_to_bytes(pair.partition(b"=")[2].replace(b"+", b" ")))
        else:
            kept.append(pair)
    if len(nonces) != 1:
        raise BodyError("EAPI:Invalid nonce")
    text = nonces[0]
    if not text.isdigit() or not text.isascii() or len(text) > 20 or int(text) > MAX_NONCE:
        raise BodyError("EAPI:Invalid nonce")
    return PrivateBody(text.decode("ascii"), b"&".join(kept))


def check_content_type(value: str | None) -> None:
    """Private bodies must be form-encoded (a missing header is read as form-encoded)."""
    if value is None or not value.strip():
        return
    if value.split(";", 1)[0].strip().lower() != FORM_TYPE:
        raise BodyError(
            "EGeneral:Invalid arguments:the gateway forwards form-encoded bodies only "
            f"(Content-Type {FORM_TYPE})"
        )
