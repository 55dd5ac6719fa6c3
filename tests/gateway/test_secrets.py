"""No key, secret, signature or request body ever leaves the gateway: not in its output, its
answers, /metrics, /healthz, nor in the data dir. A real gateway process runs good calls, refusals,
a replay and upstream faults with known secrets; then everything it wrote or served is searched."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest

from broker.signing import sign
from testkit.gateway import account_environ, gateway_process
from testkit.net import http_get
from testkit.rawclient import RawResponse, form, raw_request, signed_post
from testkit.sim import make_key, one_key_simulator

BODY_MARKER = "hunter2-never-log-this-body"


@pytest.mark.slow
def test_nothing_secret_in_output_answers_metrics_health_or_data(tmp_path: Path) -> None:
    wrong_key, wrong_secret = make_key("wrong")
    answers: list[RawResponse] = []
    with one_key_simulator("secrets", latency_ms=(0, 0)) as (sim, key, secret):
        env = {
            **account_environ({"MASTER": (key, secret)}, sim.url, tmp_path / "data"),
            "KRAKENWATCH_REQUEST_TIMEOUT": "1",
        }
        signatures: list[str] = []

        def post(
            method: str, nonce: int, *, as_key: str = key, with_secret: str = secret, **fields: str
        ) -> None:
            body = form(nonce, **fields)
            signatures.append(sign(f"/0/private/{method}", nonce, body, with_secret))
            answers.append(
                signed_post(
                    gw.url,
                    method,
                    key=as_key,
                    secret=with_secret,
                    body=body,
                    nonce=nonce,
                    timeout=30,
                )
            )

        with gateway_process(env, tmp_path) as gw:
            post("Balance", 1, note=BODY_MARKER)
            post("Balance", 2, with_secret=wrong_secret, note=BODY_MARKER)
            post("Balance", 3, as_key=wrong_key, with_secret=wrong_secret)
            order = {
                "pair": "XBTUSD",
                "type": "buy",
                "ordertype": "market",
                "volume": "1",
                "validate": "true",
                "userref": BODY_MARKER,
            }
            post("AddOrder", 4, **order)
            post("AddOrder", 4, **order)  # the replay
            answers.append(
                signed_post(
                    gw.url,
                    "Balance",
                    key=key,
                    secret=secret,
                    body=f"nonce=x&{BODY_MARKER}=1",
                    nonce="x",
                )
            )
            sim.set_faults(http_status=502, count=1)
            post("Balance", 5)
            sim.set_faults(drop=True, count=1)
            post("Balance", 6)
            sim.set_faults(hang=True, methods=["OpenOrders"])
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                hung = pool.submit(post, "OpenOrders", 7, trades=BODY_MARKER)
                sim.wait_for_hanging(1)
                hung.result(30)
            sim.clear_faults()
            served = [http_get(gw.url + path)[2] for path in ("/metrics", "/healthz")]
            served.append(raw_request(gw.url, "GET", "/0/public/Time").body.decode())
            output = gw.output()
    assert [a.status for a in answers] == [200, 200, 200, 200, 200, 200, 502, 504, 504]
    assert "Traceback" not in output
    texts = {"gateway output": output, **{f"served {i}": text for i, text in enumerate(served)}}
    for i, answer in enumerate(answers):
        texts[f"answer {i}"] = answer.body.decode(errors="replace") + repr(answer.headers)
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            texts[f"data file {path.name}"] = path.name + path.read_bytes().decode("latin-1")
    forbidden = {
        "key": key,
        "secret": secret,
        "wrong secret": wrong_secret,
        "wrong key": wrong_key,
        "request body": BODY_MARKER,
    }
    forbidden.update({f"signature {i}": s for i, s in enumerate(signatures)})
    leaks = [
        (what, where)
        for where, text in texts.items()
        for what, value in forbidden.items()
        if value in text
    ]
    assert leaks == [], leaks
    assert "gateway listening on" in output  # the search looked at real output
