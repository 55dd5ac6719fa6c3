"""Real processes for the alerting tests: `krakenwatch up` and Prometheus on loopback ports.

The Prometheus config and rule file are derived from the shipped ones (only the targets, the
intervals and the `for:` durations change, and only in the test's temporary copies).
"""

from __future__ import annotations

import re
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from testkit.env import clean_environ
from testkit.net import eventually, free_port, status_of

from .deploykit import (
    ALERTS_YML,
    PROMETHEUS_DIR,
    PROMETHEUS_YML,
    Server,
    http_json,
    prometheus,
    promtool,
    ready_server,
    running,
    tool,
)

#: where the shipped prometheus.yml sends alerts (the compose service)
SHIPPED_ALERTMANAGER = "alertmanager:9093"
#: scrape job -> its target in the shipped prometheus.yml (the compose service names)
SHIPPED_TARGETS = {"krakenwatch": "krakenwatch:8501", "krakenwatch-gateway": "gateway:8788"}
_DURATION_RE = re.compile(r"(\d+)([smh])")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=60, cwd=PROMETHEUS_DIR
    )


def alert_rules(group: str | None = None) -> list[dict[str, Any]]:
    """Every alert rule, or those of one group."""
    doc = yaml.safe_load(ALERTS_YML.read_text())
    return [rule for g in doc["groups"] if group in (None, g["name"]) for rule in g["rules"]]


def seconds(duration: str) -> int:
    """A Prometheus duration of one unit ("90s", "5m", "1h") in seconds."""
    match = _DURATION_RE.fullmatch(duration)
    assert match, f"cannot read the duration {duration!r}"
    return int(match.group(1)) * _SECONDS[match.group(2)]


def one_second(duration: str) -> str:
    """Every `for:` cut to 1 s."""
    return "1s"


def minutes_as_seconds(duration: str) -> str:
    """Time scaled down 60 times (5m -> 5s): alerts still fire in the shipped order."""
    return f"{max(1, seconds(duration) // 60)}s"


# --------------------------------------------------------------------- krakenwatch under test
@dataclass
class Target:
    """A running krakenwatch: its base URL, how to stop it and what it printed."""

    url: str
    stop: Callable[[], object]
    output: Callable[[], str]

    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")


def krakenwatch_environment(
    kraken_env: Mapping[str, str], tmp_path: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return clean_environ(
        {
            **kraken_env,
            "KRAKENWATCH_POLL_INTERVAL": "1",
            "KRAKENWATCH_DATA_DIR": str(tmp_path / "data"),
            "HOME": str(tmp_path),
            **(extra or {}),
        }
    )


@contextmanager
def krakenwatch_up(
    kraken_env: Mapping[str, str], tmp_path: Path, extra: Mapping[str, str] | None = None
) -> Iterator[Target]:
    """`krakenwatch up` as a subprocess on a free loopback port (cwd: an empty directory, so no
    developer's .env is read); ``extra`` adds KRAKENWATCH_* settings."""
    port = free_port()
    argv = [tool("krakenwatch", "pip install -e .")]
    argv += ["up", "--address", "127.0.0.1", "--port", str(port)]
    env = krakenwatch_environment(kraken_env, tmp_path, extra)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    with running(argv, tmp_path / "krakenwatch.log", env=env, cwd=workdir) as app:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert app.alive(), app.output()
            return status_of(url + "/metrics") == 200

        eventually(ready, 60, what="krakenwatch up to serve /metrics", on_timeout=app.output)
        printed = eventually(
            lambda: f"metrics: {url}/metrics" in app.output(),
            10,
            what="krakenwatch up to print its metrics URL",
            on_timeout=app.output,
        )
        assert printed
        yield Target(url, app.stop, app.output)


# ------------------------------------------------------------------------- Prometheus under test
class Prometheus(Server):
    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        doc = http_json(f"{self.url}/api/v1/{path}{query}")
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector"
        return list(data["result"])

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == name]

    def active(self, name: str, **labels: str) -> list[dict[str, Any]]:
        """The pending or firing ``name`` alerts whose labels include ``labels``."""
        return [
            a
            for a in self.alerts(name)
            if a["state"] in ("pending", "firing")
            and all(a["labels"].get(k) == v for k, v in labels.items())
        ]


def derive_rule_file(tmp_path: Path, shorten: Callable[[str], str] = one_second) -> Path:
    """The shipped rules with every `for:` passed through ``shorten``, so that alerts go pending
    and firing within the test's time. Only the test copy is changed: the shipped durations stay
    as they are."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    doc = yaml.safe_load(ALERTS_YML.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = shorten(str(rule["for"]))
    path = tmp_path / "alerts.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def derive_config_file(
    tmp_path: Path,
    target: str,
    rules: Path,
    alertmanager: str | None = None,
    job_name: str = "krakenwatch",
) -> Path:
    """The shipped prometheus.yml with only the ``job_name`` job, its target replaced, the rule
    file replaced by the test copy, 1 s scrape/evaluation intervals, and its Alertmanager
    replaced by ``alertmanager`` (host:port) or, without one, removed."""
    doc = yaml.safe_load(PROMETHEUS_YML.read_text())
    doc["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    assert doc["rule_files"] == ["alerts.yml"]
    doc["rule_files"] = [str(rules)]
    assert {j["job_name"] for j in doc["scrape_configs"]} == set(SHIPPED_TARGETS)
    (job,) = [j for j in doc["scrape_configs"] if j["job_name"] == job_name]
    doc["scrape_configs"] = [job]
    for key in ("scrape_interval", "scrape_timeout"):
        job.pop(key, None)
    assert job["static_configs"] == [{"targets": [SHIPPED_TARGETS[job_name]]}]
    job["static_configs"] = [{"targets": [target]}]
    (manager,) = doc["alerting"]["alertmanagers"]
    assert manager["static_configs"] == [{"targets": [SHIPPED_ALERTMANAGER]}]
    if alertmanager is None:
        del doc["alerting"]
    else:
        manager["static_configs"] = [{"targets": [alertmanager]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = run_promtool("check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    return path


@contextmanager
def prometheus_server(
    tmp_path: Path,
    target: str,
    *,
    shorten: Callable[[str], str] = one_second,
    alertmanager: str | None = None,
    job_name: str = "krakenwatch",
) -> Iterator[Prometheus]:
    """Debian's `prometheus` on a free loopback port, temporary storage, scraping ``target`` as
    ``job_name`` with the derived config and rules; stopped after the block."""
    rules = derive_rule_file(tmp_path, shorten)
    config = derive_config_file(tmp_path, target, rules, alertmanager, job_name)
    port = free_port()
    argv = [
        prometheus(),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
    ]
    with ready_server(argv, tmp_path / "prometheus.log", port, "Prometheus") as process:
        yield Prometheus(f"http://127.0.0.1:{port}", process)
