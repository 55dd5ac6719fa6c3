"""``krakenwatch gateway halt | resume | halts``: the kill switch from a shell.

``halt ACCOUNT [--client NAME] --reason TEXT`` refuses, on every gateway that shares this data
dir's (or Redis') store, the calls that open or change orders (AddOrder, AddOrderBatch, EditOrder,
AmendOrder) with ``EGeneral:Permission denied:halted``; cancels and queries pass. It returns once
no such call can leave any more (it waits for a call of the key in flight to be answered).
``resume`` lifts it; ``halts`` lists the halts in force. Each halt and resume is an event on the
dashboard's timeline with its reason and who asked.

Exit codes: 0 done, 1 nothing to resume, 2 a configuration error or a bad argument.
"""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
import time
from collections.abc import Sequence

from broker import ConfigurationError, KrakenClient, KrakenError
from broker.stores import nonce_store_spec

from .arguments import PROG, Parser, add_common_arguments, missing_config
from .clientfile import read_clients
from .guardstore import GuardStoreError, open_guard_store
from .halts import HaltBoard, check_halt
from .settings import GatewayConfig, load_config

__all__ = ["HALT_COMMANDS", "run_halt_command"]

HALT_COMMANDS = ("halt", "resume", "halts")
#: how long ``halt`` waits for a call of the key in flight, beyond the request timeout
_IDLE_MARGIN_S = 5.0


def _parser(command: str) -> argparse.ArgumentParser:
    parser = Parser(
        prog=f"{PROG} {command}",
        description=(__doc__ or "").replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if command != "halts":
        parser.add_argument("account", metavar="ACCOUNT", help="the account label (MASTER, ...)")
        parser.add_argument(
            "--client",
            metavar="NAME",
            default=None,
            help="only this client credential's calls (or account-key); default: every caller",
        )
    if command == "halt":
        parser.add_argument("--reason", required=True, metavar="TEXT", help="why (shown to all)")
    add_common_arguments(parser)
    return parser


def origin() -> str:
    """Who asks, as the timeline shows it: ``cli user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli {user}@{socket.gethostname()}"


def _check_client(config: GatewayConfig, account: str, client: str | None) -> None:
    if client is None:
        return
    path = config.settings.config_path
    named = [e.name for e in read_clients(path) if e.account == account] if path else []
    if client not in [*named, "account-key"]:
        raise ConfigurationError(
            f"--client: no client {client!r} on {account} (its clients: "
            f"{', '.join(sorted([*named, 'account-key']))})"
        )


def _halt(config: GatewayConfig, board: HaltBoard, args: argparse.Namespace) -> int:
    record = board.halt(args.account, args.client, args.reason, origin())
    account = next(a for a in config.accounts if a.label == args.account)
    settings = config.settings
    client = KrakenClient(
        account.key,
        account.secret,
        account=account.label,
        store_dir=settings.store_dir,
        nonce_store=settings.nonce_store,
        base_url=settings.api_url,
    )
    started = time.monotonic()
    try:
        client.wait_idle(settings.request_timeout_s + _IDLE_MARGIN_S)
    finally:
        client.close()
    print(
        f"halted {record.scope}: calls that open or change orders are refused on every gateway "
        f"of this store (in effect; waited {time.monotonic() - started:.2f} s for a call in "
        f"flight). Lift it with: {PROG} resume {args.account}"
        + (f" --client {args.client}" if args.client else "")
    )
    return 0


def _resume(board: HaltBoard, args: argparse.Namespace) -> int:
    scope = args.account if args.client is None else f"{args.account}/{args.client}"
    if not board.resume(args.account, args.client, origin()):
        print(f"{PROG} resume: {scope} is not halted", file=sys.stderr)
        return 1
    print(f"resumed {scope}: orders pass again")
    return 0


def _list(board: HaltBoard) -> int:
    halts = board.halts
    if not halts:
        print("no halt in force")
    for h in halts:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h.at))
        print(f"{h.scope}  since {since}  by {h.origin}: {h.reason}")
    return 0


def run_halt_command(argv: Sequence[str]) -> int:
    """``argv`` starts with one of :data:`HALT_COMMANDS`; the exit code."""
    command, rest = argv[0], list(argv[1:])
    args = _parser(command).parse_args(rest)
    prog = f"{PROG} {command}"
    missing = missing_config(args.config)
    if missing is not None:
        print(f"{prog}: {missing}", file=sys.stderr)
        return 2
    try:
        config = load_config(env_file=args.env_file, config_path=args.config)
        settings = config.settings
        store = open_guard_store(settings.nonce_store or nonce_store_spec(), settings.store_dir)
        try:
            keys = {a.label: a.key_id for a in config.accounts}
            board = HaltBoard(store, keys, lambda _event: None)
            if command == "halts":
                return _list(board)
            check_halt(args.account, args.client, None, board.accounts)
            _check_client(config, args.account, args.client)
            if command == "halt":
                return _halt(config, board, args)
            return _resume(board, args)
        finally:
            store.close()
    except ValueError as exc:  # an unknown account, an empty reason
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except (ConfigurationError, KrakenError) as exc:
        print(f"{prog}: {exc.message}", file=sys.stderr)
        return 2
    except GuardStoreError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
