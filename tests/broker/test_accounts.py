"""Account discovery from the environment and .env files."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker import ConfigurationError, discover_accounts, load_environment
from testkit.sim import make_key

KEY, SECRET = make_key("accounts-a")
KEY2, SECRET2 = make_key("accounts-b")


def problems_by_variable(env: dict[str, str]) -> dict[str, str]:
    return {p.variable: p.message for p in discover_accounts(env).problems}


def test_master_and_users_with_labels_and_units() -> None:
    found = discover_accounts(
        {
            "KRAKEN_MASTER_API_KEY": KEY,
            "KRAKEN_MASTER_API_SECRET": SECRET,
            "KRAKEN_USER_TANIA_GILBERT_API_KEY": KEY2,
            "KRAKEN_USER_TANIA_GILBERT_API_SECRET": SECRET2,
            "KRAKEN_USER_TANIA_GILBERT_NONCE_UNIT": "ns",
            "KRAKEN_API_URL": "http://127.0.0.1:1234/",
            "KRAKENWATCH_DATA_DIR": "/tmp/kw-data",
            "UNRELATED": "x",
        }
    )
    assert [(a.label, a.prefix, a.nonce_unit) for a in found.accounts] == [
        ("MASTER", "MASTER", "us"),
        ("USER:tania_gilbert", "USER_TANIA_GILBERT", "ns"),
    ]
    assert found.problems == []
    assert found.api_url == "http://127.0.0.1:1234"
    assert str(found.data_dir) == "/tmp/kw-data"
    assert found.accounts[0].masked_key == f"{KEY[:4]}…{KEY[-4:]}"
    assert KEY not in repr(found.accounts[0]) and SECRET not in repr(found.accounts[0])


@pytest.mark.parametrize(
    ("env", "variable", "message"),
    [
        ({"KRAKEN_MASTER_API_KEY": KEY}, "KRAKEN_MASTER_API_SECRET", "missing"),
        ({"KRAKEN_MASTER_API_SECRET": SECRET}, "KRAKEN_MASTER_API_KEY", "missing"),
        (
            {"KRAKEN_MASTER_API_KEY": " ", "KRAKEN_MASTER_API_SECRET": SECRET},
            "KRAKEN_MASTER_API_KEY",
            "empty",
        ),
        (
            {"KRAKEN_MASTER_API_KEY": KEY, "KRAKEN_MASTER_API_SECRET": "not base64!"},
            "KRAKEN_MASTER_API_SECRET",
            "not valid base64",
        ),
        (
            {"KRAKEN_MASTER_API_KEY": "has space", "KRAKEN_MASTER_API_SECRET": SECRET},
            "KRAKEN_MASTER_API_KEY",
            "whitespace",
        ),
        (
            {
                "KRAKEN_MASTER_API_KEY": KEY,
                "KRAKEN_MASTER_API_SECRET": SECRET,
                "KRAKEN_MASTER_NONCE_UNIT": "s",
            },
            "KRAKEN_MASTER_NONCE_UNIT",
            "unknown nonce unit",
        ),
        (
            {"KRAKEN_USER__API_KEY": KEY, "KRAKEN_USER__API_SECRET": SECRET},
            "KRAKEN_USER__API_KEY",
            "account name",
        ),
        ({"KRAKEN_API_URL": "ftp://x"}, "KRAKEN_API_URL", "not an http(s) base URL"),
    ],
)
def test_bad_input_names_the_variable(env: dict[str, str], variable: str, message: str) -> None:
    problems = problems_by_variable(env)
    assert variable in problems, problems
    assert message in problems[variable]
    assert SECRET not in problems[variable]
    assert discover_accounts(env).accounts == []


def test_one_bad_account_does_not_stop_the_others() -> None:
    found = discover_accounts(
        {
            "KRAKEN_MASTER_API_KEY": KEY,
            "KRAKEN_MASTER_API_SECRET": "%%%",
            "KRAKEN_USER_DAIVON_API_KEY": KEY2,
            "KRAKEN_USER_DAIVON_API_SECRET": SECRET2,
        }
    )
    assert [a.label for a in found.accounts] == ["USER:daivon"]
    assert [p.variable for p in found.errors] == ["KRAKEN_MASTER_API_SECRET"]


def test_same_key_under_two_labels_is_flagged_but_runs() -> None:
    found = discover_accounts(
        {
            "KRAKEN_MASTER_API_KEY": KEY,
            "KRAKEN_MASTER_API_SECRET": SECRET,
            "KRAKEN_USER_BOT_API_KEY": KEY,
            "KRAKEN_USER_BOT_API_SECRET": SECRET,
        }
    )
    assert [a.label for a in found.accounts] == ["MASTER", "USER:bot"]
    [problem] = found.problems
    assert problem.variable == "KRAKEN_USER_BOT_API_KEY" and problem.severity == "warning"
    assert "also configured for MASTER" in problem.message
    assert list(found.shared_keys.values()) == [["MASTER", "USER:bot"]]


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / "bot.env"
    env_file.write_text(
        f"KRAKEN_MASTER_API_KEY={KEY}\nKRAKEN_MASTER_API_SECRET={SECRET}\nKRAKEN_API_URL=http://a.example\n"
    )
    merged = load_environment({"KRAKEN_API_URL": "http://b.example"}, env_file)
    found = discover_accounts(merged)
    assert [a.label for a in found.accounts] == ["MASTER"]
    assert found.api_url == "http://b.example"


def test_missing_env_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"env file .*nope\.env does not exist"):
        load_environment({}, tmp_path / "nope.env")
