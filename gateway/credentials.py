"""Who may call the gateway: the accounts' own keys and the gateway's client credentials, in one
table that is swapped whole when the client file changes.

:class:`Credentials` is the gateway's :class:`~gateway.auth.Authenticator`. A request looks its
``API-Key`` up once and keeps the :class:`~gateway.auth.Principal` it found, so a call in flight
finishes with the table it started with while a reload installs the next one (a single reference
assignment). :meth:`Credentials.reload` re-reads the file (on SIGHUP, and when
:meth:`Credentials.reload_if_changed` sees another modification time, size, inode or mode). A file
that is malformed or too open at reload keeps the previous table and is reported
(:attr:`Credentials.problem`, the log, the metrics), never raised: only the first read, at start,
raises. A client naming an unknown account is reported (:attr:`CredentialTable.skipped`) and
skipped; the others keep working.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from broker import AccountConfig
from broker.signing import mask_key

from .auth import AccountKeys, Principal
from .clientfile import ClientConfigError, ClientEntry, read_clients

__all__ = ["ClientView", "CredentialTable", "Credentials", "build_table"]

log = logging.getLogger("krakenwatch.gateway")


@dataclass(frozen=True)
class ClientView:
    """What may be shown of a client credential (never its secret, never its whole key)."""

    name: str
    account: str
    #: ``None``: every method but those that move funds
    allow: tuple[str, ...] | None
    masked_key: str


@dataclass(frozen=True)
class CredentialTable:
    #: ``API-Key`` -> who that is
    by_key: Mapping[str, Principal]
    #: the client credentials in use
    clients: tuple[ClientView, ...]
    #: clients left out, and why (an unknown account, a key that is an account's own)
    skipped: tuple[str, ...]


def build_table(
    accounts: Sequence[AccountConfig], entries: Iterable[ClientEntry], source: Path | None = None
) -> CredentialTable:
    """The accounts' own keys, then every client whose account is configured."""
    by_key = dict(AccountKeys(accounts).by_key)
    labels = {a.label: a for a in accounts}
    clients: list[ClientView] = []
    skipped: list[str] = []
    where = f"{source}: " if source is not None else ""
    for entry in entries:
        account = labels.get(entry.account)
        if account is None:
            skipped.append(
                f"{where}client {entry.name!r}: unknown account {entry.account!r} "
                f"(configured: {', '.join(labels)}); skipped"
            )
            continue
        if entry.key in by_key:
            skipped.append(f"{where}client {entry.name!r}: its key is taken; skipped")
            continue
        allow = None if entry.allow is None else frozenset(entry.allow)
        by_key[entry.key] = Principal(
            entry.name,
            account,
            entry.secret,
            named=True,
            allow=allow,
            order_share=entry.order_share,
        )
        clients.append(ClientView(entry.name, account.label, entry.allow, mask_key(entry.key)))
    return CredentialTable(by_key, tuple(clients), tuple(skipped))


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino, info.st_mode


class Credentials:
    """The gateway's authenticator: account keys plus the client file's credentials."""

    def __init__(self, accounts: Sequence[AccountConfig], path: Path | None = None):
        """Raises :class:`~gateway.clientfile.ClientConfigError` when the file cannot be used."""
        self.accounts = list(accounts)
        self.path = path
        self._stamp = _stamp(path) if path is not None else None
        entries = read_clients(path) if path is not None else []
        #: the table in use (replaced whole by :meth:`reload`)
        self.table = build_table(self.accounts, entries, path)
        #: why the file on disk is not in use (the previous table is), ``None`` when it is
        self.problem: str | None = None
        #: reloads by outcome (``ok``, ``error``)
        self.reloads = {"ok": 0, "error": 0}

    def identify(self, api_key: str) -> Principal | None:
        return self.table.by_key.get(api_key.strip()) if api_key else None

    def reload(self) -> bool:
        """Re-read the file; ``True`` when its table is now in use (``False``: the previous one
        stays, :attr:`problem` says why)."""
        if self.path is None:
            return False
        self._stamp = _stamp(self.path)  # before reading: a change while reading is seen next
        try:
            entries = read_clients(self.path)
        except ClientConfigError as exc:
            self.problem = exc.message
            self.reloads["error"] += 1
            log.warning(
                "%s; keeping the previous %d client credential(s)",
                exc.message,
                len(self.table.clients),
            )
            return False
        self.table = build_table(self.accounts, entries, self.path)
        self.problem = None
        self.reloads["ok"] += 1
        log.info("client credentials reloaded from %s: %d", self.path, len(self.table.clients))
        for reason in self.table.skipped:
            log.warning("%s", reason)
        return True

    def reload_if_changed(self) -> bool:
        """:meth:`reload` when the file changed since it was last read."""
        if self.path is None or _stamp(self.path) == self._stamp:
            return False
        return self.reload()
