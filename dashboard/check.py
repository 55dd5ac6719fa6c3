"""``krakenwatch check``: one-shot verification of every configured account, for deploy gates.

Exit codes: 0 every required check passes; 1 a check failed (or is still pending at the
deadline); 2 configuration error (including "no account configured").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from broker import ConfigurationError

from .checklist import build_checklist, verify_document
from .config import load_settings
from .monitor import Monitor

__all__ = ["add_arguments", "render_table", "run_from_args"]

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
NO_ACCOUNTS = (
    "no Kraken account is configured.\n"
    "Set KRAKEN_MASTER_API_KEY and KRAKEN_MASTER_API_SECRET, and KRAKEN_USER_<NAME>_API_KEY /\n"
    "KRAKEN_USER_<NAME>_API_SECRET for each user, in the environment or in ./.env (or --env-file)."
)
MARKS = {"pass": "PASS", "fail": "FAIL", "pending": "WAIT", "skipped": "SKIP"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print the verify document (same as /api/verify)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="finish within S seconds even if Kraken hangs (default 30)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=None,
        metavar="F",
        help="read variables from F instead of ./.env",
    )


def run_from_args(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if not args.timeout > 0:
        print("krakenwatch check: --timeout must be a positive number of seconds", file=err)
        return EXIT_CONFIG
    try:
        settings = load_settings(env_file=args.env_file)
    except ConfigurationError as exc:
        print(f"krakenwatch check: {exc}", file=err)
        return EXIT_CONFIG
    if not settings.accounts and not settings.config_errors:
        print(f"krakenwatch check: {NO_ACCOUNTS}", file=err)
        if args.json:
            print(
                json.dumps(
                    {"ok": False, "error": "no account configured", "accounts": [], "checks": []}
                ),
                file=out,
            )
        return EXIT_CONFIG
    monitor = Monitor(settings)
    snapshot = monitor.verify_once(args.timeout)
    checks = build_checklist(snapshot, settings)
    doc = verify_document(snapshot, settings, checks)
    if args.json:
        print(json.dumps(doc, indent=2), file=out)
    else:
        print(render_table(doc), file=out)
    misconfigured = [a for a in snapshot.accounts if a.state == "invalid_config"]
    for problem in settings.config_errors:
        print(f"krakenwatch check: configuration error: {problem}", file=err)
    for account in misconfigured:
        print(
            f"krakenwatch check: configuration error: {account.label}: {account.reason}", file=err
        )
    if settings.config_errors or misconfigured:
        return EXIT_CONFIG
    return EXIT_OK if doc["ok"] else EXIT_FAILED


def render_table(doc: dict[str, Any]) -> str:
    verdict = "DEPLOY VERIFIED" if doc["ok"] else "NOT VERIFIED"
    lines = [f"krakenwatch check at {doc['generated_at']}: {verdict}", ""]
    for account in doc["accounts"]:
        balances = account["balances"]
        shown = (
            ", ".join(f"{k} {v}" for k, v in sorted(balances.items()))
            if balances is not None
            else f"unknown ({account['balance_error'] or 'not read'})"
        )
        lines.append(
            f"  {account['account']:<24} {account['state']:<14} key {account['key']:<12} {shown}"
        )
    if doc["clock_skew_seconds"] is not None:
        lines.append(
            f"  clock skew (local - Kraken): {doc['clock_skew_seconds']:+.3f} s ± {doc['clock_skew_uncertainty_seconds']:.3f} s"
        )
    lines.append("")
    width = max((len(c["name"]) for c in doc["checks"]), default=10)
    for check in doc["checks"]:
        scope = check["account"] or "-"
        optional = "" if check["required"] else " (optional)"
        lines.append(
            f"  [{MARKS[check['status']]}] {check['name']:<{width}} {scope:<20} {check['detail']}{optional}"
        )
        if check["status"] == "fail" and check["remedy"]:
            lines.append(f"         remedy: {check['remedy']}")
    return "\n".join(lines)
