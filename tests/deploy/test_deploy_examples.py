"""The deploy gate examples (deploy/examples/) and the KrakenDeployNotVerified rule.

Each example parses, its `krakenwatch deploy` commands parse with the real CLI, the Argo Rollouts
objects and the GitHub workflow pass the schemas their makers publish (npm packages, installed by
`npm ci` from deploy/examples/validate/ into a cache in the venv), and every gate, run against a
real krakenwatch on the simulator (loopback, a free port), holds while the deploy is pending or
failed and opens once it is verified: Flagger's webhook commands as its load tester runs them
(`bash -c`), Argo Rollouts' web metrics as its web provider measures them, the CI script itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboard.cli import build_parser
from dashboard.config import load_settings
from dashboard.web.service import Service
from testkit.env import clean_environ
from testkit.headless import headless_server
from testkit.net import eventually, free_port
from testkit.sim import master_environment, one_key_simulator

from .deploykit import DEPLOY, VENV_BIN
from .promkit import alert_rules, prometheus_server

EXAMPLES = DEPLOY / "examples"
GATE = EXAMPLES / "ci-deploy-gate.sh"
WORKFLOW = EXAMPLES / "github-actions.yml"
ARGO = EXAMPLES / "argo-rollouts-analysistemplate.yaml"
FLAGGER = EXAMPLES / "flagger-canary.yaml"
VALIDATE = EXAMPLES / "validate"
#: where the Kubernetes examples find krakenwatch (rewritten to the test's server)
CLUSTER_URL = "http://krakenwatch.trading.svc:8501"
#: the deploy metrics of `krakenwatch up` (the contract)
DEPLOY_METRICS = {
    "krakenwatch_deploy_info",
    "krakenwatch_deploy_marked_timestamp_seconds",
    "krakenwatch_deploy_state",
    "krakenwatch_deploy_seconds_to_verdict",
    "krakenwatch_deploy_timeout_seconds",
}
DEFAULT_GRACE_S, DEFAULT_TIMEOUT_S = 120, 600
#: Flagger's webhook types (docs.flagger.app, "Webhooks")
FLAGGER_HOOKS = {
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
    "event",
}
TOKEN = "test-admin-token-4f1c9a"
PASSWORD = "test-dashboard-password-8e2b"
URL = "http://kw.example:8501"
VERSION = "v1.4.2"


# ------------------------------------------------------------------------------------ helpers
def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def argo(kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [
        d for d in docs(ARGO) if d["kind"] == kind and name in (None, d["metadata"]["name"])
    ]
    return found


def flagger_hook(kind: str) -> dict[str, Any]:
    (hook,) = [h for h in docs(FLAGGER)[0]["spec"]["analysis"]["webhooks"] if h["type"] == kind]
    return hook


def seconds(duration: str | int) -> int:
    match = re.fullmatch(r"(\d+)([sm]?)", str(duration))
    assert match, f"cannot read the duration {duration!r}"
    return int(match[1]) * (60 if match[2] == "m" else 1)


def parse_cli(argv: list[str]) -> Any:
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:
        raise AssertionError(f"`krakenwatch {shlex.join(argv)}` does not parse ({exc})") from None


def http(
    method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (loopback)
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# ------------------------------------------------------------------ parsing and the commands
def test_every_example_parses_and_the_script_is_posix_sh() -> None:
    assert [d["kind"] for d in docs(ARGO)] == ["AnalysisTemplate", "AnalysisTemplate", "Rollout"]
    assert [(d["apiVersion"], d["kind"]) for d in docs(FLAGGER)] == [
        ("flagger.app/v1beta1", "Canary")
    ]
    assert "jobs" in docs(WORKFLOW)[0]
    assert GATE.read_text().startswith("#!/bin/sh\n") and os.access(GATE, os.X_OK)
    for shell in ("sh", "dash", "bash"):
        if shutil.which(shell):
            checked = subprocess.run([shell, "-n", str(GATE)], capture_output=True, text=True)
            assert checked.returncode == 0, f"{shell}: {checked.stderr}"


RECORDER = """
import json, os, sys
with open(os.environ["RECORD"], "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:3] == ["deploy", "mark"] and os.environ.get("EXIT_DEPLOY_MARK", "0") == "0":
    print("marked deploy #7 v (MASTER) at 2026-12-06T17:30:57Z; wait for its verdict: ...")
sys.exit(int(os.environ.get("EXIT_" + "_".join(sys.argv[1:3]).upper(), "0")))
"""


@pytest.fixture
def recorder(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A `krakenwatch` first on PATH that records its arguments (one JSON line each) and exits
    with $EXIT_DEPLOY_MARK / $EXIT_DEPLOY_WAIT: the scripts' control flow, not the CLI's."""
    bin_dir, record = tmp_path / "bin", tmp_path / "calls.jsonl"
    bin_dir.mkdir()
    fake = bin_dir / "krakenwatch"
    fake.write_text(f"#!{sys.executable}\n{RECORDER}")
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "RECORD": str(record)}
    return env, record


def calls(record: Path) -> list[list[str]]:
    lines = record.read_text().splitlines() if record.exists() else []
    record.unlink(missing_ok=True)
    return [json.loads(line) for line in lines]


def check_commands(argvs: list[list[str]]) -> None:
    """The recorded calls are `deploy mark` then `deploy wait`, and both parse with the CLI."""
    assert [argv[:2] for argv in argvs] == [["deploy", "mark"], ["deploy", "wait"]], argvs
    mark, wait = (parse_cli(argv) for argv in argvs)
    assert (mark.url, mark.version) == (URL, VERSION) and mark.note
    assert wait.url == URL and wait.timeout >= DEFAULT_TIMEOUT_S, "wait shorter than a deploy"


def test_the_gate_script_marks_then_waits_and_exits_with_the_verdict(
    recorder: tuple[dict[str, str], Path],
) -> None:
    env, record = recorder
    base = clean_environ({**env, "KRAKENWATCH_URL": URL, "VERSION": VERSION})
    for mark, wait, status, made in (("0", "0", 0, 2), ("0", "1", 1, 2), ("2", "0", 2, 1)):
        exits = {"EXIT_DEPLOY_MARK": mark, "EXIT_DEPLOY_WAIT": wait}
        done = subprocess.run(["sh", str(GATE)], env={**base, **exits}, capture_output=True)
        assert done.returncode == status, (mark, wait, done.stderr)
        argvs = calls(record)
        assert len(argvs) == made, argvs
        if made == 2:
            check_commands(argvs)
    del base["VERSION"]
    done = subprocess.run(["sh", str(GATE)], env=base, capture_output=True, text=True)
    assert done.returncode != 0 and "VERSION" in done.stderr and calls(record) == []


def test_the_github_workflow_runs_the_same_commands_after_the_deploy(
    recorder: tuple[dict[str, str], Path],
) -> None:
    env, record = recorder
    values = {
        "vars.KRAKENWATCH_URL": URL,
        "github.ref_name": VERSION,
        "secrets.KRAKENWATCH_ADMIN_TOKEN": TOKEN,
    }

    def expand(text: str) -> str:
        return re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", lambda m: values[m[1]], text)

    (job,) = docs(WORKFLOW)[0]["jobs"].values()
    names = [step.get("name", step.get("uses")) for step in job["steps"]]
    gated = [s for s in job["steps"] if "krakenwatch deploy" in s.get("run", "")]
    assert names.index("Deploy the bot") < job["steps"].index(gated[0])
    job_env = {k: expand(str(v)) for k, v in job["env"].items()}
    for step in gated:  # GitHub runs `run:` with `bash -e` on Linux runners
        step_env = {k: expand(str(v)) for k, v in step.get("env", {}).items()}
        full = clean_environ({**env, **job_env, **step_env, "GITHUB_RUN_ID": "42"})
        done = subprocess.run(["bash", "-e", "-c", step["run"]], env=full, capture_output=True)
        assert done.returncode == 0, done.stderr
        assert step_env.get("KRAKENWATCH_ADMIN_TOKEN") == TOKEN, f"{step['name']}: no token"
    check_commands(calls(record))
    wait = gated[-1]
    timeout = shlex.split(wait["run"])[shlex.split(wait["run"]).index("--timeout") + 1]
    assert wait["timeout-minutes"] * 60 > float(timeout), "the step is killed before wait gives up"


def test_every_krakenwatch_deploy_command_quoted_in_the_examples_and_the_runbook_parses() -> None:
    placeholders = {"URL": URL, "V": VERSION, "S": "60", "N": "1", "LABEL": "MASTER", "TEXT": "x"}
    pages = [*EXAMPLES.glob("*.*"), DEPLOY.parent / "docs" / "alerts.md"]
    quoted = {
        command
        for page in pages
        for command in re.findall(r"`krakenwatch (deploy (?:mark|wait)[^`]*)`", page.read_text())
    }
    assert len(quoted) >= 4, quoted
    for command in quoted:
        parse_cli([placeholders.get(word, word) for word in shlex.split(command)])


def test_the_argo_rollout_marks_then_gates_and_gives_the_deploy_its_time() -> None:
    rollout = argo("Rollout")
    canary = rollout["spec"]["strategy"]["canary"]
    assert canary["maxSurge"] in (0, "0"), "old and new bot would sign with one key together"
    used = [
        s["analysis"]["templates"][0]["templateName"] for s in canary["steps"] if "analysis" in s
    ]
    assert used == ["krakenwatch-mark-deploy", "krakenwatch-deploy-verified"]
    for name in used:  # every argument comes from somewhere
        given = {a["name"] for a in step_args(name)}
        for arg in argo("AnalysisTemplate", name)["spec"]["args"]:
            assert arg["name"] in given or {"value", "valueFrom"} & set(arg), (name, arg)
    mark = argo("AnalysisTemplate", "krakenwatch-mark-deploy")["spec"]["metrics"][0]
    web = mark["provider"]["web"]
    assert (web["method"], web["url"].rsplit("/", 2)[-2:]) == ("POST", ["api", "deploys"])
    assert set(web["jsonBody"]) <= {"version", "accounts", "note"} and web["jsonBody"]["version"]
    (verify,) = argo("AnalysisTemplate", "krakenwatch-deploy-verified")["spec"]["metrics"]
    web = verify["provider"]["web"]
    assert web["url"].endswith("/api/verify") and web["jsonPath"] == "{$.ok}"
    assert verify["successCondition"] == "result == true" and verify["count"] == 1
    # a 503 is a measurement error, retried every interval up to consecutiveErrorLimit
    budget = seconds(verify["initialDelay"]) + (verify["consecutiveErrorLimit"] + 1) * seconds(
        verify["interval"]
    )
    assert budget >= DEFAULT_TIMEOUT_S + 60, f"{budget} s: less than krakenwatch's timeout"


def test_the_flagger_canary_uses_documented_blocking_webhooks() -> None:
    (canary,) = docs(FLAGGER)
    analysis = canary["spec"]["analysis"]
    assert canary["spec"]["targetRef"]["kind"] == "Deployment"
    assert isinstance(canary["spec"]["service"]["port"], int)
    for hook in analysis["webhooks"]:
        assert hook["type"] in FLAGGER_HOOKS, hook["name"]
        assert hook["url"].startswith("http://flagger-loadtester."), hook["name"]
        # `cmd` tasks run in the background and answer 202 whatever happens: no gate
        assert hook["metadata"]["type"] == "bash", f"{hook['name']}: not a blocking task"
        checked = subprocess.run(["bash", "-n", "-c", hook["metadata"]["cmd"]])
        assert checked.returncode == 0, hook["name"]
    mark = shlex.split(flagger_hook("pre-rollout")["metadata"]["cmd"])
    assert mark[:2] == ["curl", "-fsS"], "curl -f: an HTTP error is a non-zero exit"
    assert mark[mark.index("-X") + 1] == "POST" and mark[-1] == f"{CLUSTER_URL}/api/deploys"
    body = json.loads(mark[mark.index("-d") + 1])
    assert set(body) <= {"version", "accounts", "note"} and body["version"]
    gate = flagger_hook("rollout")["metadata"]["cmd"]
    assert gate.startswith("curl -fsS ") and gate.endswith(f"{CLUSTER_URL}/api/verify")
    rollout_timeouts = sum(
        seconds(h["timeout"]) for h in analysis["webhooks"] if h["type"] == "rollout"
    )
    assert rollout_timeouts < seconds(analysis["interval"]), "Flagger: hooks must fit an interval"
    patience = analysis["threshold"] * seconds(analysis["interval"])
    assert patience >= DEFAULT_GRACE_S + 60, f"rolled back after {patience} s, inside the grace"


def test_the_deploy_alert_reads_only_the_deploy_metrics_krakenwatch_exports() -> None:
    (rule,) = [r for r in alert_rules() if r["alert"] == "KrakenDeployNotVerified"]
    used = set(re.findall(r"krakenwatch_[a-z_]+", rule["expr"]))
    assert used <= DEPLOY_METRICS, used - DEPLOY_METRICS
    assert set(re.findall(r'state="(\w+)"', rule["expr"])) == {"failed", "pending"}
    assert "krakenwatch_deploy_timeout_seconds" in used, "the timeout is krakenwatch's own"


# ------------------------------------------------------------------------ published schemas
@pytest.fixture(scope="module")
def validator() -> Path:
    """deploy/examples/validate/ installed (`npm ci`) in a cache in the venv, by its lock file."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip(
            "node and npm are not installed: the Argo Rollouts and GitHub Actions schemas are npm "
            "packages (install Node.js 20 or later with npm)"
        )
    lock = (VALIDATE / "package.json").read_bytes() + (VALIDATE / "package-lock.json").read_bytes()
    home = VENV_BIN.parent / "cache" / f"examples-validate-{hashlib.sha256(lock).hexdigest()[:12]}"
    if not (home / "node_modules" / ".package-lock.json").exists():
        staging = home.with_name(f"{home.name}.{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(VALIDATE / name, staging / name)
        npm = ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"]
        done = subprocess.run(npm, cwd=staging, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        shutil.rmtree(home, ignore_errors=True)
        staging.rename(home)
    shutil.copy(VALIDATE / "validate.mjs", home / "validate.mjs")
    return home


def validate(home: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    argv = ["node", str(home / "validate.mjs"), *map(str, files)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_argo_rollouts_objects_and_the_workflow_pass_their_published_schemas(
    validator: Path,
) -> None:
    done = validate(validator, ARGO, WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"ok {ARGO}: 3 objects (AnalysisTemplate, AnalysisTemplate, Rollout)" in done.stdout
    assert f"ok {WORKFLOW}: workflow, jobs: deploy" in done.stdout


def test_the_schema_check_finds_mistakes(validator: Path, tmp_path: Path) -> None:
    argo_text = ARGO.read_text()
    broken_argo = tmp_path / "argo.yaml"
    broken_argo.write_text(
        argo_text.replace(
            'url: "http://krakenwatch.{{args.namespace}}.svc:8501/api/verify"', ""
        ).replace("count: 1 #", "count: [1] #")
    )
    broken_workflow = tmp_path / "workflow.yml"
    broken_workflow.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:"))
    done = validate(validator, broken_argo, broken_workflow)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "metrics/0/provider/web must have required property url" in done.stdout
    assert "metrics/0/count must" in done.stdout
    assert "Unexpected value 'runs_on'" in done.stdout


# ------------------------------------------------------------ against a running krakenwatch
@contextmanager
def krakenwatch(tmp_path: Path, permissions: list[str], **settings: str) -> Iterator[Any]:
    """A simulator with one MASTER key, and the service on it with its routes served on a free
    loopback port; yields (simulator, the key, base URL)."""
    with one_key_simulator("deploy-examples", permissions=permissions) as (sim, key, secret):
        env = master_environment(
            sim.url,
            key,
            secret,
            KRAKENWATCH_POLL_INTERVAL="1",
            KRAKENWATCH_DATA_DIR=str(tmp_path / "data"),
            KRAKENWATCH_ADMIN_TOKEN=TOKEN,
            **settings,
        )
        service = Service.create(load_settings(env, use_dotenv=False))
        server = headless_server(service).start()
        service.start()
        try:
            yield sim, key, server.url
        finally:
            server.stop()
            service.stop()


def run_hook(kind: str, base_url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A Flagger webhook's command as the load tester runs it (`bash -c`), aimed at the test."""
    cmd = flagger_hook(kind)["metadata"]["cmd"]
    assert CLUSTER_URL in cmd and shutil.which("curl"), "curl is needed (apt-get install curl)"
    argv = ["bash", "-c", cmd.replace(CLUSTER_URL, base_url)]
    return subprocess.run(argv, env=clean_environ(env), capture_output=True, text=True, timeout=30)


def run_gate(base_url: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """ci-deploy-gate.sh with the real `krakenwatch` of the venv."""
    full = {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "KRAKENWATCH_URL": base_url}
    full.update(VERSION=VERSION, KRAKENWATCH_WAIT_TIMEOUT="60", **env)
    argv = ["sh", str(GATE)]
    return subprocess.run(argv, env=clean_environ(full), capture_output=True, text=True, cwd=cwd)


def step_args(template: str) -> list[dict[str, Any]]:
    rollout = argo("Rollout")
    for step in rollout["spec"]["strategy"]["canary"]["steps"]:
        if step.get("analysis", {}).get("templates", [{}])[0].get("templateName") == template:
            return list(step["analysis"].get("args", []))
    raise AssertionError(f"the Rollout runs no analysis with {template}")


def argo_metric(template: str, secrets: dict[str, str]) -> dict[str, Any]:
    """The template's metric with its {{args.*}} resolved as the Rollout's step gives them
    (``secrets``: "secret/key" -> value)."""
    rollout, values = argo("Rollout"), {}
    for arg in step_args(template):
        if "value" in arg:
            values[arg["name"]] = arg["value"]
        else:
            field = arg["valueFrom"]["fieldRef"]["fieldPath"]
            label = field.removeprefix("metadata.labels['").removesuffix("']")
            assert label != field, f"{template}: cannot resolve {field} here"
            values[arg["name"]] = rollout["metadata"]["labels"][label]
    for arg in argo("AnalysisTemplate", template)["spec"]["args"]:
        if "valueFrom" in arg:
            ref = arg["valueFrom"]["secretKeyRef"]
            values[arg["name"]] = secrets[f"{ref['name']}/{ref['key']}"]

    def resolve(value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\{\{\s*args\.([\w-]+)\s*\}\}", lambda m: values[m[1]], value)
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return [resolve(v) for v in value] if isinstance(value, list) else value

    (metric,) = argo("AnalysisTemplate", template)["spec"]["metrics"]
    resolved: dict[str, Any] = resolve(metric)
    return resolved


def expr_true(condition: str, result: Any) -> bool:
    """An Argo condition (expr language: comparisons, &&, ||, !, literals) on ``result``."""
    python, words = [], {"true": "True", "false": "False", "nil": "None", "result": "result"}
    for op, text, number, name in re.findall(
        r'(==|!=|>=|<=|&&|\|\||[()<>!])|("[^"]*"|\'[^\']*\')|(\d+(?:\.\d+)?)|([A-Za-z_]\w*)|\S',
        condition,
    ):
        assert op or text or number or name in words, f"cannot evaluate {condition!r} here"
        python.append(
            {"&&": "and", "||": "or", "!": "not"}.get(op, op) or text or number or words[name]
        )
    return bool(eval(" ".join(python), {"__builtins__": {}}, {"result": result}))  # noqa: S307


def measure(metric: dict[str, Any], base_url: str) -> tuple[str, Any]:
    """One measurement of an Argo Rollouts web metric, as its web provider takes it: a non-2xx
    answer is an Error (value: the status), else the jsonPath's value judged by the conditions
    (both absent: Successful; neither true: Inconclusive)."""
    web = metric["provider"]["web"]
    assert web["url"].startswith(CLUSTER_URL + "/"), web["url"]
    url = base_url + web["url"].removeprefix(CLUSTER_URL)
    headers = {h["key"]: h["value"] for h in web.get("headers", [])}
    body = None
    if "jsonBody" in web:
        body, headers["Content-Type"] = json.dumps(web["jsonBody"]).encode(), "application/json"
    status, text = http(web.get("method", "GET"), url, headers, body)
    if not 200 <= status < 300:
        return "Error", status
    path = re.fullmatch(r"\{\$((?:\.\w+)*)\}", web.get("jsonPath", "{$}"))
    assert path, f"jsonPath {web['jsonPath']!r} is more than this test reads"
    value = json.loads(text)
    for key in filter(None, path[1].split(".")):
        value = value[key]
    success, failure = metric.get("successCondition"), metric.get("failureCondition")
    if failure and expr_true(failure, value):
        return "Failed", value
    if success and not expr_true(success, value):
        return ("Inconclusive" if failure else "Failed"), value
    return "Successful", value


def latest(base_url: str, headers: dict[str, str]) -> dict[str, Any]:
    status, text = http("GET", f"{base_url}/api/deploys/latest", headers)
    assert status == 200, text
    doc: dict[str, Any] = json.loads(text)
    return doc


def await_state(base_url: str, state: str, headers: dict[str, str]) -> dict[str, Any]:
    def decided() -> dict[str, Any] | None:
        doc = latest(base_url, headers)
        return doc if doc["state"] == state else None

    return eventually(decided, 30, interval=0.1, what=f"the latest deploy to be {state}")


def metric_names(base_url: str) -> set[str]:
    status, text = http("GET", f"{base_url}/metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    return {line.split("{")[0].split()[0] for line in text.splitlines() if line[:1].isalpha()}


@pytest.mark.slow
def test_live_every_gate_holds_while_the_deploy_is_pending_and_opens_once_verified(
    tmp_path: Path,
) -> None:
    secrets = {"krakenwatch-auth/token": TOKEN}
    bearer, hook_env = {"Authorization": f"Bearer {TOKEN}"}, {"KRAKENWATCH_ADMIN_TOKEN": TOKEN}
    with krakenwatch(tmp_path, ["funds", "orders"]) as (sim, key, url):
        eventually(lambda: http("GET", f"{url}/api/verify")[0] == 200, 30, what="all checks pass")
        # Kraken answers the private calls with HTTP 503 from now: the new version is not seen.
        # A faulted call arrived: the key's calls take turns, so the last success is behind us
        before = sim.stats(key).requests
        sim.set_faults(http_status=503, scope="private")
        sim.wait_for(key, lambda stats: stats.requests > before, timeout=10)
        marked = run_hook("pre-rollout", url, hook_env)
        assert marked.returncode == 0, marked.stderr
        deploy = json.loads(marked.stdout)
        assert (deploy["state"], deploy["version"]) == ("pending", VERSION)
        gate = run_hook("rollout", url, hook_env)
        assert gate.returncode == 22 and "503" in gate.stderr, gate.stderr
        verify = argo_metric("krakenwatch-deploy-verified", secrets)
        assert measure(verify, url) == ("Error", 503)
        assert latest(url, bearer)["state"] == "pending"  # within KRAKENWATCH_DEPLOY_GRACE

        sim.clear_faults()
        assert await_state(url, "verified", bearer)["id"] == deploy["id"]
        assert run_hook("rollout", url, hook_env).returncode == 0
        assert measure(verify, url) == ("Successful", True)
        assert metric_names(url) >= DEPLOY_METRICS

        # Argo's marker: a new deploy with the Rollout's version label, judged afresh
        phase, deploy_id = measure(argo_metric("krakenwatch-mark-deploy", secrets), url)
        assert (phase, deploy_id) == ("Successful", deploy["id"] + 1)
        assert await_state(url, "verified", bearer)["version"] == VERSION
        assert measure(verify, url) == ("Successful", True)

        done = run_gate(url, hook_env, tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert latest(url, bearer)["id"] == deploy_id + 1


def test_live_every_gate_holds_for_a_failed_deploy(tmp_path: Path) -> None:
    basic = {"Authorization": "Basic " + base64.b64encode(f"ci:{PASSWORD}".encode()).decode()}
    hook_env = {"KRAKENWATCH_ADMIN_TOKEN": TOKEN}
    # the key lacks Query Open Orders & Trades: permission_query_orders fails, and with no grace
    # the deploy fails at once
    with krakenwatch(
        tmp_path, ["funds"], KRAKENWATCH_DEPLOY_GRACE="0", KRAKENWATCH_PASSWORD=PASSWORD
    ) as (_, _key, url):
        refused = run_hook("pre-rollout", url, {})  # no credential in the load tester
        assert refused.returncode == 22 and "401" in refused.stderr, refused.stderr
        # the secret may hold the dashboard password instead of the admin token
        phase, deploy_id = measure(
            argo_metric("krakenwatch-mark-deploy", {"krakenwatch-auth/token": PASSWORD}), url
        )
        assert phase == "Successful", deploy_id
        failed = await_state(url, "failed", basic)
        assert failed["id"] == deploy_id
        assert "permission_query_orders" in {c["name"] for c in failed["failing"]}
        verify = argo_metric("krakenwatch-deploy-verified", {"krakenwatch-auth/token": TOKEN})
        assert measure(verify, url) == ("Error", 503)
        gate = run_hook("rollout", url, hook_env)
        assert gate.returncode == 22 and "503" in gate.stderr, gate.stderr

        done = run_gate(url, hook_env, tmp_path)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "permission_query_orders" in done.stdout + done.stderr
        assert latest(url, basic)["id"] == deploy_id + 1

    unreachable = run_gate(f"http://127.0.0.1:{free_port()}", hook_env, tmp_path)
    assert unreachable.returncode == 2, unreachable.stdout + unreachable.stderr


@pytest.mark.slow
def test_live_prometheus_fires_the_deploy_alert_for_a_failed_deploy_until_the_next_marker(
    tmp_path: Path,
) -> None:
    """The shipped rule (`for:` cut to 1 s) on a real Prometheus scraping krakenwatch."""
    hook_env = {"KRAKENWATCH_ADMIN_TOKEN": TOKEN}
    settings = {"KRAKENWATCH_DEPLOY_GRACE": "0", "KRAKENWATCH_DEPLOY_TIMEOUT": "10"}
    with (
        krakenwatch(tmp_path, ["funds", "orders"], **settings) as (sim, key, url),
        prometheus_server(tmp_path / "prometheus", url.removeprefix("http://")) as prom,
    ):
        prom.wait(lambda: prom.query("krakenwatch_account_up == 1"), "krakenwatch scraped")
        assert not prom.alerts("KrakenDeployNotVerified"), "an alert without any deploy"
        before = sim.stats(key).requests
        sim.set_faults(http_status=503, scope="private")
        sim.wait_for(key, lambda stats: stats.requests > before, timeout=10)
        assert run_hook("pre-rollout", url, hook_env).returncode == 0

        def firing() -> list[dict[str, Any]]:
            alerts = prom.active("KrakenDeployNotVerified", state="failed", version=VERSION)
            return [a for a in alerts if a["state"] == "firing"]

        (alert,) = prom.wait(firing, "KrakenDeployNotVerified for the failed deploy", timeout=60)
        assert alert["labels"]["severity"] == "warning"
        summary = f"The latest deploy ({VERSION}) is not verified (failed)"
        assert alert["annotations"]["summary"] == summary
        assert "Remedy:" in alert["annotations"]["description"]

        # the fix (or the rollback), marked: a new judgement, and the alert is over at once
        accepted = sim.stats(key).accepted
        sim.clear_faults()
        sim.wait_for(key, lambda stats: stats.accepted > accepted, timeout=30)
        # the failed deploy keeps the gate shut, even with the checks passing again
        assert http("GET", f"{url}/api/verify")[0] == 503
        done = run_gate(url, hook_env, tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        prom.wait(lambda: not prom.alerts("KrakenDeployNotVerified"), "the alert to clear")
