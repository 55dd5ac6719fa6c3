"""The deploys, as marked and as judged, kept in the event database (table ``deploys``).

A :class:`Deploy` is what ``krakenwatch deploy mark`` (``POST /api/deploys``) recorded and what
the judge (:mod:`dashboard.deploys.judge`) decided of it. The book keeps them across restarts of
``up``: the latest deploy, its state and its marker come back with the process. Its text (version,
note, the failing checks) goes through the store's redaction like every event.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dashboard.history.store import EventStore

__all__ = ["Deploy", "DeployBook", "DeployState"]


class DeployState(StrEnum):
    #: marked; no verdict yet
    PENDING = "pending"
    #: every required check of its accounts passed with data from after the marker
    VERIFIED = "verified"
    #: a required check failed after the grace period, nothing was verified within the timeout,
    #: or another deploy was marked before its verdict
    FAILED = "failed"


@dataclass(frozen=True)
class Deploy:
    id: int
    version: str
    #: the account labels the deploy is judged on
    accounts: tuple[str, ...]
    note: str
    marked_at: float
    state: DeployState = DeployState.PENDING
    #: when the verdict (verified or failed) was reached
    decided_at: float | None = None
    #: the verdict, or what it waits for, in one sentence
    reason: str = "waiting for every required check to pass with data from after the marker"
    #: the required checks that fail or are still pending (the check documents), at the last
    #: judgement
    failing: tuple[Mapping[str, Any], ...] = field(default=())
    #: the accounts a bot was expected to call through the gateway on after the marker (those
    #: with a client credential, or whose bots called through it before): kept for a restart
    gateway_accounts: tuple[str, ...] = ()

    @property
    def seconds_to_verdict(self) -> float | None:
        return None if self.decided_at is None else max(0.0, self.decided_at - self.marked_at)

    @property
    def title(self) -> str:
        """How the pages name it: its version, else its number."""
        return self.version or f"deploy #{self.id}"


_COLUMNS = (
    "id, marked_at, version, accounts, note, state, decided_at, reason, failing, gateway_accounts"
)


class DeployBook:
    """The ``deploys`` table of an :class:`EventStore` (its lock, its redaction)."""

    def __init__(self, store: EventStore):
        self.store = store

    def add(
        self,
        version: str,
        accounts: tuple[str, ...],
        note: str,
        marked_at: float,
        gateway_accounts: tuple[str, ...] = (),
    ) -> Deploy:
        """Record a new, pending deploy; the stored deploy, with its id."""
        version, note = self.store.redact(version), self.store.redact(note)
        with self.store.database("record a deploy", write=True) as conn:
            cur = conn.execute(
                "INSERT INTO deploys (marked_at, version, accounts, note, state, reason, failing,"
                " gateway_accounts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    marked_at,
                    version,
                    json.dumps(list(accounts)),
                    note,
                    DeployState.PENDING,
                    Deploy.reason,
                    "[]",
                    json.dumps(list(gateway_accounts)),
                ),
            )
            assert cur.lastrowid is not None
            return Deploy(
                cur.lastrowid, version, accounts, note, marked_at, gateway_accounts=gateway_accounts
            )

    def save(self, deploy: Deploy) -> None:
        """Write ``deploy``'s judgement (state, verdict time, reason, failing checks)."""
        failing = self.store.redact(json.dumps([dict(c) for c in deploy.failing], default=str))
        with self.store.database("record a deploy's verdict", write=True) as conn:
            conn.execute(
                "UPDATE deploys SET state = ?, decided_at = ?, reason = ?, failing = ?"
                " WHERE id = ?",
                (
                    deploy.state,
                    deploy.decided_at,
                    self.store.redact(deploy.reason),
                    failing,
                    deploy.id,
                ),
            )

    def get(self, deploy_id: int) -> Deploy | None:
        found = self._select(" WHERE id = ?", (deploy_id,))
        return found[0] if found else None

    def latest(self) -> Deploy | None:
        found = self.recent(1)
        return found[0] if found else None

    def recent(self, limit: int) -> list[Deploy]:
        """The last ``limit`` deploys, newest first."""
        return self._select(" ORDER BY id DESC LIMIT ?", (max(0, int(limit)),))

    def _select(self, clause: str, args: tuple[Any, ...]) -> list[Deploy]:
        sql = f"SELECT {_COLUMNS} FROM deploys{clause}"  # noqa: S608 (constant text, bound values)
        with self.store.database("read the deploys") as conn:
            rows = conn.execute(sql, args).fetchall()
        return [_deploy(row) for row in rows]


def _deploy(row: sqlite3.Row | tuple[Any, ...]) -> Deploy:
    id_, marked_at, version, accounts, note, state, decided_at, reason, failing, gateway = row
    return Deploy(
        id=int(id_),
        version=version,
        accounts=tuple(json.loads(accounts)),
        note=note,
        marked_at=float(marked_at),
        state=DeployState(state),
        decided_at=decided_at,
        reason=reason,
        failing=tuple(json.loads(failing)),
        gateway_accounts=tuple(json.loads(gateway)),
    )
