"""Alertmanager for the alerting tests: the shipped config, amtool, and a real Alertmanager.

The test copy of the config differs from the shipped one only in the webhook URL (a receiver the
test runs) and shorter grouping waits; routes, grouping labels and inhibition stay as shipped.
"""

from __future__ import annotations

import re
import subprocess
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from testkit.net import free_port

from .deploykit import DEPLOY, Server, http_json, ready_server, tool

ALERTMANAGER_DIR = DEPLOY / "alertmanager"
ALERTMANAGER_YML = ALERTMANAGER_DIR / "alertmanager.yml"
#: a commented-out example receiver line ("  #- name: slack", "  #    slack_configs:")
_EXAMPLE_LINE_RE = re.compile(r"^(  )#((?:- |  ).*)$")


def amtool() -> str:
    return tool("amtool", "install Debian's prometheus-alertmanager package (make system-deps)")


def alertmanager() -> str:
    return tool(
        "prometheus-alertmanager",
        "install Debian's prometheus-alertmanager package (make system-deps)",
    )


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    """`amtool check-config PATH`."""
    return subprocess.run(
        [amtool(), "check-config", str(path)], capture_output=True, text=True, timeout=60
    )


def shipped_config() -> dict[str, Any]:
    return dict(yaml.safe_load(ALERTMANAGER_YML.read_text()))


def uncomment_examples(text: str) -> str:
    """The config with its commented example receivers uncommented."""
    return "\n".join(_EXAMPLE_LINE_RE.sub(r"\1\2", line) for line in text.splitlines()) + "\n"


def derive_config(tmp_path: Path, webhook_url: str) -> Path:
    """The shipped config with its one webhook pointed at ``webhook_url`` and grouping waits of
    1 s (so a notification leaves within the test's time)."""
    doc = shipped_config()
    route = doc["route"]
    route.update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    (receiver,) = [r for r in doc["receivers"] if r["name"] == route["receiver"]]
    (webhook,) = receiver["webhook_configs"]
    webhook["url"] = webhook_url
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = check_config(path)
    assert result.returncode == 0, result.stdout + result.stderr
    return path


class Alertmanager(Server):
    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")

    def alerts(self, name: str | None = None) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds (active and suppressed; resolved ones are left out)."""
        query = urllib.parse.urlencode({"filter": f'alertname="{name}"'} if name else {})
        return list(http_json(f"{self.url}/api/v2/alerts?{query}"))


@contextmanager
def alertmanager_server(tmp_path: Path, webhook_url: str) -> Iterator[Alertmanager]:
    """Debian's Alertmanager on a free loopback port with the derived config, temporary storage
    and no cluster port; stopped after the block."""
    config = derive_config(tmp_path, webhook_url)
    port = free_port()
    argv = [
        alertmanager(),
        f"--config.file={config}",
        f"--storage.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with ready_server(argv, tmp_path / "alertmanager.log", port, "Alertmanager") as process:
        yield Alertmanager(f"http://127.0.0.1:{port}", process)
