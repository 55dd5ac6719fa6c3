"""The checklist's trading-guard items from constructed snapshots: ``halted`` per account, and
``dedicated_key`` failing once the gateway's guard saw another writer on the key; the verify
document, a deploy's scope and the check gauges with them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

from dashboard.checks.checklist import CheckStatus, build_checklist
from dashboard.checks.guard_items import FOREIGN_WRITER_REMEDY
from dashboard.checks.item import CHECK_TITLES, Check
from dashboard.checks.verify import verify_document
from dashboard.config import Settings, load_settings
from dashboard.deploys.verdict import scoped
from dashboard.exporter.gauges import SnapshotGauges
from dashboard.monitor.status import AccountStatus, Snapshot
from gateway.guardview import GuardSnapshot, HaltRecord
from testkit.sim import make_key

NOW = 1_000_000.0


def settings() -> Settings:
    (key, secret), (other, other_secret) = make_key("guard-checks"), make_key("guard-checks-x")
    env = {
        "KRAKEN_API_URL": "http://127.0.0.1:9",
        "KRAKEN_MASTER_API_KEY": key,
        "KRAKEN_MASTER_API_SECRET": secret,
        "KRAKEN_USER_X_API_KEY": other,
        "KRAKEN_USER_X_API_SECRET": other_secret,
    }
    return load_settings(env, use_dotenv=False)


def account(label: str = "MASTER", **fields: object) -> AccountStatus:
    return AccountStatus(
        label=label,
        masked_key="AbCd…wXyZ",
        key_id=f"k-{label}",
        nonce_unit="us",
        state="connected",  # type: ignore[arg-type]
        since=0.0,
        last_success_at=NOW - 1,
        last_call_at=NOW - 1,
        **fields,  # type: ignore[arg-type]
    )


def snapshot(guard: GuardSnapshot | None, *accounts: AccountStatus) -> Snapshot:
    shown = list(accounts) or [account(), account("USER:x")]
    return Snapshot(NOW - 60, NOW, shown, None, "online", {}, gateway_guard=guard)


def items(snap: Snapshot, name: str) -> dict[str | None, Check]:
    return {c.account: c for c in build_checklist(snap, settings()) if c.name == name}


def halt(account: str = "MASTER", client: str | None = None, at: float = NOW - 125) -> HaltRecord:
    return HaltRecord(account, client, "exchange incident", "cli root@ops", at)


def test_halted_passes_without_a_halt_and_fails_while_one_is_on_the_account() -> None:
    calm = items(snapshot(GuardSnapshot(NOW)), "halted")
    assert {a: c.status for a, c in calm.items()} == {
        "MASTER": CheckStatus.PASS,
        "USER:x": CheckStatus.PASS,
    }
    assert all(c.required for c in calm.values())
    assert CHECK_TITLES["halted"] == calm["MASTER"].title

    halted = items(snapshot(GuardSnapshot(NOW, halts=(halt(),))), "halted")
    master = halted["MASTER"]
    assert master.status == CheckStatus.FAIL and master.required
    assert (
        master.detail
        == "MASTER (every caller) halted 2 min 5 s ago by cli root@ops: exchange incident"
    )
    assert master.remedy is not None
    assert "`krakenwatch gateway resume MASTER`" in master.remedy
    assert "--client" not in master.remedy
    assert "Resume button on the Gateway page" in master.remedy
    assert "POST /admin/resume" in master.remedy
    assert halted["USER:x"].status == CheckStatus.PASS  # another account trades on


def test_a_client_halt_fails_its_account_and_names_the_client_to_resume() -> None:
    guard = GuardSnapshot(
        NOW, halts=(halt(client="grid-bot", at=NOW - 10), halt("USER:x", at=NOW - 3 * 3600))
    )
    halted = items(snapshot(guard), "halted")
    master = halted["MASTER"]
    assert master.status == CheckStatus.FAIL
    assert master.detail == "MASTER/grid-bot halted 10 s ago by cli root@ops: exchange incident"
    assert master.remedy is not None
    assert "`krakenwatch gateway resume MASTER --client grid-bot`" in master.remedy
    assert halted["USER:x"].status == CheckStatus.FAIL
    assert halted["USER:x"].detail.startswith("USER:x (every caller) halted 3 h ago by ")
    assert "`krakenwatch gateway resume USER:x`" in (halted["USER:x"].remedy or "")


def test_without_a_gateway_there_is_no_halted_item_and_dedicated_key_is_as_before() -> None:
    snap = snapshot(None)
    assert items(snap, "halted") == {}
    dedicated = items(snap, "dedicated_key")["MASTER"]
    assert (dedicated.status, dedicated.detail, dedicated.required) == (
        CheckStatus.PASS,
        "no other label uses this key",
        False,
    )
    shared = items(snapshot(None, account(shared_with=["USER:x"])), "dedicated_key")["MASTER"]
    assert shared.status == CheckStatus.FAIL and shared.detail == "same API key as USER:x"
    assert shared.remedy is not None and "own API key" in shared.remedy


def test_dedicated_key_fails_once_the_guard_saw_another_writer_on_the_key() -> None:
    guard = GuardSnapshot(
        NOW,
        foreign_writers={"MASTER": 3, "USER:x": 0},
        foreign_writer_at={"MASTER": NOW - 42},
    )
    checks = items(snapshot(guard), "dedicated_key")
    master = checks["MASTER"]
    assert master.status == CheckStatus.FAIL and not master.required
    assert master.remedy == FOREIGN_WRITER_REMEDY
    assert FOREIGN_WRITER_REMEDY == (
        "another program signs with this key: find it, or give it its own key"
    )
    assert "Kraken refused 3 of the gateway's own nonces" in master.detail
    assert "the last 42 s ago" in master.detail
    # a count of 0 is no writer: the item is judged as without a gateway
    assert checks["USER:x"].status == CheckStatus.PASS
    assert checks["USER:x"].detail == "no other label uses this key"


def test_another_writer_on_a_shared_key_names_both() -> None:
    guard = GuardSnapshot(NOW, foreign_writers={"MASTER": 1})
    shared = account(shared_with=["USER:x"])
    master = items(snapshot(guard, shared), "dedicated_key")["MASTER"]
    assert master.status == CheckStatus.FAIL
    assert "Kraken refused 1 of the gateway's own nonces" in master.detail
    assert master.detail.endswith("; and the same API key as USER:x")
    assert master.remedy is not None and master.remedy.startswith(FOREIGN_WRITER_REMEDY)
    assert "own API key" in master.remedy


def test_a_halt_fails_the_verify_document_and_belongs_to_its_accounts_deploys() -> None:
    snap = snapshot(GuardSnapshot(NOW, halts=(halt(),)))
    doc = verify_document(snap, settings())
    json.dumps(doc)  # plain JSON
    assert doc["ok"] is False
    (item,) = [c for c in doc["checks"] if c["name"] == "halted" and c["account"] == "MASTER"]
    assert item["status"] == "fail" and item["required"] is True
    checks = build_checklist(snap, settings())
    assert any(c.name == "halted" for c in scoped(checks, ["MASTER"]))
    assert not any(c.name == "halted" and c.account == "MASTER" for c in scoped(checks, ["USER:x"]))


def check_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if f'check="{name}"' in line]


def test_the_check_gauges_follow_the_guard_for_an_unchanged_account() -> None:
    """The exporter writes an account's lines again only when something they depend on
    changed: a halt or another writer changes them while the account's status copy stays."""
    master, other = account(), account("USER:x")
    guards = [GuardSnapshot(NOW)]
    current: Callable[[], Snapshot] = lambda: snapshot(guards[-1], master, other)  # noqa: E731
    gauges = SnapshotGauges(settings(), current)
    assert check_lines(gauges.exposition(), "halted") == [
        'krakenwatch_check_success{account="MASTER",check="halted"} 1.0',
        'krakenwatch_check_success{account="USER:x",check="halted"} 1.0',
    ]
    builds = gauges.account_builds
    gauges.exposition()
    assert gauges.account_builds == builds  # nothing changed: the cached lines
    guards.append(replace(guards[-1], halts=(halt(client="grid-bot"),)))
    text = gauges.exposition()
    assert check_lines(text, "halted") == [
        'krakenwatch_check_success{account="MASTER",check="halted"} 0.0',
        'krakenwatch_check_success{account="USER:x",check="halted"} 1.0',
    ]
    assert gauges.account_builds == builds + 1  # MASTER's lines only
    guards.append(replace(guards[-1], halts=(), foreign_writers={"USER:x": 2}))
    text = gauges.exposition()
    assert 'krakenwatch_check_success{account="MASTER",check="halted"} 1.0' in text
    assert 'krakenwatch_check_success{account="USER:x",check="dedicated_key"} 0.0' in text
    assert text.count('check="dedicated_key"') == 2  # one series per account, never two
