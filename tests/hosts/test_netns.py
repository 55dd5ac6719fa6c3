"""Hosts as network namespaces (testkit/netns.py): isolated but for the lab's own networks, cut
and healed, and gone (processes, links, namespaces) when the lab closes, also after a failure."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import bench.hosts
from bench.kit import Context
from testkit import netns
from testkit.net import eventually
from testkit.netns import Lab, lab_namespaces

SERVE = (
    "import http.server as h, sys\n"
    "h.HTTPServer((sys.argv[1], 8000), h.SimpleHTTPRequestHandler).serve_forever()"
)
PROBE = (
    "import sys, urllib.request as u\n"
    "try:\n"
    "    print(u.urlopen(sys.argv[1], timeout=float(sys.argv[2])).status)\n"
    "except OSError as exc:\n"
    "    print(type(exc).__name__)\n"
)


def probe(host: netns.Host, url: str, timeout: float = 1.0) -> str:
    return host.run([sys.executable, "-c", PROBE, url, str(timeout)]).stdout.strip()


def serving(host: netns.Host, url: str) -> bool:
    return probe(host, url) == "200"


@pytest.mark.usefixtures("require_netns")
def test_hosts_reach_each_other_only_over_their_networks_and_a_cut_is_a_partition(
    tmp_path: Path,
) -> None:
    with Lab() as lab:
        a, b = lab.add_host("a"), lab.add_host("b", ["store"])
        assert set(b.addresses) == {"store"} and a.address("store") != b.address("store")
        b.spawn([sys.executable, "-c", SERVE, b.address("store")], tmp_path / "b.log")
        url = f"http://{b.address('store')}:8000/"
        eventually(lambda: serving(a, url), 30, what="b to serve a")
        assert probe(a, "http://127.0.0.1:8000/") == "URLError"  # a's own loopback
        lab.cut("b", "store")
        assert lab.is_cut("b", "store")
        assert probe(a, url) in ("TimeoutError", "URLError")  # packets vanish
        lab.heal("b", "store")
        eventually(lambda: serving(a, url), 30, what="b to serve a again")
        assert not lab.is_cut("b", "store")
        namespaces = lab_namespaces(lab.id)
        assert sorted(namespaces) == sorted([a.ns, b.ns, lab.switch])
    assert lab_namespaces(lab.id) == []
    assert lab.survivors() == []
    assert lab.seen  # the server was seen, and is gone


@pytest.mark.usefixtures("require_netns")
def test_a_failing_block_still_tears_everything_down(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="the test failed"), Lab() as lab:
        host = lab.add_host("h")
        host.spawn([sys.executable, "-c", "import time; time.sleep(600)"], tmp_path / "h.log")
        raise RuntimeError("the test failed")
    assert lab_namespaces(lab.id) == []
    assert lab.survivors() == []


@pytest.mark.usefixtures("require_netns")
def test_two_labs_at_once_never_share_a_name() -> None:
    with Lab() as first, Lab() as second:
        assert first.id != second.id
        assert first.add_host("x").ns != second.add_host("x").ns
        assert first.id.startswith("kw") and len(first.id) == 8


def test_without_root_the_reason_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    support = netns.netns_support.__wrapped__()
    assert not support.ok and "not root" in support.reason
    monkeypatch.setattr(netns, "netns_support", lambda: support)
    with pytest.raises(RuntimeError, match="not root"):
        Lab()


def test_the_bench_section_says_why_it_was_skipped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    reason = "not root: network namespaces need root (CAP_SYS_ADMIN)"
    monkeypatch.setattr(bench.hosts, "netns_support", lambda: netns.NetnsSupport(False, reason))
    section = bench.hosts.run(Context(quick=True, tmp=tmp_path))
    assert section.status == "not measured" and section.error is None
    assert reason in section.tables[0].markdown() and section.how
