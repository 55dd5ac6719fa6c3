"""Nothing sent, or outcome unknown: the two kinds of transport failure are siblings, on every path
a request takes (a private call through requests, a forwarded call through the kept-alive
connection, a public call of either client), produced over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from broker import (
    ConnectionLostError,
    KrakenClient,
    KrakenConnectionError,
    KrakenTimeout,
    OutcomeUnknownError,
    PublicClient,
    TransportError,
)
from broker.errors import nothing_sent_kinds
from simulator import Simulator
from testkit.net import free_port
from testkit.observers import Recorder
from testkit.sim import one_key_simulator

PATHS = ["private", "forwarded", "public", "kraken-client-public"]
Call = Callable[[], object]


def a_call(path: str, url: str, key: str, secret: str, tmp_path: Path) -> Call:
    """One request to ``url`` along ``path``, as a call without arguments."""
    if path in ("public", "kraken-client-public"):
        public: PublicClient | KrakenClient = (
            PublicClient(base_url=url, timeout=(2, 0.3))
            if path == "public"
            else KrakenClient(base_url=url, store_dir=tmp_path, timeout=(2, 0.3))
        )
        return lambda: public.call_public("Time")
    api = KrakenClient(
        key,
        secret,
        base_url=url,
        store_dir=tmp_path,
        timeout=(2, 0.3),
        late_grace=0,
        keep_alive=path == "forwarded",
    )
    if path == "forwarded":
        return lambda: api.forward_private("Balance")
    return lambda: api.call_private("Balance")


def handled_as_nothing_sent(call: Call) -> bool:
    """Whether ``except KrakenConnectionError`` (the handler for "safe to send again") catches
    the failure of ``call``; other transport errors propagate."""
    try:
        call()
    except KrakenConnectionError:
        return True
    raise AssertionError("the call succeeded")


@contextmanager
def simulator(name: str) -> Iterator[tuple[Simulator, str, str]]:
    with one_key_simulator(name, latency_ms=(0, 0)) as (sim, key, secret):
        yield sim, key, secret


def test_the_tree_keeps_nothing_sent_and_outcome_unknown_apart() -> None:
    assert issubclass(KrakenConnectionError, TransportError)
    assert issubclass(OutcomeUnknownError, TransportError)
    assert not issubclass(ConnectionLostError, KrakenConnectionError)
    assert not issubclass(KrakenConnectionError, OutcomeUnknownError)
    assert issubclass(ConnectionLostError, OutcomeUnknownError)
    assert issubclass(KrakenTimeout, OutcomeUnknownError)
    kinds = {
        cls.kind: cls.outcome_unknown
        for cls in (KrakenConnectionError, OutcomeUnknownError, KrakenTimeout, ConnectionLostError)
    }
    assert kinds == {
        "connection": False,
        "outcome_unknown": True,
        "timeout": True,
        "connection_lost": True,
    }


def test_the_outcome_unknown_flag_follows_the_class() -> None:
    """Code that reads ``outcome_unknown`` and code that catches the classes agree."""
    seen: list[type[TransportError]] = []
    pending: list[type[TransportError]] = [TransportError]
    while pending:
        cls = pending.pop()
        seen.append(cls)
        assert cls.outcome_unknown is issubclass(cls, OutcomeUnknownError), cls.__name__
        pending.extend(cls.__subclasses__())
    assert {KrakenConnectionError, KrakenTimeout, ConnectionLostError} <= set(seen)


@pytest.mark.parametrize("path", PATHS)
def test_a_refused_connection_sent_nothing(path: str, tmp_path: Path) -> None:
    key, secret = "K" * 56, "c2VjcmV0"
    call = a_call(path, f"http://127.0.0.1:{free_port()}", key, secret, tmp_path)
    with pytest.raises(KrakenConnectionError, match="nothing was sent") as caught:
        call()
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert caught.value.outcome_unknown is False
    assert handled_as_nothing_sent(call)


@pytest.mark.parametrize("path", PATHS)
def test_a_connection_dropped_after_sending_is_an_unknown_outcome(
    path: str, tmp_path: Path
) -> None:
    with simulator(f"dropped-{path}") as (sim, key, secret):
        call = a_call(path, sim.url, key, secret, tmp_path)
        sim.set_faults(drop=True, count=1)
        with pytest.raises(OutcomeUnknownError) as caught:
            call()
        assert type(caught.value) is ConnectionLostError
        assert not isinstance(caught.value, KrakenConnectionError)
        assert caught.value.outcome_unknown is True
        assert sim.current_faults()["drop"] is False  # used up: the request did reach "Kraken"
        sim.set_faults(drop=True, count=1)
        with pytest.raises(ConnectionLostError):
            handled_as_nothing_sent(call)  # an "it is safe to resend" handler lets it through


@pytest.mark.parametrize("path", PATHS)
def test_no_answer_in_time_is_an_unknown_outcome(path: str, tmp_path: Path) -> None:
    with simulator(f"hung-{path}") as (sim, key, secret):
        call = a_call(path, sim.url, key, secret, tmp_path)
        sim.set_faults(hang=True)
        try:
            with pytest.raises(OutcomeUnknownError) as caught:
                call()
        finally:
            sim.clear_faults()
        assert type(caught.value) is KrakenTimeout
        assert not isinstance(caught.value, KrakenConnectionError)


def test_only_an_unknown_outcome_holds_the_key(tmp_path: Path) -> None:
    """After a request that may have reached Kraken the key waits ``late_grace`` before the next
    one leaves; after one that was never sent it does not."""
    grace = 0.6
    with simulator("hold") as (sim, key, secret):
        recorder = Recorder()
        api = KrakenClient(
            key, secret, base_url=sim.url, store_dir=tmp_path, late_grace=grace, observer=recorder
        )
        sim.set_faults(drop=True, count=1)
        with pytest.raises(ConnectionLostError):
            api.call_private("Balance")
        api.call_private("Balance")
    lost, after_lost = recorder.calls
    assert lost.outcome_unknown and lost.outcome == "connection_lost"
    assert after_lost.outcome == "ok" and after_lost.waited_s >= grace * 0.9

    recorder.calls.clear()
    refused = KrakenClient(
        key,
        secret,
        base_url=f"http://127.0.0.1:{free_port()}",
        store_dir=tmp_path / "refused",
        late_grace=grace,
        observer=recorder,
    )
    for _ in range(2):
        with pytest.raises(KrakenConnectionError):
            refused.call_private("Balance")
    first, second = recorder.calls
    assert not first.outcome_unknown and first.outcome == "connection"
    assert second.waited_s < grace / 2


def test_the_errors_raised_before_sending_are_named_by_kind() -> None:
    kinds = nothing_sent_kinds()
    assert {"connection", "key_busy", "abandoned", "nonce_store_unavailable"} <= kinds
    assert {"invalid_secret", "nonce_unit_downgrade", "reentrant_call"} <= kinds
    assert not {"timeout", "connection_lost", "outcome_unknown", "invalid_nonce"} & kinds
