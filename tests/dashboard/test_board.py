"""The account board's read-only copies: one per change of an account, sharing nothing mutable."""

from __future__ import annotations

import copy

from broker import NonceStatus
from dashboard.monitor.board import AccountBoard, detached
from dashboard.monitor.events import Publisher
from dashboard.monitor.status import AccountState, AccountStatus, ErrorInfo
from dashboard.monitor.streamstatus import OpenOrder, RateCounter, StreamState


def full_status() -> AccountStatus:
    """A status with every container filled."""
    status = AccountStatus(
        label="USER:a",
        masked_key="AbCd…wXyZ",
        key_id="0123456789abcdef",
        nonce_unit="us",
        state=AccountState.CONNECTED,
        since=1.0,
        balances={"ZUSD": "1.0000"},
        shared_with=["USER:b"],
        last_error=ErrorInfo("permission_denied", "EGeneral:Permission denied", "m", "e", "r", 2.0),
        nonce_status=NonceStatus("0123456789abcdef", "us", 5, 0.1, "file store"),
    )
    status.permissions["orders"] = True
    stream = status.stream
    stream.state = StreamState.UP
    stream.open_orders["O1"] = OpenOrder("O1", "XBT/USD", "buy", "limit", "1", "2", "new", "0", 3.0)
    stream.orders[("XBT/USD", "placed")] = 1
    stream.rate_counters["XBT/USD"] = RateCounter(1.0, 10.0, 4.0)
    return status


def test_a_copy_equals_a_deep_copy_and_shares_nothing_mutable() -> None:
    status = full_status()
    found = detached(status)
    assert found == copy.deepcopy(status) and type(found) is AccountStatus
    status.balances["XXBT"] = "1"  # type: ignore[index]
    status.permissions["trade"] = True
    status.shared_with.append("USER:c")
    status.stream.open_orders.clear()
    status.stream.orders[("XBT/USD", "fill")] = 2
    status.stream.rate_counters.clear()
    status.stream.reconnects = 3
    assert found == copy.deepcopy(full_status())


def test_readers_share_one_copy_until_the_account_changes() -> None:
    board = AccountBoard([full_status()], Publisher(lambda _: None))
    first = board.statuses()[0]
    assert board.statuses()[0] is first
    board.count_refresh("USER:a")
    second = board.statuses()[0]
    assert second is not first and (first.refresh_count, second.refresh_count) == (0, 1)
    assert board.unconfigured() == []
