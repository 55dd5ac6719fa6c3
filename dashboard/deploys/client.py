"""``krakenwatch deploy mark`` (``POST /api/deploys``) and ``krakenwatch deploy wait`` (the latest
deploy, or ``--id``, read every ``--interval`` until its verdict; a dashboard restarting meanwhile
is waited for): the deploy routes of :mod:`dashboard.web.deploy_routes`, for a pipeline's gate.

The URL is ``--url``, else ``$KRAKENWATCH_URL``, else ``http://127.0.0.1:8501``; the credential
``KRAKENWATCH_ADMIN_TOKEN`` (bearer), else ``KRAKENWATCH_PASSWORD`` (Basic), from the environment
over the env file like every command, and never printed. HTTP: the standard library's, 10 s a
request.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import math
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from broker import ConfigurationError, load_environment
from dashboard.checks.gate import MARKS
from dashboard.config import ENV_FILE_VARIABLE, add_env_file_argument

__all__ = [
    "DEFAULT_URL",
    "DeployClient",
    "DeployClientError",
    "add_mark_arguments",
    "add_wait_arguments",
    "run_mark",
    "run_wait",
]

DEFAULT_URL = "http://127.0.0.1:8501"
URL_VARIABLE = "KRAKENWATCH_URL"
TOKEN_VARIABLE = "KRAKENWATCH_ADMIN_TOKEN"  # noqa: S105 (the variable's name)
PASSWORD_VARIABLE = "KRAKENWATCH_PASSWORD"  # noqa: S105 (the variable's name)
#: seconds each request may take
REQUEST_TIMEOUT_S = 10.0
EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
STATES = ("pending", "verified", "failed")
#: the deploy document's fields the commands read
DOCUMENT = {"id", "version", "accounts", "marked_at", "state", "reason", "failing"}
_MARKS = {str(status): mark for status, mark in MARKS.items()}


class DeployClientError(Exception):
    """No usable answer: the message says why and what to do (never a credential)."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        #: a later attempt may succeed (the dashboard restarting: refused, reset, 5xx)
        self.transient = transient


class DeployClient:
    """The deploy routes of the dashboard at ``url``, with ``token`` as a bearer token, else
    ``password`` as HTTP Basic (any user name)."""

    def __init__(self, url: str, *, token: str | None = None, password: str | None = None):
        self.url = url.rstrip("/")
        self._headers = {"Accept": "application/json", "User-Agent": "krakenwatch-deploy"}
        self._credential = TOKEN_VARIABLE if token else PASSWORD_VARIABLE if password else None
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        elif password:
            basic = base64.b64encode(f"krakenwatch:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {basic}"

    def mark(self, version: str, accounts: list[str] | None, note: str) -> dict[str, Any]:
        """Mark a deploy of ``accounts`` (``None``: every account); its document."""
        body: dict[str, Any] = {"version": version, "note": note}
        if accounts:
            body["accounts"] = accounts
        return self._deploy("POST", "/api/deploys", body, expect=201)

    def deploy(self, deploy_id: int | None = None, timeout: float | None = None) -> dict[str, Any]:
        """Deploy ``deploy_id`` (``None``: the latest), judged now (``timeout``: at most 10 s)."""
        path = "/api/deploys/latest" if deploy_id is None else f"/api/deploys/{deploy_id}"
        return self._deploy("GET", path, None, expect=200, timeout=timeout)

    def _deploy(
        self, method: str, path: str, body: Any, *, expect: int, timeout: float | None = None
    ) -> dict[str, Any]:
        status, answer = self._send(method, path, body, min(timeout or math.inf, REQUEST_TIMEOUT_S))
        if status != expect:
            raise self._refusal(status, answer)
        if (
            not isinstance(answer, dict)
            or answer.get("state") not in STATES
            or DOCUMENT - set(answer)
        ):
            raise DeployClientError(
                f"{self.url}{path} answered HTTP {status} without a deploy document; is "
                "--url a krakenwatch dashboard (`krakenwatch up`)?"
            )
        return answer

    def _send(self, method: str, path: str, body: Any, timeout: float) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {**self._headers, **({"Content-Type": "application/json"} if data else {})}
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked: http or https)
            self.url + path, data=data, headers=headers, method=method
        )
        try:
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                    status, raw = response.status, response.read()
            except urllib.error.HTTPError as exc:
                status, raw = exc.code, exc.read()
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, DNS
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            said = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
            raise DeployClientError(
                f"cannot reach the dashboard at {self.url} ({said})", transient=True
            ) from None
        try:
            return status, json.loads(raw)
        except ValueError:  # not JSON (a 401's text, another server's page): kept as text
            return status, raw.decode("utf-8", "replace").strip()

    def _refusal(self, status: int, answer: Any) -> DeployClientError:
        said = answer.get("error") if isinstance(answer, dict) else None
        text = str(said) if said is not None else str(answer)[:300] or "no explanation"
        if status == 400:
            return DeployClientError(f"the dashboard refused the request: {text}")
        if status == 401:
            if self._credential is None:
                return DeployClientError(
                    f"the dashboard needs authentication ({text}): set {TOKEN_VARIABLE} (or "
                    f"{PASSWORD_VARIABLE}) to the dashboard's value"
                )
            return DeployClientError(
                f"the dashboard refused {self._credential} ({text}): set it to the dashboard's value"
            )
        if status == 403:
            return DeployClientError(
                f"the dashboard refused: {text} (set {TOKEN_VARIABLE} on the dashboard and for "
                "this command)"
            )
        if status == 404 and said is not None:
            return DeployClientError(str(said))
        return DeployClientError(
            f"the dashboard at {self.url} answered HTTP {status}: {text}", transient=status >= 500
        )


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=None,
        metavar="URL",
        help=f"the dashboard (default ${URL_VARIABLE}, else {DEFAULT_URL})",
    )
    parser.add_argument("--json", action="store_true", help="print the deploy document")
    add_env_file_argument(parser)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _deploy_number(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a deploy number (1 or more), not {text!r}")
    return int(text)


def add_mark_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", default="", metavar="V", help="the bot's version")
    parser.add_argument(
        "--account",
        action="append",
        metavar="LABEL",
        help="an account the deploy is judged on (repeat; default: every account)",
    )
    parser.add_argument("--note", default="", metavar="TEXT", help="a note kept with the deploy")
    _add_common(parser)
    parser.set_defaults(run=run_mark)


def add_wait_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout", type=_seconds, default=900.0, metavar="S", help="give up after S s (900)"
    )
    parser.add_argument(
        "--id", type=_deploy_number, metavar="N", help="deploy N (default: the latest)"
    )
    parser.add_argument(
        "--interval", type=_seconds, default=0.25, metavar="S", help="ask every S s (default 0.25)"
    )
    _add_common(parser)
    parser.set_defaults(run=run_wait)


def client_from(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> DeployClient:
    """The client the arguments and the environment (over the env file) describe; raises
    :class:`DeployClientError` naming the flag, the variable or the env file."""
    base = dict(os.environ if environ is None else environ)
    chosen = args.env_file or base.get(ENV_FILE_VARIABLE, "").strip() or None
    try:
        env = load_environment(base, chosen)
    except ConfigurationError as exc:
        raise DeployClientError(str(exc)) from None
    url = args.url or env.get(URL_VARIABLE, "").strip() or DEFAULT_URL
    parts = urllib.parse.urlsplit(url)
    named = "--url" if args.url else URL_VARIABLE if env.get(URL_VARIABLE, "").strip() else "URL"
    if parts.username is not None or parts.password is not None:
        raise DeployClientError(f"{named} carries a credential; set {PASSWORD_VARIABLE} instead")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeployClientError(f"{named} must be an http:// or https:// URL, not {url!r}")
    token = env.get(TOKEN_VARIABLE) or None
    return DeployClient(url, token=token, password=env.get(PASSWORD_VARIABLE) or None)


def title(doc: Mapping[str, Any]) -> str:
    """``deploy #3 v1.4.2`` (``deploy #3`` without a version)."""
    return f"deploy #{doc['id']}" + (f" {doc['version']}" if doc.get("version") else "")


def describe(doc: Mapping[str, Any]) -> str:
    """``deploy #3 v1.4.2 (MASTER, USER:daivon)``."""
    return f"{title(doc)} ({', '.join(doc['accounts'])})"


def render_checks(checks: list[dict[str, Any]]) -> list[str]:
    """The failing and pending checks, as ``krakenwatch check`` shows them."""
    lines = []
    for check in checks:
        status = str(check.get("status"))
        scope = f" {check['account']}" if check.get("account") else ""
        lines.append(
            f"  [{_MARKS.get(status, status)}] {check.get('name')}{scope}: {check.get('detail')}"
        )
        if check.get("remedy"):
            lines.append(f"         remedy: {check['remedy']}")
    return lines


def run_mark(args: argparse.Namespace) -> int:
    """``krakenwatch deploy mark``."""
    try:
        client = client_from(args)
        doc = client.mark(args.version, args.account, args.note)
    except DeployClientError as exc:
        print(f"krakenwatch deploy mark: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(
            f"marked {describe(doc)} at {doc['marked_at']}; wait for its verdict: "
            f"krakenwatch deploy wait --url {client.url} --id {doc['id']}",
            flush=True,
        )
    return EXIT_OK


def run_wait(args: argparse.Namespace) -> int:
    """``krakenwatch deploy wait``."""
    try:
        client = client_from(args)
    except DeployClientError as exc:
        print(f"krakenwatch deploy wait: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return _Waiter(client, args.timeout, args.interval, as_json=args.json).run(args.id)


class _Waiter:
    """One ``deploy wait``: the deploy asked for until its verdict, each new reason said once."""

    def __init__(self, client: DeployClient, timeout_s: float, interval_s: float, *, as_json: bool):
        self.client, self.timeout_s, self.interval_s = client, timeout_s, interval_s
        self.as_json = as_json
        self.deadline = time.monotonic() + timeout_s

    def say(self, text: str, *, error: bool = False) -> None:
        """Progress and verdict on stdout (stderr with ``--json``: stdout is the document)."""
        print(text, file=sys.stderr if error or self.as_json else sys.stdout, flush=True)

    def run(self, deploy_id: int | None) -> int:
        try:  # a dashboard that is not there on the first request is a mistake, said at once
            doc = self.client.deploy(deploy_id)
            if doc["state"] == "pending":
                self.say(f"waiting up to {self.timeout_s:g} s for the verdict on {describe(doc)}")
            doc, lost = self._poll(doc)
        except DeployClientError as exc:  # or a lasting refusal: credentials, no such deploy
            self.say(f"krakenwatch deploy wait: {exc}", error=True)
            return EXIT_ERROR
        if lost is not None:
            self.say(f"krakenwatch deploy wait: {lost}, still at --timeout", error=True)
            return EXIT_ERROR
        if self.as_json:
            print(json.dumps(doc, indent=2), flush=True)
        return self._verdict(doc)

    def _poll(self, doc: dict[str, Any]) -> tuple[dict[str, Any], DeployClientError | None]:
        """The deploy (by its id) until its verdict or the deadline: the last document, and the
        outage that lasted until the deadline, if any."""
        reason, lost = None, None
        while doc["state"] == "pending" and (left := self.deadline - time.monotonic()) > 0:
            if doc["reason"] != reason and lost is None:
                reason = doc["reason"]
                self.say(f"pending: {reason}")
            time.sleep(min(self.interval_s, left))
            left = self.deadline - time.monotonic()
            try:
                doc = self.client.deploy(doc["id"], timeout=max(1.0, left))
            except DeployClientError as exc:
                if not exc.transient:
                    raise
                if lost is None:
                    self.say(f"{exc}; retrying until the timeout ({max(0.0, left):.0f} s left)")
                lost = exc
                continue
            if lost is not None:
                self.say(f"the dashboard at {self.client.url} answers again")
                lost = None
        return doc, lost

    def _verdict(self, doc: dict[str, Any]) -> int:
        seconds = doc.get("seconds_to_verdict") or 0.0
        if doc["state"] == "verified":
            self.say(f"{title(doc)} verified in {seconds:.1f} s")
            return EXIT_OK
        if doc["state"] == "failed":
            self.say(f"{title(doc)} failed after {seconds:.1f} s: {doc['reason']}")
        else:
            self.say(
                f"{title(doc)} still pending: timed out here after --timeout {self.timeout_s:g} s "
                f"(the dashboard gives it {doc.get('timeout_seconds', 0):g} s): {doc['reason']}"
            )
        for line in render_checks(doc["failing"]):
            self.say(line)
        return EXIT_FAILED
