"""A strict, faithful local Kraken spot REST API simulator (a real HTTP server on 127.0.0.1), with
Kraken's private WebSocket v2 (``balances`` and ``executions``) and an order book.

Used by the tests, the demo and the benchmarks; bots can be tested against it too
(``krakenwatch simulator`` / ``python -m simulator``). Stdlib and :mod:`websockets` only, plus
:mod:`broker.signing`, :mod:`broker.limits` and :mod:`broker.assets`.

One module per concern:

* :mod:`~simulator.simulator` the :class:`Simulator` (lifecycle, control); its Python API for
  orders and streams in :mod:`~simulator.sim_accounts`, its hooks on the trading limits in
  :mod:`~simulator.sim_trading`
* :mod:`~simulator.scenario`, :mod:`~simulator.scenario_file`, :mod:`~simulator.builtin`,
  :mod:`~simulator.environment` what a simulator starts from, and the ``KRAKEN_*`` variables
* :mod:`~simulator.server` (HTTP plumbing), :mod:`~simulator.engine` (one REST request),
  :mod:`~simulator.endpoints` (stateless results), :mod:`~simulator.market` (prices, pairs),
  :mod:`~simulator.private_api` (orders and tokens over REST), :mod:`~simulator.trading_api`
  (amends, edits, batches, cancels, the dead man's switch over REST)
* :mod:`~simulator.state`, :mod:`~simulator.keys`, :mod:`~simulator.store` keys, nonces, rate
  counters, the state file; :mod:`~simulator.faults` injected REST faults
* :mod:`~simulator.book` the order book (fills, cancels, trading counter),
  :mod:`~simulator.order_changes` amends, edits and batches on it, :mod:`~simulator.order_args`
  an order from its arguments, :mod:`~simulator.ledger` the balances it moves,
  :mod:`~simulator.orders` its data and Kraken's shapes of it; :mod:`~simulator.deadman` the dead
  man's switch (``CancelAllOrdersAfter``); :mod:`~simulator.trader` demo trading
* :mod:`~simulator.tokens` WebSocket tokens; :mod:`~simulator.hub` subscriptions, fan-out and
  stream statistics; :mod:`~simulator.stream` the WebSocket server and its faults;
  :mod:`~simulator.stream_session` one connection's protocol
* :mod:`~simulator.admin`, :mod:`~simulator.admin_orders` the ``/_sim/`` routes;
  :mod:`~simulator.journal` the journal of requests that carry an id; :mod:`~simulator.cli` the
  command line

Nonce rule, per key, judged in arrival order (after the simulated latency), ``EAPI:Invalid nonce``
otherwise: the nonce is a decimal integer string in 1..2^64-1; with ``nonce_window == 0`` it is
accepted iff it is greater than the last accepted nonce; with a window ``W > 0`` it is accepted iff
it is greater than ``last - W`` and was not accepted before; then ``last = max(last, nonce)``.
See :mod:`simulator.state` for the judging order and :mod:`simulator.faults`.
"""

from .book import OrderError
from .builtin import BUILTIN_SCENARIOS, builtin_scenario, fake_key, fake_secret
from .environment import scenario_environment
from .faults import Faults
from .hub import StreamStats
from .keys import KeyStats
from .orders import OrderAge
from .scenario import (
    PERMISSIONS,
    TIERS,
    TRADING_TIERS,
    KeySpec,
    OtherWriter,
    Scenario,
    ScenarioError,
    TradingSpec,
)
from .scenario_file import load_scenario
from .simulator import Simulator
from .state import KEEP
from .store import StateFileError

__all__ = [
    "BUILTIN_SCENARIOS",
    "KEEP",
    "PERMISSIONS",
    "TIERS",
    "TRADING_TIERS",
    "Faults",
    "KeySpec",
    "KeyStats",
    "OrderAge",
    "OrderError",
    "OtherWriter",
    "Scenario",
    "ScenarioError",
    "Simulator",
    "StateFileError",
    "StreamStats",
    "TradingSpec",
    "builtin_scenario",
    "fake_key",
    "fake_secret",
    "load_scenario",
    "scenario_environment",
]
