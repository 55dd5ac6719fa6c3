"""``krakenwatch gateway``: run the signing gateway.

Bots use it instead of https://api.kraken.com: they change their base URL, nothing else. It is the
only thing that signs for the configured keys (accounts from the environment and .env, as for
`up`), so deploy overlaps, several bot processes and tools in other languages can share a key
without ever producing EAPI:Invalid nonce.

Bots may also hold a gateway-issued client credential instead of the account's secret (see
`krakenwatch gateway add-client --help`): the client file (--config, default gateway.toml in the
data dir) is re-read when it changes and on SIGHUP.

The kill switch: `krakenwatch gateway halt ACCOUNT --reason TEXT` (and `resume`, `halts`; see
`krakenwatch gateway halt --help`), also POST /admin/halt and /admin/resume with
KRAKENWATCH_ADMIN_TOKEN as a bearer token.

Exit codes: 2 for a configuration error (a bad variable, no account, a port in use, a client file
that is malformed or readable by others); otherwise the gateway runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from broker import ConfigurationError

from .arguments import PROG, Parser, add_common_arguments, missing_config
from .clientcli import COMMANDS, run_client_command
from .haltcli import HALT_COMMANDS, run_halt_command

if TYPE_CHECKING:
    from .core import Gateway
    from .settings import GatewayConfig

__all__ = ["build_parser", "main"]


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _names(text: str) -> frozenset[str]:
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("name at least one client (or account-key)")
    return names


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description=(__doc__ or "").replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this host only)"
    )
    parser.add_argument("--port", type=_port, default=8788, help="port (default 8788; 0: any free)")
    parser.add_argument(
        "--max-queue-wait",
        type=_positive_seconds,
        default=5.0,
        metavar="S",
        help="a call still waiting after S seconds is refused, nothing sent: EService:Busy when "
        "it waited for its key (calls in flight, here or on another replica), EAPI:Rate limit "
        "exceeded when it waited for the modelled rate budget (default 5)",
    )
    parser.add_argument(
        "--replay-window",
        type=_positive_seconds,
        default=300.0,
        metavar="S",
        help="a state-changing call whose nonce, read as a timestamp, is more than S seconds from "
        "the gateway's clock is refused EAPI:Invalid nonce, nothing sent (default 300)",
    )
    parser.add_argument(
        "--counter-nonces",
        type=_names,
        default=frozenset(),
        metavar="NAME,...",
        help="clients whose nonce is a counter, not a timestamp (client credential names, or "
        "account-key for bots signing with the account's own key): their state-changing calls "
        "must carry rising nonces instead",
    )
    parser.add_argument(
        "--read-timeout",
        type=_positive_seconds,
        default=10.0,
        metavar="S",
        help="a request's headers and body must arrive within S seconds, else the connection is "
        "closed (default 10)",
    )
    parser.add_argument(
        "--no-rate-model",
        dest="rate_limited",
        action="store_false",
        help="for tests against a simulator without rate limits only: never hold a call for "
        "Kraken's rate limit (real Kraken keys would earn EAPI:Rate limit exceeded)",
    )
    add_common_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] and arguments[0] in COMMANDS:
        return run_client_command(arguments)
    if arguments[:1] and arguments[0] in HALT_COMMANDS:
        return run_halt_command(arguments)
    args = build_parser().parse_args(arguments)
    missing = missing_config(args.config)
    if missing is not None:
        print(f"{PROG}: {missing}", file=sys.stderr)
        return 2
    built = _build_gateway(args)
    if built is None:
        return 2
    return _serve(args, *built)


def _build_gateway(args: argparse.Namespace) -> tuple[GatewayConfig, Gateway] | None:
    """The configuration and the gateway ``args`` ask for, with its warnings said; ``None`` (and
    the reason said) when they cannot be had."""
    from .core import Gateway
    from .replaystore import ReplayStoreError
    from .settings import load_config

    try:
        config = load_config(
            env_file=args.env_file,
            max_queue_wait_s=args.max_queue_wait,
            rate_limited=args.rate_limited,
            config_path=args.config,
            replay_window_s=args.replay_window,
            counter_clients=args.counter_nonces,
            read_timeout_s=args.read_timeout,
        )
        gateway = Gateway(config.accounts, config.settings)
    except ConfigurationError as exc:
        print(f"{PROG}: {exc.message}", file=sys.stderr)
        return None
    except ReplayStoreError as exc:
        print(f"{PROG}: {exc} (KRAKENWATCH_DATA_DIR / KRAKENWATCH_NONCE_STORE)", file=sys.stderr)
        return None
    for problem in config.warnings:
        print(f"{PROG}: {problem.severity}: {problem}", file=sys.stderr)
    assert gateway.credentials is not None
    for reason in gateway.credentials.table.skipped:
        print(f"{PROG}: warning: {reason}", file=sys.stderr)
    return config, gateway


def _serve(args: argparse.Namespace, config: GatewayConfig, gateway: Gateway) -> int:
    """Listen where ``args`` say and serve until SIGINT/SIGTERM; 2 when the port cannot be had."""
    from .server import bind, exposure_warning, run

    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        print(
            f"{PROG}: cannot listen on {args.host}:{args.port} (--host/--port): {reason}",
            file=sys.stderr,
        )
        return 2
    warning = exposure_warning(args.host)
    if warning is not None:
        print(f"{PROG}: {warning}", file=sys.stderr)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    logging.getLogger("krakenwatch.gateway").setLevel(logging.INFO)  # reloads are news
    run(gateway, sock, _announcement(config, gateway))
    return 0


def _announcement(config: GatewayConfig, gateway: Gateway) -> Callable[[str], None]:
    """What to print once the gateway accepts connections at the URL it is given."""
    labels = ", ".join(a.label for a in config.accounts)
    credentials = gateway.credentials
    assert credentials is not None  # built without an authenticator: it reads the client file
    clients = len(credentials.table.clients)

    def ready(url: str) -> None:
        print(
            f"gateway listening on {url}\naccounts: {labels}\n"
            f"clients: {clients} in {credentials.path}",
            flush=True,
        )

    return ready


if __name__ == "__main__":
    sys.exit(main())
