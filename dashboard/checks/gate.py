"""``krakenwatch check``: one-shot verification of every configured account, for deploy gates.

Exit codes: 0 every required check passes; 1 a check failed (or is still pending at the
deadline); 2 configuration error (including "no account configured").
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from broker import ConfigurationError
from broker.private import private_data_dir
from dashboard.checks.checklist import CheckStatus, build_checklist
from dashboard.checks.verify import verify_document
from dashboard.config import (
    NO_ACCOUNT,
    NO_ACCOUNT_HELP,
    Settings,
    add_env_file_argument,
    load_settings,
)
from dashboard.monitor.facade import Monitor
from dashboard.monitor.status import AccountState

__all__ = ["add_arguments", "render_table", "run_check", "run_from_args"]

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
MARKS = {
    CheckStatus.PASS: "PASS",
    CheckStatus.FAIL: "FAIL",
    CheckStatus.PENDING: "WAIT",
    CheckStatus.SKIPPED: "SKIP",
}


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
    add_env_file_argument(parser)


def run_from_args(args: argparse.Namespace) -> int:
    """``krakenwatch check``: build the settings once, verify, print to stdout/stderr."""
    out, err = sys.stdout, sys.stderr
    if not args.timeout > 0:
        print("krakenwatch check: --timeout must be a positive number of seconds", file=err)
        return EXIT_CONFIG
    try:
        settings = load_settings(env_file=args.env_file)
    except ConfigurationError as exc:
        print(f"krakenwatch check: {exc}", file=err)
        return EXIT_CONFIG
    return run_check(settings, args.timeout, as_json=args.json, out=out, err=err)


def run_check(
    settings: Settings, timeout_s: float, *, as_json: bool, out: TextIO, err: TextIO
) -> int:
    """Verify every account of ``settings`` once (within ``timeout_s``); print the table or the
    verify document to ``out``, problems to ``err``; return the exit code."""
    for problem in settings.all_problems:  # warnings first: a misspelt name explains a lot
        if problem.severity != "error":
            print(f"krakenwatch check: warning: {problem}", file=err)
    if not settings.accounts and not settings.config_errors:
        print(f"krakenwatch check: {NO_ACCOUNT}.\n{NO_ACCOUNT_HELP}", file=err)
        if as_json:
            print(
                json.dumps(
                    {"ok": False, "error": "no account configured", "accounts": [], "checks": []}
                ),
                file=out,
            )
        return EXIT_CONFIG
    try:  # the check's nonce records are written there
        private_data_dir(settings.data_dir)
    except OSError as exc:
        print(f"krakenwatch check: cannot make the data directory private ({exc})", file=err)
        return EXIT_CONFIG
    snapshot = Monitor(settings).verify_once(timeout_s)
    doc = verify_document(snapshot, settings, build_checklist(snapshot, settings))
    if as_json:
        print(json.dumps(doc, indent=2), file=out)
    else:
        print(render_table(doc), file=out)
    misconfigured = [a for a in snapshot.accounts if a.state == AccountState.INVALID_CONFIG]
    said = list(dict.fromkeys(str(problem) for problem in settings.config_errors))
    for text in said:
        print(f"krakenwatch check: configuration error: {text}", file=err)
    for account in misconfigured:
        if account.reason not in said:  # each mistake once
            print(
                f"krakenwatch check: configuration error: {account.label}: {account.reason}",
                file=err,
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
    # which processes take turns with this check: the store each key is coordinated through
    for store in dict.fromkeys(a["nonce_store"] for a in doc["accounts"] if a.get("nonce_store")):
        lines.append(f"  nonce store: {store}")
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
        if check["status"] == CheckStatus.FAIL and check["remedy"]:
            lines.append(f"         remedy: {check['remedy']}")
    return "\n".join(lines)
