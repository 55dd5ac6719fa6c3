"""The ``krakenwatch`` command line: one parser, each command handed to the part that runs it.

``up`` and ``demo`` to :mod:`dashboard.web`, ``check`` to :mod:`dashboard.checks.gate`,
``deploy mark`` and ``deploy wait`` to :mod:`dashboard.deploys.client`, ``gateway`` to :mod:`gateway.cli` and ``simulator`` to :mod:`simulator.cli` (those two parse their
own arguments, so no other command imports them).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import dashboard
from dashboard.web.terminal import STOPPED

#: the exit code of a command interrupted by Ctrl-C before it ran (128 + SIGINT, like a shell)
INTERRUPTED = 130

DESCRIPTION = """\
krakenwatch: an observable ops dashboard for Kraken trading-bot accounts.

Connects the configured MASTER and USER Kraken accounts with nonce-safe logic, verifies them
against the post-deploy checklist, and exports Prometheus metrics.
"""
#: every command's exit codes (shown by ``krakenwatch --help``; the README's table is kept equal)
EXIT_CODES: dict[str, dict[int, str]] = {
    "up": {
        0: "stopped by Ctrl-C or SIGTERM (it prints `stopped`)",
        2: "configuration error (a flag, the env file, the data dir, a port in use, `--gateway` "
        "that cannot run)",
        INTERRUPTED: "interrupted before it started",
    },
    "demo": {
        0: "stopped by Ctrl-C or SIGTERM",
        2: "configuration error (a flag, a port in use)",
        INTERRUPTED: "interrupted before it started",
    },
    "check": {
        0: "every required check passes",
        1: "a check failed, or is still pending at the deadline",
        2: "configuration error (no account configured included)",
    },
    "gateway": {
        0: "stopped by Ctrl-C or SIGTERM",
        2: "configuration error (a variable, no account, the data dir, the client file, "
        "`--config`, a port in use)",
    },
    "gateway add-client, list-clients, remove-client": {
        0: "done",
        2: "any mistake (the name, the account, the client file, the data dir)",
    },
    "gateway halt, resume, halts": {
        0: "done (`halt` returns once no order can leave any more)",
        1: "`resume` of something not halted",
        2: "any mistake (the account, the client, an empty reason, the variables, the store)",
    },
    "simulator": {0: "stopped by Ctrl-C or SIGTERM", 2: "a bad scenario, flag or port"},
    "deploy mark": {
        0: "the deploy is marked (it prints its number and the `deploy wait` command)",
        2: "any error (a flag, the env file, the dashboard unreachable, a field the dashboard "
        "refused, authentication: the variable to set is named)",
    },
    "deploy wait": {
        0: "the deploy is verified",
        1: "the deploy failed, or is still pending at `--timeout` (the failing checks are "
        "printed with their remedies)",
        2: "no deploy marked, a flag, authentication, the dashboard unreachable (on the first "
        "request, or still at `--timeout` after losing it)",
    },
}


def exit_codes_text() -> str:
    """The exit codes of every command, for ``--help``."""
    lines = ["exit codes:"]
    for command, codes in EXIT_CODES.items():
        said = "; ".join(f"{code} {meaning}" for code, meaning in codes.items())
        lines.append(f"  {command}: {said.replace('`', '')}")
    return "\n".join(lines)


class _VersionAction(argparse.Action):
    """``--version``: looks the version up only when asked (see ``dashboard.__getattr__``)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        parser.exit(message=f"krakenwatch {dashboard.__version__}\n")


def build_parser() -> argparse.ArgumentParser:
    from dashboard.checks import gate
    from dashboard.web import demo, up

    parser = argparse.ArgumentParser(
        prog="krakenwatch",
        description=DESCRIPTION,
        epilog=exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    # listed here; `main` hands their arguments to the simulator's and the gateway's own
    # parsers, so that no other command imports them
    commands.add_parser(
        "simulator",
        help="run the local Kraken API simulator (for tests, the demo and bots)",
        add_help=False,
    )
    commands.add_parser(
        "gateway",
        help="run the signing gateway: a Kraken-compatible endpoint bots use instead of Kraken",
        add_help=False,
    )
    chk = commands.add_parser(
        "check",
        help="verify every configured account once; exit 0 ok, 1 a check failed, 2 configuration error",
        description=gate.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gate.add_arguments(chk)
    chk.set_defaults(run=gate.run_from_args)
    up_cmd = commands.add_parser(
        "up",
        help="run the dashboard, /metrics, /api/verify and the monitor in one process",
        description="Serve the Streamlit dashboard, GET /metrics and GET /api/verify, and run the "
        "monitor, in one process. Binds 127.0.0.1 unless --address says otherwise.",
    )
    up.add_up_arguments(up_cmd)
    up_cmd.set_defaults(run=up.run_up)
    demo_cmd = commands.add_parser(
        "demo",
        help="the dashboard against the built-in Kraken simulator (no credentials needed)",
        description="Start the Kraken simulator with demo accounts (a healthy MASTER, a healthy user, "
        "a user whose key lacks a permission) and run `up` against it.",
    )
    demo.add_demo_arguments(demo_cmd)
    demo_cmd.set_defaults(run=demo.run_demo)
    _add_deploy_command(commands)
    return parser


def _add_deploy_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``krakenwatch deploy mark`` and ``krakenwatch deploy wait``."""
    from dashboard.deploys import client as deploys

    deploy_cmd = commands.add_parser(
        "deploy",
        help="mark a deploy of the bot on a running dashboard, and wait for its verdict",
        description="Mark a deploy of the bot on a running dashboard (`krakenwatch up`), then "
        "wait for its verdict: the deploy gate a pipeline runs after the bot's deploy. The URL is "
        f"--url, else ${deploys.URL_VARIABLE}, else {deploys.DEFAULT_URL}; the credential "
        f"${deploys.TOKEN_VARIABLE}, else ${deploys.PASSWORD_VARIABLE}.",
    )

    def deploy_usage(_: argparse.Namespace) -> int:  # `krakenwatch deploy` alone
        deploy_cmd.print_help()
        return 2

    deploy_cmd.set_defaults(run=deploy_usage)
    steps = deploy_cmd.add_subparsers(dest="step", metavar="STEP")
    deploys.add_mark_arguments(
        steps.add_parser(
            "mark",
            help="mark a deploy now: the checklist counts from it; exit 0 marked, 2 any error",
            description="Mark a deploy on the dashboard (POST /api/deploys): every check of "
            "its accounts counts from now, and the deploy is verified or failed on them.",
        )
    )
    deploys.add_wait_arguments(
        steps.add_parser(
            "wait",
            help="wait for the latest deploy's verdict; exit 0 verified, 1 failed or timed out, "
            "2 no deploy or an error",
            description="Wait until the latest deploy (or --id N) is verified or failed, "
            "printing what it waits for and, if it fails, each failing check with its remedy.",
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["simulator"]:
        from simulator.cli import run_simulator_cli

        return run_simulator_cli(arguments[1:])
    if arguments[:1] == ["gateway"]:
        from gateway.cli import main as run_gateway_cli

        return run_gateway_cli(arguments[1:])
    try:
        parser = build_parser()
        args = parser.parse_args(arguments)
        if getattr(args, "run", None) is None:
            parser.print_help()
            return 2
        return int(args.run(args))
    except KeyboardInterrupt:  # before a command took over (``up``/``demo`` stop with 0 then)
        print(STOPPED, flush=True)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
