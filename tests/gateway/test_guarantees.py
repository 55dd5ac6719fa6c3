"""The gateway's guarantees against an attacker: a captured request never runs twice (not after a
restart), stale and counter nonces get a clear answer, ``GetWebSocketsToken`` is guarded, the
method policy is an exact allowlist, duplicate auth headers and slow requests are refused."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from broker.signing import sign
from gateway.clientfile import add_client as add_client_entry
from gateway.routes import GATEWAY_HEADER
from testkit.gateway import add_client, gateway_process
from testkit.rawclient import LIMIT_ORDER, RawResponse, form, fresh_nonce, signed_post

ORDER = LIMIT_ORDER


def by_gateway(response: RawResponse, error: str) -> None:
    assert response.error == [error], response.error
    assert response.headers[GATEWAY_HEADER.lower()] == "answered"


def place(url: str, key: str, secret: str, nonce: int, method: str = "AddOrder") -> RawResponse:
    fields = ORDER if method == "AddOrder" else {}
    return signed_post(url, method, key=key, secret=secret, body=form(nonce, **fields), nonce=nonce)


def test_a_captured_order_never_runs_again_not_after_a_restart(
    tmp_path: Path, sim_key, sim_env
) -> None:
    sim, key, _secret = sim_key
    workdir = tmp_path / "gw"
    workdir.mkdir()
    bot_key, bot_secret = add_client(sim_env, workdir, "bot", "MASTER")
    captured = fresh_nonce()
    with gateway_process(sim_env, workdir, ["--no-rate-model"]) as gw:
        assert place(gw.url, bot_key, bot_secret, captured).error == []
        by_gateway(place(gw.url, bot_key, bot_secret, captured), "EAPI:Invalid nonce")
    with gateway_process(sim_env, workdir, ["--no-rate-model"]) as gw:  # restarted
        by_gateway(place(gw.url, bot_key, bot_secret, captured), "EAPI:Invalid nonce")
        assert place(gw.url, bot_key, bot_secret, fresh_nonce()).error == []  # a new order is fine
    assert sim.stats(key).requests == 2  # the captured order reached Kraken once


@pytest.mark.parametrize("per_second", [1, 10**3, 10**6, 10**8, 10**9])
def test_a_fresh_nonce_in_any_unit_passes(sim_key, start_gateway, per_second: int) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url)
    assert place(gw.url, key, secret, fresh_nonce(per_second)).error == []
    assert sim.stats(key).accepted == 1


def test_stale_and_counter_nonces_are_refused_with_the_reason_and_nothing_sent(
    sim_key, start_gateway
) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url)
    now_ms = fresh_nonce()
    for nonce in (1, 2, now_ms - 3_600_000, now_ms - 301_000, now_ms + 301_000):
        refused = place(gw.url, key, secret, nonce)
        (code,) = refused.error
        assert code.startswith("EAPI:Invalid nonce:") and "nothing was sent" in code, nonce
        assert "--counter-nonces account-key" in code
    assert "a counter?" in place(gw.url, key, secret, 1).error[0]
    assert sim.stats(key).requests == 0
    # read-only calls are not judged: any nonce is fine
    assert place(gw.url, key, secret, 7, method="Balance").error == []


def test_a_counter_bot_named_with_counter_nonces_must_rise(sim_key, start_gateway) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url, counter_clients=frozenset({"account-key"}))
    assert place(gw.url, key, secret, 1).error == []
    by_gateway(place(gw.url, key, secret, 1), "EAPI:Invalid nonce")
    assert place(gw.url, key, secret, 2).error == []
    by_gateway(place(gw.url, key, secret, 1), "EAPI:Invalid nonce")
    assert sim.stats(key).requests == 2


def test_websocket_tokens_are_named_only_and_replay_checked(
    tmp_path: Path, sim_key, start_gateway
) -> None:
    sim, key, _secret = sim_key
    clients = tmp_path / "clients.toml"
    plain = add_client_entry(clients, "plain", "MASTER")
    streamer = add_client_entry(clients, "streamer", "MASTER", ["Balance", "GetWebSocketsToken"])
    gw = start_gateway(sim.url, config_path=clients)
    token = "GetWebSocketsToken"
    by_gateway(
        place(gw.url, plain.key, plain.secret, fresh_nonce(), token), "EGeneral:Permission denied"
    )
    captured = fresh_nonce()
    first = place(gw.url, streamer.key, streamer.secret, captured, token)
    assert first.error == [] and first.json()["result"]["token"]
    by_gateway(place(gw.url, streamer.key, streamer.secret, captured, token), "EAPI:Invalid nonce")
    assert sim.stats(key).requests == 1


@pytest.mark.parametrize(
    "method", ["WITHDRAW", "WithDraw", "Withdraw/X", "Walletransfer", "SomethingNew", "balance"]
)
def test_any_name_not_in_the_table_is_an_unknown_method_for_every_caller(
    tmp_path: Path, sim_key, start_gateway, method: str
) -> None:
    sim, key, secret = sim_key
    clients = tmp_path / "clients.toml"
    bot = add_client_entry(clients, "bot", "MASTER")
    gw = start_gateway(sim.url, config_path=clients)
    for caller_key, caller_secret in ((key, secret), (bot.key, bot.secret)):
        nonce = fresh_nonce()
        answer = signed_post(
            gw.url,
            method,
            key=caller_key,
            secret=caller_secret,
            body=form(nonce, asset="XBT", amount="1"),
            nonce=nonce,
        )
        by_gateway(answer, "EGeneral:Unknown method")
    assert sim.stats(key).requests == 0


def test_duplicate_auth_headers_are_refused(sim_key, start_gateway) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url)
    nonce = fresh_nonce()
    body = form(nonce).encode()
    signature = sign("/0/private/Balance", str(nonce), body, secret)
    for twice in (f"API-Key: {key}\r\nAPI-Key: {key}", f"API-Sign: {signature}\r\nAPI-Sign: x"):
        heads = {"API-Key": key, "API-Sign": signature}
        heads.pop(twice.split(":", 1)[0])
        lines = "".join(f"{n}: {v}\r\n" for n, v in heads.items()) + twice + "\r\n"
        raw = (
            "POST /0/private/Balance HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n{lines}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        answer = exchange(gw.url, raw)
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
        assert b"duplicate API-" in answer and b"EGeneral:Invalid arguments" in answer
    assert sim.stats(key).requests == 0


def exchange(url: str, raw: bytes) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(raw)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (``socket.timeout`` if it never does)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_slow_or_silent_connections_are_closed_after_the_read_timeout(
    sim_key, start_gateway
) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url, read_timeout_s=1.0)
    parts = urlsplit(gw.url)
    partial_head = b"POST /0/private/Balance HTTP/1.1\r\nHost: gw\r\nAPI-Key: "
    partial_body = (
        f"POST /0/private/Balance HTTP/1.1\r\nHost: gw\r\nAPI-Key: {key}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nnonce=1"
    ).encode()
    kinds = {"silent": b"", "partial headers": partial_head, "partial body": partial_body}
    opened: list[tuple[str, socket.socket]] = []
    try:
        for i in range(200):
            name = list(kinds)[i % 3]
            sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
            if kinds[name]:
                sock.sendall(kinds[name])
            opened.append((name, sock))
        for name, sock in opened:  # each is closed by the server (a timeout here: held open)
            answer = read_until_closed(sock)
            if name == "partial body":  # the route was reading it: the connection just closes
                assert answer == b""
            else:
                assert answer.startswith(b"HTTP/1.1 408 "), (name, answer[:100])
    finally:
        for _name, sock in opened:
            sock.close()
    assert sim.stats(key).requests == 0
    assert place(gw.url, key, secret, 1, method="Balance").error == []  # still serving


def test_a_kept_alive_connections_next_request_has_its_own_read_timeout(
    sim_key, start_gateway
) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url, read_timeout_s=1.0)
    parts = urlsplit(gw.url)
    nonce = fresh_nonce()
    body = form(nonce)
    head = (
        f"POST /0/private/Balance HTTP/1.1\r\nHost: gw\r\nAPI-Key: {key}\r\n"
        f"API-Sign: {sign('/0/private/Balance', nonce, body, secret)}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head.encode() + body.encode())
        first = b""
        while b'"result"' not in first:  # the whole (small) answer
            chunk = sock.recv(65536)
            assert chunk, first
            first += chunk
        assert first.startswith(b"HTTP/1.1 200 ")
        # the next request on the same connection trickles: its own clock, from its first byte
        sock.sendall(b"POST /0/private/Balance HTTP/1.1\r\nHost: gw\r\nAPI-Key: ")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
    assert sim.stats(key).requests == 1
