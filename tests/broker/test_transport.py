"""What happens on the wire: late deliveries, krakenex's session contract, secrets in errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import krakenex
import pytest
import requests
from requests.adapters import HTTPAdapter

from broker import ConfigurationError, KrakenClient, KrakenTimeout
from simulator import KeyStats
from testkit.net import free_port
from testkit.sim import one_key_simulator


def late_delivery(tmp_path: Path, name: str, grace: float) -> KeyStats:
    """A Balance whose answer never comes (the client gives up after 0.5 s) reaches the simulator
    200 ms after that; the client's next request is an OpenOrders."""
    with one_key_simulator(name) as (sim, key, secret):
        api = KrakenClient(
            key, secret, base_url=sim.url, store_dir=tmp_path, timeout=(2, 0.5), late_grace=grace
        )
        sim.set_faults(late_ms=200, count=1, methods=["Balance"])
        with pytest.raises(KrakenTimeout) as caught:
            api.call_private("Balance")
        assert caught.value.outcome_unknown
        assert "2 s to connect and 0.5 s to answer" in str(caught.value)
        api.call_private("OpenOrders")
        return sim.wait_for(key, lambda s: s.late == 1 and s.accepted + s.invalid_nonce == 2)


def test_the_key_is_held_so_a_late_delivery_is_judged_first(tmp_path: Path) -> None:
    held = late_delivery(tmp_path / "held", "late-held", grace=1.5)
    assert (held.accepted, held.invalid_nonce) == (2, 0)
    # the contrast, without the hold: the next request overtakes the late one, which Kraken then
    # rejects (and counts towards a lockout) while nobody is listening
    unheld = late_delivery(tmp_path / "unheld", "late-unheld", grace=0)
    assert (unheld.accepted, unheld.invalid_nonce) == (1, 1)


class RecordingAdapter(HTTPAdapter):
    """A transport adapter (as a bot may mount one) that records what requests hands it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, Any]] = []

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.seen.append({k: kwargs.get(k) for k in ("verify", "proxies", "timeout", "cert")})
        return super().send(request, **kwargs)


def customised(api: krakenex.API, dead_proxy: str) -> RecordingAdapter:
    """The session settings a bot may have made on its krakenex object."""
    adapter = RecordingAdapter()
    api.session.mount("http://", adapter)
    api.session.verify = False
    api.session.proxies = {"https": dead_proxy}  # only for https: the simulator is plain http
    api.session.trust_env = False  # so HTTP_PROXY from the environment is ignored
    return adapter


def test_session_settings_are_kept_as_krakenex_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)  # would break every call if it were used
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    with one_key_simulator("session") as (sim, key, secret):
        plain = krakenex.API(key, secret)
        plain.uri = sim.url
        ours = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        seen_plain, seen_ours = customised(plain, dead_proxy), customised(ours, dead_proxy)
        assert plain.query_private("Balance")["error"] == []
        assert ours.query_private("Balance")["error"] == []
        assert seen_ours.seen[0]["verify"] is False
        assert (
            seen_ours.seen[0]["proxies"] == seen_plain.seen[0]["proxies"] == {"https": dead_proxy}
        )
        assert seen_ours.seen[0]["verify"] == seen_plain.seen[0]["verify"]


def test_json_options_and_connect_read_timeouts_work_as_in_krakenex(tmp_path: Path) -> None:
    with one_key_simulator("json-options") as (sim, key, secret):
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path, timeout=(1, 0.3))
        api.json_options(parse_float=Decimal)
        sim.set_faults(body='{"error":[],"result":{"fee":0.26}}', count=1)
        assert api.query_private("TradeBalance")["result"]["fee"] == Decimal("0.26")
        sim.set_faults(hang=True)
        with pytest.raises(requests.ReadTimeout):
            api.query_private("Balance", timeout=(1, 0.2))
        sim.clear_faults()


def exception_text(exc: BaseException) -> str:
    """Everything an exception carries that a logger, a crash reporter or a debugger may show:
    its message, repr, args, attributes (a request's headers and body, a response's request),
    and the whole chain of causes and contexts."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        for name in ("request", "response"):
            thing = getattr(current, name, None)
            if thing is not None:
                parts.append(repr(vars(thing)))
                inner = getattr(thing, "request", None)
                if inner is not None:
                    parts.append(repr(vars(inner)))
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def test_no_exception_leaving_the_client_carries_the_key_or_secret(tmp_path: Path) -> None:
    with one_key_simulator("leaks") as (sim, key, secret):
        caught: list[BaseException] = []
        # a key with a newline would make requests put it into an InvalidHeader message
        broken = KrakenClient(
            key[:30] + "\n" + key[30:], secret, base_url=sim.url, store_dir=tmp_path
        )
        for call in (broken.query_private, broken.call_private):
            with pytest.raises(ConfigurationError) as refused:
                call("Balance")
            caught.append(refused.value)
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        sim.set_faults(http_status=502, count=1)
        with pytest.raises(requests.HTTPError) as http_error:
            api.query_private("Balance")
        assert (
            http_error.value.response is not None and http_error.value.response.status_code == 502
        )
        caught.append(http_error.value)
    gone = KrakenClient(key, secret, base_url=f"http://127.0.0.1:{free_port()}", store_dir=tmp_path)
    with pytest.raises(requests.ConnectionError) as refused_connection:
        gone.query_private("Balance")
    caught.append(refused_connection.value)
    for exc in caught:
        text = exception_text(exc)
        assert key[:30] not in text and key[30:] not in text, type(exc).__name__
        assert secret not in text and secret[:40] not in text, type(exc).__name__
        assert "API-Sign" not in text, type(exc).__name__


@pytest.mark.parametrize(
    "url", ["https://api.kraken.com/0/private/Balance", "http://127.0.0.1:1/x"]
)
def test_environment_lookups_follow_every_change_of_the_environment(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process-wide cache answers as requests itself does, before and after each change."""
    from broker.transport import EnvCachingSession

    ours, theirs = EnvCachingSession(), requests.Session()

    def both() -> tuple[Any, Any]:
        return tuple(  # type: ignore[return-value]
            s.merge_environment_settings(url, {}, None, None, None) for s in (ours, theirs)
        )

    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    steps: list[tuple[str, str | None]] = [
        ("HTTPS_PROXY", "http://proxy-a:3128"),
        ("HTTP_PROXY", "http://proxy-b:3128"),
        ("NO_PROXY", "api.kraken.com,127.0.0.1"),
        ("NO_PROXY", None),
        ("REQUESTS_CA_BUNDLE", "/etc/ssl/custom.pem"),
        ("HTTPS_PROXY", None),
    ]
    seen = [both()]
    for name, value in steps:
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
        seen.append(both())
    for mine, requests_own in seen:
        assert mine == requests_own
    assert len({repr(mine) for mine, _ in seen}) > 2  # the steps did change the answer


def test_a_changed_key_is_checked_again(tmp_path: Path) -> None:
    api = KrakenClient("GOODKEY", "c2VjcmV0", store_dir=tmp_path)
    assert api._checked_key() == "GOODKEY"
    api.key = "BAD\u00a0KEY"
    with pytest.raises(ConfigurationError, match="non-ASCII"):
        api._checked_key()


def test_an_answer_worked_out_while_the_environment_changed_is_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another thread changes a proxy variable between the cache's reading of the environment and
    the lookup: that request gets the new answer (as in requests), and it is not kept under the
    old environment's name."""
    from broker import transport

    url = "https://api.kraken.com/0/private/Balance"
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.setenv("https_proxy", "http://before:3128")
    lookup = requests.utils.get_environ_proxies  # what broker.transport calls

    def racing(u: str, no_proxy: str | None = None) -> Any:
        monkeypatch.setenv("https_proxy", "http://after:3128")  # "another thread", mid-lookup
        return lookup(u, no_proxy=no_proxy)

    def proxy() -> str:
        settings = transport.EnvCachingSession().merge_environment_settings(
            url, {}, None, None, None
        )
        return str(settings["proxies"]["https"])

    monkeypatch.setattr(transport, "get_environ_proxies", racing)
    assert proxy() == "http://after:3128"
    monkeypatch.setattr(transport, "get_environ_proxies", lookup)
    monkeypatch.setenv("https_proxy", "http://before:3128")  # the environment as first read
    assert proxy() == "http://before:3128"
