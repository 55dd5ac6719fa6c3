"""Settings: built once from the environment and an env file; listed without secrets."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from broker import ConfigurationError
from dashboard.cli import main
from dashboard.config import HIDDEN, SHARED_VARIABLES, Settings, load_settings
from dashboard.logpatterns import DEFAULT_PATTERNS
from dashboard.monitor.retry import RetryPolicy, describe_wait
from simulator import fake_key, fake_secret


def master(label: str = "config") -> dict[str, str]:
    return {
        "KRAKEN_MASTER_API_KEY": fake_key(label),
        "KRAKEN_MASTER_API_SECRET": fake_secret(label),
    }


def test_variables_list_every_setting_and_never_a_secret(tmp_path: Path) -> None:
    env = {
        **master(),
        "KRAKENWATCH_DATA_DIR": str(tmp_path),
        "KRAKENWATCH_POLL_INTERVAL": "45",
        "KRAKENWATCH_PROBE_TRADE": "1",
        "KRAKENWATCH_PASSWORD": "a long enough password",
    }
    settings = load_settings(env, use_dotenv=False)
    rows = settings.variables()
    shown = dict(rows)
    assert len(shown) == len(rows), "every variable is listed once"
    assert shown["KRAKEN_MASTER_API_KEY"] == settings.accounts[0].masked_key
    assert shown["KRAKEN_MASTER_API_SECRET"] == HIDDEN
    assert shown["KRAKENWATCH_PASSWORD"] == HIDDEN
    assert shown["KRAKENWATCH_POLL_INTERVAL"] == "45 s"
    assert shown["KRAKENWATCH_FRESHNESS"] == "180 s"  # 4 × the poll interval
    assert shown["KRAKENWATCH_PROBE_TRADE"] == "1"
    assert shown["KRAKENWATCH_DATA_DIR"] == str(tmp_path)
    assert shown["KRAKENWATCH_BOT_LOG"] == "-"
    declared = [f.metadata["variable"] for f in fields(Settings) if "variable" in f.metadata]
    declared += SHARED_VARIABLES.values()
    assert {variable.name for variable in declared} <= set(shown)
    assert shown["KRAKENWATCH_TIER"] == "starter" and shown["KRAKENWATCH_NONCE_STORE"] == "file"
    assert shown["KRAKENWATCH_REQUEST_TIMEOUT"] == "10 s"
    for name in ("KRAKEN_MASTER_API_KEY", "KRAKEN_MASTER_API_SECRET", "KRAKENWATCH_PASSWORD"):
        assert all(env[name] not in value for _, value in rows), name


def test_the_env_file_comes_from_the_option_or_the_variable(tmp_path: Path) -> None:
    from_variable = tmp_path / "variable.env"
    from_variable.write_text("KRAKENWATCH_POLL_INTERVAL=45\n")
    from_option = tmp_path / "option.env"
    from_option.write_text("KRAKENWATCH_POLL_INTERVAL=60\n")
    environ = {"KRAKENWATCH_ENV_FILE": str(from_variable), "KRAKENWATCH_DATA_DIR": str(tmp_path)}

    settings = load_settings(environ)
    assert settings.poll_interval_s == 45 and settings.env_file == from_variable
    assert dict(settings.variables())["KRAKENWATCH_ENV_FILE"] == str(from_variable)
    settings = load_settings(environ, env_file=from_option)
    assert settings.poll_interval_s == 60 and settings.env_file == from_option
    assert load_settings({**environ, "KRAKENWATCH_POLL_INTERVAL": "90"}).poll_interval_s == 90
    assert load_settings(environ, use_dotenv=False).env_file is None

    missing = tmp_path / "missing.env"
    with pytest.raises(ConfigurationError, match=str(missing)):
        load_settings({"KRAKENWATCH_ENV_FILE": str(missing)})


def test_a_bad_pattern_file_is_a_named_problem_not_a_crash(tmp_path: Path) -> None:
    patterns = tmp_path / "patterns.toml"
    patterns.write_text("[[patterns]]\nname = 'bad'\nregex = '(x'\n")
    settings = load_settings(
        {"KRAKENWATCH_BOT_LOG_PATTERNS": str(patterns), "KRAKENWATCH_DATA_DIR": str(tmp_path)},
        use_dotenv=False,
    )
    (problem,) = settings.config_errors
    assert problem.variable == "KRAKENWATCH_BOT_LOG_PATTERNS"
    assert str(patterns) in problem.message and "invalid regex" in problem.message
    assert settings.log_patterns == DEFAULT_PATTERNS and settings.bot_log_patterns is None


def test_up_with_an_unusable_data_dir_exits_2_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_env: None,
) -> None:
    monkeypatch.chdir(tmp_path)
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file where the data directory should be\n")
    monkeypatch.setenv("KRAKENWATCH_DATA_DIR", str(not_a_dir))
    assert main(["up", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert str(not_a_dir) in err and "Traceback" not in err


def test_authentication_failures_wait_longer_each_time_then_stop() -> None:
    policy = RetryPolicy()
    waits = [policy.auth_delay(n) for n in range(1, policy.auth_attempts + 1)]
    assert waits == [60.0, 300.0, 900.0, None]
    assert [describe_wait(w) for w in (60.0, 90.0, 900.0, 0.5)] == [
        "1 min",
        "1.5 min",
        "15 min",
        "0.5 s",
    ]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("KRAKENWATCH_NONCE_STORE", "postgres://db:5432/0", "redis://"),
        ("KRAKENWATCH_NONCE_STORE", "redis://:hunter2@127.0.0.1:6379/0?lease=soon", "lease"),
        ("KRAKENWATCH_NONCE_SYNC", "perhaps", "boolean"),
    ],
)
def test_nonce_store_settings_are_named_and_never_show_a_password(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    settings = load_settings(
        {**master(), "KRAKENWATCH_DATA_DIR": str(tmp_path), variable: value}, use_dotenv=False
    )
    named = [p for p in settings.all_problems if p.variable == variable]
    assert named and message in named[0].message, settings.all_problems
    assert "hunter2" not in named[0].message and "hunter2" not in str(settings.variables())


def test_a_redis_store_is_listed_without_its_password(tmp_path: Path) -> None:
    url = "redis://:hunter2@redis.internal:6379/0"
    settings = load_settings(
        {**master(), "KRAKENWATCH_DATA_DIR": str(tmp_path), "KRAKENWATCH_NONCE_STORE": url},
        use_dotenv=False,
    )
    assert settings.nonce_store == url and not settings.config_errors
    assert (
        dict(settings.variables())["KRAKENWATCH_NONCE_STORE"]
        == "redis://:***@redis.internal:6379/0"
    )


def test_per_account_latency_is_off_by_default_and_a_bad_value_is_named(tmp_path: Path) -> None:
    env = {**master(), "KRAKENWATCH_DATA_DIR": str(tmp_path)}
    assert load_settings(env, use_dotenv=False).metrics_per_account_latency is False
    on = load_settings({**env, "KRAKENWATCH_METRICS_PER_ACCOUNT_LATENCY": "1"}, use_dotenv=False)
    assert on.metrics_per_account_latency is True
    bad = load_settings(
        {**env, "KRAKENWATCH_METRICS_PER_ACCOUNT_LATENCY": "perhaps"}, use_dotenv=False
    )
    named = [p for p in bad.all_problems if p.variable == "KRAKENWATCH_METRICS_PER_ACCOUNT_LATENCY"]
    assert named and "boolean" in named[0].message and not bad.metrics_per_account_latency
