"""``krakenwatch simulator`` / ``python -m simulator``: run the Kraken API simulator alone (bots can
be tested against it). Both run :func:`run_simulator_cli`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .admin import ADMIN_ROUTES
from .builtin import BUILTIN_SCENARIOS, builtin_scenario
from .environment import scenario_environment
from .market import DEFAULT_USD_PRICES
from .scenario import Scenario, ScenarioError
from .scenario_file import load_scenario
from .simulator import Simulator
from .store import StateFileError

__all__ = ["HELP_EPILOG", "add_arguments", "resolve_scenario", "run_from_args", "run_simulator_cli"]

_BUILTIN_PRICES = ", ".join(f"{asset} {price}" for asset, price in DEFAULT_USD_PRICES.items())
HELP_EPILOG = f"""\
scenario file (TOML or JSON, chosen by extension; JSON uses the same field names):
  clock_offset_s = 0.0        # simulator clock minus real clock (seen in /0/public/Time)
  latency_ms = [0, 0]         # random delay [lo, hi] ms before each request is judged
  tier = "starter"            # starter (15, 0.33/s) | intermediate | pro | unlimited
  lockout_threshold = 20      # failed calls within lockout_window_s that lock a key; 0 = off
  lockout_window_s = 60
  lockout_seconds = 900
  system_status = "online"    # online | maintenance | cancel_only | post_only
  prices = {{ XXBT = "65000.0", SOL = "150.25" }}   # optional: USD prices by asset code
  token_ttl_s = 900           # a WebSocket token expires when no subscription held it that long
  ws_heartbeat_s = 1.0        # seconds between {{"channel": "heartbeat"}} messages
  maker_fee_pct = "0.25"      # fee of a limit order's fills, % of the cost (quote currency)
  taker_fee_pct = "0.40"      # fee of a market order's fill
  trading_decay_scale = 1.0   # x the trading counters' decay (> 0; 20 for fast benchmarks)
  [[keys]]
  key = "..."                 # the public API key
  secret = "..."              # base64 secret
  name = "MASTER"             # label in /_sim/ output (default: the masked key)
  account = "MASTER"          # optional: MASTER or USER:<name>
  permissions = ["funds", "orders", "trade", "websocket"]   # the default: all four
  balances = {{ ZUSD = "1000.0000", USDT = "50.00000000" }}   # decimal strings
  last_nonce = 0              # int, or relative: "now_us+30s", "now_ms", "now_ns-5s"
  nonce_window = 0            # in the nonce's own unit
  nonce_unit = "us"           # s | ms | us | ns (for "now" and other_writer)
  other_writer = {{ interval_ms = 100, lead_ms = 2000 }}   # another bot on this key
  trading = {{ orders_per_minute = 4, pair = "XBTUSD", volume = "0.001" }}   # trades by itself
                              # (limit orders at the pair's price, filled or cancelled; optional
                              # cancel_ratio = 0.25)

prices (optional): fake USD prices by Kraken asset code (XXBT, not XBT; no staking suffix),
  decimal strings above 0, that override or extend the built-in ones:
  {_BUILTIN_PRICES}.
  They value TradeBalance, and each priced asset but ZUSD is the base of one pair quoted in ZUSD
  for the public Ticker and AssetPairs: XXBT -> XXBTZUSD (altname XBTUSD), SOL -> SOLUSD. An asset
  without a price has no pair (Ticker answers EQuery:Unknown asset pair).

built-in scenarios (--list-scenarios): {", ".join(BUILTIN_SCENARIOS)}

admin routes (JSON, never faulted):
{ADMIN_ROUTES.replace("``", "")}
  fault fields: latency_ms [lo, hi], late_ms (judged N ms after the client gives up),
  http_status (502|503...), api_error ("EService:Busy"...),
  hang, drop, system_status, count (next N requests, then clear), scope (all|private|public),
  methods (["AddOrder"]: only those API methods), probability (0..1]

private WebSocket v2 (ws://HOST:WS_PORT/v2, Kraken's ws-auth): tokens from GetWebSocketsToken;
  ping, subscribe/unsubscribe to balances and executions (snapshot, then every update).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0 = a free port)")
    parser.add_argument(
        "--ws-port",
        type=int,
        default=0,
        help="port of the private WebSocket v2 endpoint (default 0 = a free port)",
    )
    parser.add_argument(
        "--scenario",
        default="healthy",
        help="a scenario file (.toml/.json) or a built-in name (default healthy)",
    )
    parser.add_argument(
        "--state-file", default=None, help="JSON file keeping accepted nonces across restarts"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed for the latency jitter and the demo trader"
    )
    parser.add_argument(
        "--print-env",
        action="store_true",
        help="after the listening lines, print KRAKEN_* variables (KRAKEN_API_URL, "
        "KRAKEN_WS_AUTH_URL and the keys')",
    )
    parser.add_argument(
        "--list-scenarios", action="store_true", help="list the built-in scenarios and exit"
    )


def resolve_scenario(ref: str) -> Scenario:
    """A scenario file path or a built-in name. Raises :class:`ScenarioError`."""
    path = Path(ref)
    if path.is_file() or (
        ref not in BUILTIN_SCENARIOS
        and (path.suffix.lower() in (".toml", ".json") or "/" in ref or "\\" in ref)
    ):
        return load_scenario(path)
    return builtin_scenario(ref)


def run_from_args(args: argparse.Namespace) -> int:
    if args.list_scenarios:
        for name, description in BUILTIN_SCENARIOS.items():
            print(f"{name:24} {description}")
        return 0
    try:
        scenario = resolve_scenario(args.scenario)
        sim = Simulator(
            scenario,
            host=args.host,
            port=args.port,
            state_file=args.state_file,
            seed=args.seed,
            ws_port=args.ws_port,
        )
        sim.start()
    except (ScenarioError, StateFileError) as exc:
        print(f"krakenwatch simulator: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"krakenwatch simulator: error: cannot listen on {args.host}:{args.port}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _on_signal)
    try:
        print(f"listening on {sim.url}", flush=True)
        print(f"listening on {sim.ws_url}", flush=True)
        if args.print_env:
            env = scenario_environment(scenario, sim.url, sim.ws_url)
            print("\n".join(f"{name}={value}" for name, value in env.items()), flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def run_simulator_cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="krakenwatch simulator",
        description="Run the Kraken spot REST API simulator on 127.0.0.1 (strict nonce, signature, "
        "permission and rate-limit checks, fault injection) and its private WebSocket v2 endpoint. "
        "Prints 'listening on URL' (REST), then 'listening on WS_URL' when ready.",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
