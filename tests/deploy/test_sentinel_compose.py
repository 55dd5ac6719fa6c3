"""deploy/sentinel/docker-compose.yml: a primary, a replica and three Sentinels, and gateways whose
``KRAKENWATCH_NONCE_STORE`` names exactly those Sentinels and the primary they watch."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from broker.storespec import parse_redis_spec

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "sentinel" / "docker-compose.yml"


def services() -> dict[str, Any]:
    text = COMPOSE.read_text(encoding="utf-8").replace("${REDIS_PASSWORD}", "example-password")
    found: dict[str, Any] = yaml.safe_load(text)["services"]
    return found


def test_the_gateways_name_the_sentinels_and_the_primary_they_watch() -> None:
    found = services()
    sentinels = sorted(name for name in found if name.startswith("sentinel-"))
    gateways = sorted(name for name in found if name.startswith("gateway-"))
    assert len(sentinels) == 3 and len(gateways) == 2
    script = found["sentinel-1"]["command"][0]
    monitor = re.search(r"sentinel monitor (\S+) (\S+) (\d+) (\d+)", script)
    assert monitor is not None
    name, primary, port, quorum = monitor.groups()
    assert primary in found and port == "6379"
    assert int(quorum) * 2 > len(sentinels)  # a majority must agree on a failover
    assert f"sentinel auth-pass {name} $" in script  # the password, from the environment
    # each keeps the configuration it rewrote after a failover, and writes one only when missing
    assert (
        "[ -f /data/sentinel.conf ] ||" in script and "redis-sentinel /data/sentinel.conf" in script
    )
    volumes = {found[name]["volumes"][0] for name in sentinels}
    assert volumes == {f"{name}:/data" for name in sentinels}
    for gateway in gateways:
        spec = parse_redis_spec(found[gateway]["environment"]["KRAKENWATCH_NONCE_STORE"])
        assert spec.sentinel is not None and spec.sentinel.service == name
        assert sorted(h for h, _ in spec.sentinel.addresses) == sentinels
        assert {p for _, p in spec.sentinel.addresses} == {26379}
        assert spec.sentinel.password == "example-password" and spec.replicas >= 1
        assert spec.lease_s is not None and spec.lease_s > 30  # above the request timeout


def test_the_data_nodes_persist_replicate_and_need_the_password() -> None:
    found = services()
    primary, replica = found["redis-primary"]["command"], found["redis-replica"]["command"]
    for command in (primary, replica):
        options = dict(zip(command[1::2], command[2::2], strict=False))
        assert options["--appendonly"] == "yes"
        assert options["--requirepass"] == options["--masterauth"] == "example-password"
    assert replica[replica.index("--replicaof") + 1 :][:2] == ["redis-primary", "6379"]
