"""The deploy judge: marks deploys, judges the latest one, and keeps both in the deploy book.

:class:`DeployJudge` is the one place that knows the latest deploy. It re-bases the monitor's
snapshot on its marker (:meth:`DeployJudge.snapshot`: what the pages, the gauges and
``/api/verify`` read), and judges it (:func:`~dashboard.deploys.verdict.decide`) twice a second
in its thread while it is pending, and again whenever its state is asked for, so that a verdict is
seen as soon as the checks allow it. A restart of ``up`` brings the latest deploy back from the
database with its counts since the marker (:meth:`DeployJudge.restore`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from dashboard.checks.checklist import Check, build_checklist
from dashboard.checks.gateway_items import bot_calls
from dashboard.config import Settings
from dashboard.deploys.document import deploy_document, verify_for_deploy
from dashboard.deploys.request import MarkRequest
from dashboard.deploys.verdict import CheckKey, check_key, decide, scoped, supersede
from dashboard.deploys.window import DeployWindow, counts_since
from dashboard.errors import StoreError
from dashboard.history.deploy_book import Deploy, DeployBook, DeployState
from dashboard.history.store import EventStore
from dashboard.monitor.events import Event
from dashboard.monitor.status import Snapshot

__all__ = ["JUDGE_EVERY_S", "DeployJudge"]

#: how often a pending deploy is judged in the background (it is also judged on every request)
JUDGE_EVERY_S = 0.5
_log = logging.getLogger(__name__)


class DeployJudge:
    def __init__(
        self,
        settings: Settings,
        monitor_snapshot: Callable[[], Snapshot],
        store: EventStore,
        *,
        poll_soon: Callable[[Sequence[str]], object] = lambda labels: None,
        before_mark: Callable[[], object] = lambda: None,
        gateway_clients: Callable[[], frozenset[str]] = frozenset,
        clock: Callable[[], float] = time.time,
    ):
        """``poll_soon``: poll these accounts now; ``before_mark``: read what is pending (the
        bot log) so that it is stamped before the marker; ``gateway_clients``: the accounts a
        gateway client credential names (a bot is expected to call through the gateway there)."""
        self.settings = settings
        self.book = DeployBook(store)
        self._store = store
        self._monitor_snapshot = monitor_snapshot
        self._poll_soon = poll_soon
        self._before_mark = before_mark
        self._gateway_clients = gateway_clients
        self._clock = clock
        self._lock = threading.RLock()
        self._window = DeployWindow()
        self._latest: Deploy | None = None
        #: since when each failing check of the latest deploy has been failing without a break
        self._failing_since: dict[CheckKey, float] = {}

    # -- wiring -------------------------------------------------------------------------------

    def restore(self) -> Deploy | None:
        """Before the monitor starts: the latest deploy from the database, with its counts since
        the marker (the events the previous process stored)."""
        latest = self.book.latest()
        if latest is not None:
            counts = counts_since(self._store, latest.marked_at)
            gateway = frozenset(latest.gateway_accounts)
            self._window.reopen(latest.marked_at, self._monitor_snapshot(), counts, gateway)
        with self._lock:
            self._latest = latest
        return latest

    def on_event(self, event: Event) -> None:
        """The monitor's listener: counted in the window since the marker."""
        self._window.on_event(event)

    def run(self, stop: threading.Event) -> None:
        """Judge the pending deploy every :data:`JUDGE_EVERY_S` until ``stop`` is set."""
        while not stop.wait(JUDGE_EVERY_S):
            try:
                self.judge()
            except Exception:  # a bug or a full disk must not end the judging
                _log.exception("judging the latest deploy failed; retrying")

    # -- marking ------------------------------------------------------------------------------

    def known_accounts(self) -> list[str]:
        """The labels a deploy may name: every account the monitor shows."""
        return [a.label for a in self._monitor_snapshot().accounts]

    def default_accounts(self) -> list[str]:
        """The accounts a deploy names by default: every configured (valid) account."""
        return [a.label for a in self.settings.accounts]

    def mark(self, request: MarkRequest) -> Deploy:
        """Record a deploy marked now, and return it as judged; the previous one, if still
        pending, is judged a last time and then superseded.

        Raises :class:`~dashboard.errors.StoreError` when the database cannot record it (then
        nothing changed)."""
        with self._lock:
            previous = self.judge()
            self._before_mark()  # lines written before the marker are stamped before it
            snapshot = self._monitor_snapshot()  # the gateway's baseline, just before
            expected = self._gateway_clients() | _bot_accounts(snapshot)
            marked_at, replaced = self._window.open_now(self._clock, snapshot, expected)
            try:
                deploy = self.book.add(
                    request.version,
                    request.accounts,
                    request.note,
                    marked_at,
                    tuple(sorted(expected)),
                )
            except BaseException:
                self._window.roll_back(replaced)
                raise
            if previous is not None and previous.state == DeployState.PENDING:
                self._save(supersede(previous, deploy))
            self._latest, self._failing_since = deploy, {}
            self._poll_soon(deploy.accounts)  # a first call after the marker, without a wait
            return self.judge() or deploy

    # -- reading ------------------------------------------------------------------------------

    def latest(self) -> Deploy | None:
        """The latest deploy, as last judged (cheap: for the gauges)."""
        with self._lock:
            return self._latest

    def snapshot(self) -> Snapshot:
        """The monitor's snapshot, counted from the latest marker."""
        return self._window.rebase(self._monitor_snapshot())

    def judge(self) -> Deploy | None:
        """Judge the latest deploy now (if pending); the latest deploy, as judged."""
        with self._lock:
            deploy = self._latest
            if deploy is None or deploy.state != DeployState.PENDING:
                return deploy
            snapshot = self.snapshot()
            self._judge(deploy, snapshot, build_checklist(snapshot, self.settings))
            return self._latest

    def _judge(self, deploy: Deploy, snapshot: Snapshot, checks: list[Check]) -> None:
        now = snapshot.taken_at
        failing = {check_key(c) for c in scoped(checks, deploy.accounts) if c.status == "fail"}
        self._failing_since = {k: self._failing_since.get(k, now) for k in failing}
        judged = decide(
            deploy,
            checks,
            now,
            grace_s=self.settings.deploy_grace_s,
            timeout_s=self.settings.deploy_timeout_s,
            failing_since=self._failing_since,
        )
        if judged.state != deploy.state or _open_checks(judged) != _open_checks(deploy):
            self._save(judged)  # a verdict, or other checks open: worth a write
        self._latest = judged

    def _save(self, deploy: Deploy) -> None:
        try:
            self.book.save(deploy)
        except StoreError:  # the verdict stands in memory; the next change writes it again
            _log.exception("recording %s failed", deploy.title)

    def get(self, deploy_id: int) -> Deploy | None:
        """Deploy ``deploy_id`` (the latest one judged now)."""
        latest = self.judge()
        if latest is not None and latest.id == deploy_id:
            return latest
        return self.book.get(deploy_id)

    def recent(self, limit: int) -> list[Deploy]:
        """The last ``limit`` deploys, newest first (the latest one judged now)."""
        latest = self.judge()
        found = self.book.recent(limit)
        return [latest if latest is not None and d.id == latest.id else d for d in found]

    def document(self, deploy: Deploy) -> dict[str, Any]:
        return deploy_document(deploy, self.settings)

    def verify(self) -> dict[str, Any]:
        """The verify document, judged for the latest deploy (and that deploy judged on it)."""
        with self._lock:
            snapshot = self.snapshot()
            checks = build_checklist(snapshot, self.settings)
            deploy = self._latest
            if deploy is not None and deploy.state == DeployState.PENDING:
                self._judge(deploy, snapshot, checks)
                deploy = self._latest
            return verify_for_deploy(snapshot, self.settings, checks, deploy)


def _open_checks(deploy: Deploy) -> list[tuple[Any, Any, Any]]:
    """Which checks are open, and how (a change of these is written)."""
    return [(c.get("name"), c.get("account"), c.get("status")) for c in deploy.failing]


def _bot_accounts(snapshot: Snapshot) -> frozenset[str]:
    """The accounts whose bots called through the gateway (of this process) so far."""
    traffic = snapshot.gateway
    if traffic is None:
        return frozenset()
    return frozenset(a for a in traffic.kraken_errors if bot_calls(traffic, a))
