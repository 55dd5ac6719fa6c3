"""The ``KRAKEN_*`` environment that points krakenwatch (or a bot) at a running simulator."""

from __future__ import annotations

from .scenario import Scenario

__all__ = ["scenario_environment"]


def scenario_environment(scenario: Scenario, url: str, ws_url: str | None = None) -> dict[str, str]:
    """Variables for every key of ``scenario`` that names its ``account`` (MASTER or USER:<name>),
    after ``KRAKEN_API_URL`` (and ``KRAKEN_WS_AUTH_URL`` when ``ws_url`` is given)."""
    env = {"KRAKEN_API_URL": url}
    if ws_url is not None:
        env["KRAKEN_WS_AUTH_URL"] = ws_url
    for spec in scenario.keys:
        if spec.account is None:
            continue
        if spec.account == "MASTER":
            prefix = "KRAKEN_MASTER"
        else:
            prefix = "KRAKEN_USER_" + spec.account.removeprefix("USER:").upper()
        env[f"{prefix}_API_KEY"] = spec.key
        env[f"{prefix}_API_SECRET"] = spec.secret
        env[f"{prefix}_NONCE_UNIT"] = spec.nonce_unit
    return env
