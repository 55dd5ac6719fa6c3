"""The gateway's pure parts: body splitting, signature check, replay guard, rate model, answers."""

from __future__ import annotations

import json
import socket

import pytest

from broker import CallEvent, InvalidNonceError, KrakenTimeout, RateLimitError
from broker.client import ForwardedAnswer
from broker.errors import HTTPStatusError
from broker.limits import TIERS
from broker.signing import sign
from gateway.answers import code_label, from_kraken, from_transport
from gateway.auth import signature_matches
from gateway.form import BodyError, check_content_type, split_nonce
from gateway.methods import (
    MOVES_FUNDS,
    NAMED_ONLY,
    PRIVATE_METHODS,
    is_read_only,
    known_private,
    method_label,
    permitted,
    valid_public,
)
from gateway.ratemodel import RateModel, RateObserver
from gateway.replay import Claim, ReplayGuard, nonce_seconds
from gateway.replaystore import FileReplayStore
from testkit.sim import make_key

SECRET = make_key("parts")[1]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------------ the body
@pytest.mark.parametrize(
    ("body", "nonce", "fields"),
    [
        (b"nonce=1", "1", b""),
        (
            b"nonce=1616492376594&pair=XBTUSD&volume=1.25",
            "1616492376594",
            b"pair=XBTUSD&volume=1.25",
        ),
        (b"asset=ZUSD&nonce=17", "17", b"asset=ZUSD"),
        (b"a=%20x+y&nonce=5&b=%E2%82%AC&&c=", "5", b"a=%20x+y&b=%E2%82%AC&&c="),
        (b"txid=A%2CB&n%6Fnce=9", "9", b"txid=A%2CB"),  # an encoded name is still the nonce
        (b"nonce=18446744073709551615", "18446744073709551615", b""),
    ],
)
def test_split_nonce_keeps_every_other_byte(body: bytes, nonce: str, fields: bytes) -> None:
    parts = split_nonce(body)
    assert (parts.nonce_text, parts.fields) == (nonce, fields)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"pair=XBTUSD",
        b"nonce=1&nonce=2",
        b"nonce=",
        b"nonce=-5",
        b"nonce=1.5",
        b"nonce=12a",
        b"nonce=18446744073709551616",
        b"nonce=%EF%BC%91",  # a full-width digit one
        b"\xff\xfe=\x00",
    ],
)
def test_split_nonce_refuses_bodies_kraken_would_refuse(body: bytes) -> None:
    with pytest.raises(BodyError) as caught:
        split_nonce(body)
    assert caught.value.code == "EAPI:Invalid nonce"


def test_content_type_must_be_form_encoded() -> None:
    for ok in (
        None,
        "",
        "application/x-www-form-urlencoded",
        "Application/X-WWW-Form-Urlencoded; charset=utf-8",
    ):
        check_content_type(ok)
    with pytest.raises(BodyError) as caught:
        check_content_type("application/json")
    assert caught.value.code.startswith("EGeneral:Invalid arguments:")


def test_method_names_are_an_exact_allowlist() -> None:
    assert known_private("Balance") and known_private("Earn/Allocate")
    for bad in (
        "",
        "balance",
        "WITHDRAW",
        "WithDraw",
        "Withdraw/X",
        "Walletransfer",
        "SomethingNew",
        "Stake",  # retired
        "../Balance",
        "Balance/",
        "Bal ance",
        "Balance%00",
        "X" * 65,
    ):
        assert not known_private(bad), bad
    assert valid_public("Time") and not valid_public("../Time")
    assert method_label("AddOrder", private=True) == "AddOrder"
    assert method_label("MadeUpMethod", private=True) == "other"
    assert method_label("Time", private=False) == "Time"
    kinds = {info.kind for info in PRIVATE_METHODS.values()}
    assert kinds == {"read", "state", "funds"}
    assert {"Withdraw", "WalletTransfer", "AccountTransfer", "Earn/Allocate"} <= MOVES_FUNDS
    assert "GetWebSocketsToken" in NAMED_ONLY and not is_read_only("GetWebSocketsToken")
    assert not permitted("GetWebSocketsToken", None) and not permitted("Withdraw", None)
    assert permitted("AddOrder", None) and not permitted("Nonsense", None)
    assert permitted("GetWebSocketsToken", frozenset({"GetWebSocketsToken"}))


# ------------------------------------------------------------------------------- the signature
def test_signature_is_checked_over_the_raw_body_with_the_bots_nonce_text() -> None:
    body = b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
    golden_secret = (
        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
    )
    golden = (
        "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
    )
    path = "/0/private/AddOrder"
    assert signature_matches(golden_secret, path, "1616492376594", body, golden)
    assert not signature_matches(golden_secret, path, "1616492376595", body, golden)
    assert not signature_matches(golden_secret, "/0/private/Balance", "1616492376594", body, golden)
    assert not signature_matches(golden_secret, path, "1616492376594", body + b"&x=1", golden)
    assert not signature_matches(SECRET, path, "1616492376594", body, golden)
    for garbage in ("", "not base64!", golden[:-4]):
        assert not signature_matches(golden_secret, path, "1616492376594", body, garbage)
    mine = sign("/0/private/Balance", "7", b"nonce=7", SECRET)
    assert signature_matches(SECRET, "/0/private/Balance", "7", b"nonce=7", mine)


# ------------------------------------------------------------------------------ replay guard
NOW = 1_800_000_000.0
ORDER = b"pair=XBTUSD&type=buy&ordertype=market&volume=1"


def order(nonce: int, extra: bytes = b"") -> tuple[str, bytes]:
    return str(nonce), b"nonce=%d&" % nonce + ORDER + extra


@pytest.mark.parametrize("per_second", [1, 10**3, 10**6, 10**8, 10**9])
def test_nonces_are_read_as_timestamps_in_their_own_unit(per_second: int) -> None:
    assert nonce_seconds(int(NOW * per_second), NOW) == pytest.approx(NOW)
    assert nonce_seconds(int((NOW - 299) * per_second), NOW) == pytest.approx(NOW - 299, abs=1)


def test_state_changing_calls_must_be_fresh_and_come_once(tmp_path) -> None:
    clock = Clock()
    clock.now = NOW
    store = FileReplayStore(tmp_path / "replay.sqlite3")
    guard = ReplayGuard(store, 300, clock=clock)
    fresh = int(NOW * 1e6)
    claim = guard.check("k1", "bot", "AddOrder", *order(fresh))
    assert isinstance(claim, Claim) and claim.take()
    again = guard.check("k1", "bot", "AddOrder", *order(fresh))
    assert isinstance(again, Claim) and not again.take()  # byte-identical: a replay
    other = guard.check("k2", "bot", "AddOrder", *order(fresh))  # another credential
    assert isinstance(other, Claim) and other.take()
    assert guard.check("k1", "bot", "Balance", "5", b"nonce=5") is None  # read-only: not judged
    for stale in (1, fresh - 301_000_000, fresh + 301_000_000, int((NOW - 3600) * 1e3)):
        refused = guard.check("k1", "bot", "AddOrder", *order(stale))
        assert isinstance(refused, str) and refused.startswith("EAPI:Invalid nonce:"), stale
        assert "--counter-nonces bot" in refused and "nothing was sent" in refused
    cancel = guard.check("k1", "bot", "CancelOrder", str(fresh), b"nonce=%d&txid=X" % fresh)
    assert isinstance(cancel, Claim) and cancel.take()
    cancel.give_back()  # never sent: the same bytes may come again
    assert cancel.take()
    # a restart: the same file remembers
    store.close()
    guard = ReplayGuard(FileReplayStore(tmp_path / "replay.sqlite3"), 300, clock=clock)
    again = guard.check("k1", "bot", "AddOrder", *order(fresh))
    assert isinstance(again, Claim) and not again.take()
    # once its nonce left the window it is refused for its age, and forgotten
    clock.now += 302
    assert isinstance(guard.check("k1", "bot", "AddOrder", *order(fresh)), str)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"XBTUSD" not in raw and b"nonce=" not in raw  # digests only


def test_counter_clients_must_rise_instead(tmp_path) -> None:
    store = FileReplayStore(tmp_path / "replay.sqlite3")
    guard = ReplayGuard(store, 300, counter_clients=frozenset({"grid"}))
    takes = []
    for nonce in (1, 1, 2, 1, 3):
        claim = guard.check("k1", "grid", "AddOrder", *order(nonce))
        assert isinstance(claim, Claim)
        takes.append(claim.take())
    assert takes == [True, False, True, False, True]
    assert isinstance(guard.check("k1", "other", "AddOrder", *order(4)), str)


# -------------------------------------------------------------------------------- rate model
def test_rate_model_holds_calls_within_a_margin_below_the_tier() -> None:
    clock = Clock()
    tier = TIERS["starter"]
    model = RateModel(tier, clock=clock)
    assert model.limit <= tier.maximum - 1.5  # room for one unseen call and stepped decay
    assert model.decay_per_s < tier.decay_per_s
    sent = 0
    while model.wait_s(1.0) == 0:
        model.begin(1.0)
        model.settle(1.0)
        sent += 1
    assert 10 <= sent < tier.maximum
    wait = model.wait_s(1.0)
    assert wait == pytest.approx((sent + 1 - model.limit) / model.decay_per_s)
    clock.now += wait
    assert model.wait_s(1.0) == pytest.approx(0.0, abs=1e-9)
    assert model.wait_s(1.0, ahead=2.0) > 2 / tier.decay_per_s
    assert model.wait_s(0.0) == 0  # the trading limiter's calls are not judged here


def test_rate_model_counts_calls_in_flight_and_charges_at_the_answer() -> None:
    clock = Clock()
    model = RateModel(TIERS["pro"], clock=clock)
    model.begin(2.0)
    clock.now += 30  # a slow call: no decay is credited while it is in flight
    assert model.level() == pytest.approx(2.0)
    model.settle(2.0)
    assert model.level() == pytest.approx(2.0)
    clock.now += 1
    assert model.level() == pytest.approx(2.0 - model.decay_per_s)
    model.settle(0.0, full=True)  # Kraken said "rate limit exceeded": take the counter as full
    assert model.level() >= TIERS["pro"].maximum
    unenforced = RateModel(TIERS["starter"], enforce=False, clock=clock)
    unenforced.charge(100.0)
    assert unenforced.wait_s(1.0) == 0 and unenforced.level() == pytest.approx(100.0)


def test_calls_of_other_clients_are_charged_only_when_they_left() -> None:
    model = RateModel(TIERS["pro"], clock=Clock())
    observer = RateObserver({"kid": model})

    def call(outcome: str) -> None:
        observer.on_call(CallEvent("MASTER", "kid", "Balance", True, 0.0, 0.01, outcome))

    for nothing_left in ("key_busy", "abandoned", "nonce_store_unavailable", "connection"):
        call(nothing_left)
    assert model.level() == 0.0
    for left in ("ok", "timeout", "connection_lost", "invalid_nonce"):
        call(left)
    assert model.level() == pytest.approx(4.0)


# ------------------------------------------------------------------------------------ answers
def test_answers_pass_krakens_bytes_and_say_how_they_count() -> None:
    body = b'{"error":["EAPI:Invalid nonce"]}'
    error = InvalidNonceError("EAPI:Invalid nonce")
    reply = from_kraken(ForwardedAnswer(200, body, "application/json", 5, error))
    assert (reply.status, reply.body, reply.outcome, reply.codes) == (
        200,
        body,
        "invalid_nonce",
        ("EAPI:Invalid nonce",),
    )
    assert reply.sent and not reply.by_gateway
    limited = from_kraken(
        ForwardedAnswer(
            200, b"{}", "application/json", 6, RateLimitError("EOrder:Rate limit exceeded")
        )
    )
    assert limited.outcome == "kraken_error"
    page = from_kraken(ForwardedAnswer(520, b"<html>", "text/html", 7, HTTPStatusError(520, "x")))
    assert (page.status, page.body, page.outcome) == (520, b"<html>", "upstream_error")
    timeout = from_transport(KrakenTimeout("no answer"))
    assert timeout.status == 504 and timeout.sent and timeout.by_gateway
    (code,) = json.loads(timeout.body)["error"]
    assert "may have been executed" in code and "check" in code
    assert code_label("EGeneral:Invalid arguments:volume") == "EGeneral:Invalid arguments"


def test_the_listening_socket_names_tcp_so_asyncio_disables_nagle() -> None:
    """asyncio sets TCP_NODELAY on accepted connections only when the listening socket says
    IPPROTO_TCP; without it every answer (headers, then body) waits ~40 ms for a delayed ACK."""
    from gateway.server import bind

    with bind("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP
