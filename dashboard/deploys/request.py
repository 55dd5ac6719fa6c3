"""What a mark request (``POST /api/deploys``, ``krakenwatch deploy mark``) may say.

``{"version": "v1.4.2", "accounts": ["MASTER", "USER:daivon"], "note": "canary"}``, every field
optional (accounts default: all). A field that is misspelt, of the wrong type, too long, or an
account that is not configured is refused with a message naming it: a deploy judged on the wrong
accounts would be verified for the wrong reasons.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FIELDS", "DeployRequestError", "MarkRequest", "parse_mark"]

#: field -> longest text accepted
FIELDS = {"version": 128, "note": 1000, "accounts": 200}


class DeployRequestError(ValueError):
    """A mark request that cannot be recorded; the message names the field."""


@dataclass(frozen=True)
class MarkRequest:
    version: str
    accounts: tuple[str, ...]
    note: str


def parse_mark(
    body: Any, known: Sequence[str], default: Sequence[str] | None = None
) -> MarkRequest:
    """The request in ``body`` (decoded JSON), its accounts among ``known`` (without any:
    ``default``, else all of ``known``)."""
    if not isinstance(body, dict):
        raise DeployRequestError('the body must be a JSON object, like {"version": "v1.4.2"}')
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        nearest = difflib.get_close_matches(unknown[0], FIELDS, n=1)
        hint = f" (did you mean {nearest[0]!r}?)" if nearest else ""
        raise DeployRequestError(
            f"unknown field {unknown[0]!r}{hint}; the fields are {', '.join(FIELDS)}"
        )
    return MarkRequest(
        version=_text(body, "version"),
        accounts=_accounts(body.get("accounts"), known, known if default is None else default),
        note=_text(body, "note"),
    )


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DeployRequestError(f"{name} must be a string, not {type(value).__name__}")
    value = value.strip()
    if len(value) > FIELDS[name]:
        raise DeployRequestError(f"{name} is longer than {FIELDS[name]} characters")
    if any(ord(c) < 32 and c not in "\t\n" for c in value) or (name == "version" and "\n" in value):
        raise DeployRequestError(f"{name} contains control characters")
    return value


def _accounts(value: Any, known: Sequence[str], default: Sequence[str]) -> tuple[str, ...]:
    if value is None:
        return tuple(default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DeployRequestError('accounts must be a list of account labels, like ["MASTER"]')
    if not value:
        raise DeployRequestError("accounts is empty; leave it out to judge every account")
    if len(value) > FIELDS["accounts"]:
        raise DeployRequestError(f"accounts names more than {FIELDS['accounts']} accounts")
    for label in value:
        if label not in known:
            listed = ", ".join(known) or "none"
            raise DeployRequestError(
                f"accounts: {label!r} is not a configured account (configured: {listed})"
            )
    return tuple(dict.fromkeys(value))
