"""``krakenwatch gateway add-client | list-clients | remove-client``: the gateway's client
credentials, so a bot never holds the account's Kraken secret.

* ``add-client NAME --account LABEL [--allow M,...]`` writes a fresh key and a random 64-byte
  secret to the client file (created with mode 0600) and prints them once, as environment lines.
  Without ``--allow`` the client may call every method but those that move funds and
  ``GetWebSocketsToken`` (its token trades over WebSocket, past the gateway).
* ``list-clients`` shows names, accounts, allowed methods and masked keys (never a secret).
* ``remove-client NAME`` revokes a credential.

A running gateway picks the change up within a few seconds (or at once on SIGHUP); calls in
flight finish. Accounts come from the same environment and .env as the gateway's; ``--config``
names the file (default: gateway.toml in the data dir). Exit code 2 for anything wrong, with one
line naming the culprit.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from broker import ConfigurationError, discover_accounts, load_environment
from broker.signing import mask_key

from .arguments import PROG, Parser, add_common_arguments, missing_config
from .clientfile import (
    ClientConfigError,
    add_client,
    check_allow,
    default_config_path,
    read_clients,
    remove_client,
)
from .methods import NAMED_ONLY

__all__ = ["COMMANDS", "run_client_command"]

COMMANDS = ("add-client", "list-clients", "remove-client")
ALL_BUT_FUNDS = "every method but those that move funds and GetWebSocketsToken"


def _parser(command: str) -> argparse.ArgumentParser:
    parser = Parser(
        prog=f"{PROG} {command}",
        description=(__doc__ or "").replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if command in ("add-client", "remove-client"):
        parser.add_argument("name", metavar="NAME", help="the client's name (its metrics label)")
    if command == "add-client":
        parser.add_argument(
            "--account", required=True, metavar="LABEL", help="the account it signs for"
        )
        parser.add_argument(
            "--allow",
            metavar="M,...",
            default=None,
            help=f"only these methods (default: {ALL_BUT_FUNDS}: {', '.join(sorted(NAMED_ONLY))})",
        )
        parser.add_argument(
            "--order-share",
            metavar="SHARE",
            type=_share,
            default=None,
            help="at most this share (0-1] of each pair's order budget (default: no own limit)",
        )
    add_common_arguments(parser)
    return parser


def _share(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r} (0.5: half)") from None


def _allow(text: str | None) -> list[str] | None:
    if text is None:
        return None
    methods = [m.strip() for m in text.split(",") if m.strip()]
    if not methods:
        raise ClientConfigError("--allow: name at least one method (e.g. Balance,OpenOrders)")
    return list(check_allow(methods, "--allow"))


def _described(allow: Sequence[str] | None) -> str:
    return ALL_BUT_FUNDS if allow is None else ", ".join(allow)


def _add(args: argparse.Namespace, path: Path, accounts: list[str]) -> int:
    if args.account not in accounts:
        configured = ", ".join(accounts) or "none"
        raise ClientConfigError(
            f"--account: unknown account {args.account!r} (configured: {configured})"
        )
    entry = add_client(path, args.name, args.account, _allow(args.allow), args.order_share)
    print(
        f"# krakenwatch gateway client {entry.name!r} for {entry.account}: "
        f"{_described(entry.allow)}\n"
        f"KRAKEN_API_KEY={entry.key}\nKRAKEN_API_SECRET={entry.secret}",
        flush=True,
    )
    print(
        f"{PROG} add-client: added {entry.name!r} to {path}; its secret is not shown again. The "
        "bot uses this key and secret, with the gateway's URL as its Kraken base URL.",
        file=sys.stderr,
    )
    return 0


def _list(path: Path, accounts: list[str]) -> int:
    entries = read_clients(path)
    if not entries:
        print(f"no client in {path}")
        return 0
    rows = [("name", "account", "allowed methods", "key")]
    for e in entries:
        account = e.account if e.account in accounts else f"{e.account} (unknown: skipped)"
        rows.append((e.name, account, _described(e.allow), mask_key(e.key)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        padded = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        print("  ".join([*padded, row[3]]))
    return 0


def _remove(args: argparse.Namespace, path: Path) -> int:
    entry = remove_client(path, args.name)
    print(
        f"removed {entry.name!r} ({entry.account}, key {mask_key(entry.key)}) from {path}; a "
        "running gateway refuses its key within seconds (at once on SIGHUP)"
    )
    return 0


def run_client_command(argv: Sequence[str]) -> int:
    """``argv`` starts with one of :data:`COMMANDS`; the exit code."""
    command, rest = argv[0], list(argv[1:])
    args = _parser(command).parse_args(rest)
    prog = f"{PROG} {command}"
    missing = None if command == "add-client" else missing_config(args.config)
    if missing is not None:
        print(f"{prog}: {missing}", file=sys.stderr)
        return 2
    try:
        env = load_environment(env_file=args.env_file)
        discovery = discover_accounts(env)
        path = args.config or default_config_path(discovery.data_dir)
        accounts = [a.label for a in discovery.accounts]
        if command == "add-client":
            if discovery.errors:
                first = discovery.errors[0]
                raise ConfigurationError(str(first), variable=first.variable)
            return _add(args, path, accounts)
        if command == "list-clients":
            return _list(path, accounts)
        return _remove(args, path)
    except ConfigurationError as exc:
        print(f"{prog}: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:  # a data dir or client file that cannot be written or read
        where = exc.filename or (args.config or "the data dir")
        print(f"{prog}: {where}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 2
