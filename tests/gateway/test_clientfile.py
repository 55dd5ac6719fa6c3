"""The client credentials file and the credential table, part by part: what add-client writes,
what remove-client leaves, every refusal naming the file and the field (never a value), the
fund-moving methods, unknown accounts skipped."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from gateway.clientfile import (
    ClientConfigError,
    add_client,
    read_clients,
    remove_client,
)
from gateway.credentials import build_table
from gateway.methods import KNOWN_PRIVATE, MOVES_FUNDS, permitted
from testkit.gateway import account
from testkit.sim import make_key

KEY, SECRET = make_key("clientfile")


def test_add_client_writes_a_fresh_credential_to_a_0600_file(tmp_path: Path) -> None:
    path = tmp_path / "data" / "gateway.toml"
    first = add_client(path, "bot-a", "MASTER")
    second = add_client(path, "reader", "USER:daivon", ["Balance", "OpenOrders"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_clients(path) == [first, second]
    assert second.allow == ("Balance", "OpenOrders") and first.allow is None
    assert len(first.key) == 56 and first.key != second.key
    assert len(first.secret) == 88 and len(base64.b64decode(first.secret)) == 64
    assert first.secret != second.secret
    assert first.secret not in repr(first)


def test_remove_client_keeps_the_rest_of_the_text(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    add_client(path, "a", "MASTER")
    add_client(path, "b", "MASTER")
    add_client(path, "c", "MASTER")
    path.write_text(path.read_text().replace('name = "c"', '# the last one\nname = "c"'))
    removed = remove_client(path, "b")
    assert removed.name == "b"
    assert [e.name for e in read_clients(path)] == ["a", "c"]
    assert (
        "# the last one" in path.read_text() and "krakenwatch gateway: client" in path.read_text()
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ClientConfigError, match="no client named 'b'"):
        remove_client(path, "b")


def test_add_client_refuses_a_taken_name_a_reserved_one_and_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    add_client(path, "bot", "MASTER")
    with pytest.raises(ClientConfigError, match="a client named 'bot' exists"):
        add_client(path, "bot", "MASTER")
    for name in ("monitor", "account-key", "a b", "-x"):
        with pytest.raises(ClientConfigError, match="NAME"):
            add_client(path, name, "MASTER")
    before = path.read_text()
    path.write_text(before + "[[clients\n")
    with pytest.raises(ClientConfigError, match="not valid TOML"):
        add_client(path, "bot-2", "MASTER")


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def entry(**fields: str) -> str:
    values = {"name": "bot", "account": "MASTER", "key": KEY, "secret": SECRET, **fields}
    return "[[clients]]\n" + "".join(f'{k} = "{v}"\n' for k, v in values.items() if v != "-")


@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        (entry(name="-"), "clients[0].name: missing"),
        (entry(secret="-"), "clients[0].secret: missing"),
        (entry(secret="not base64!"), "clients[0].secret: the API secret is not valid base64"),
        (entry(secret=base64.b64encode(b"short").decode()), "clients[0].secret: shorter than 32"),
        (entry(acount="MASTER"), "clients[0].acount: unknown field"),
        (entry() + 'allow = "Balance"\n', "clients[0].allow: must be a list"),
        (
            entry() + 'allow = ["balance"]\n',
            "clients[0].allow[0]: 'balance' is not a private Kraken method",
        ),
        (entry() + "allow = []\n", "clients[0].allow: an empty list allows nothing"),
        (entry() + entry(key=make_key("other")[0]), "clients[1].name: 'bot' is used twice"),
        (entry() + entry(name="two"), "clients[1].key: the same key as another client"),
        ('listen = "0.0.0.0"\n', "listen: unknown field"),
        ("clients = 1\n", "clients: must be [[clients]] tables"),
        ("[[clients]\n", "not valid TOML"),
    ],
)
def test_every_refusal_names_the_file_and_the_field(
    tmp_path: Path, text: str, culprit: str
) -> None:
    path = write(tmp_path / "gateway.toml", text)
    with pytest.raises(ClientConfigError) as raised:
        read_clients(path)
    assert raised.value.message.startswith(f"{path}: ")
    assert culprit in raised.value.message
    assert SECRET not in raised.value.message and KEY not in raised.value.message


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o620, 0o644])
def test_a_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "gateway.toml", entry(), mode)
    with pytest.raises(ClientConfigError, match=f"mode {mode:04o}.*chmod 600"):
        read_clients(path)


def test_a_missing_file_means_no_client(tmp_path: Path) -> None:
    assert read_clients(tmp_path / "nothing.toml") == []


def test_clients_of_unknown_accounts_are_skipped_the_others_kept(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    bot = add_client(path, "bot", "MASTER")
    ghost = add_client(path, "ghost", "USER:ghost")
    table = build_table([account(KEY, SECRET)], read_clients(path), path)
    assert [c.name for c in table.clients] == ["bot"]
    assert table.skipped == (
        f"{path}: client 'ghost': unknown account 'USER:ghost' (configured: MASTER); skipped",
    )
    principal = table.by_key[bot.key]
    assert (principal.client, principal.account.label, principal.named) == ("bot", "MASTER", True)
    assert ghost.key not in table.by_key and table.by_key[KEY].client == "account-key"
    assert table.clients[0].masked_key == f"{bot.key[:4]}…{bot.key[-4:]}"


def test_fund_moving_methods_need_naming() -> None:
    assert {"Withdraw", "WithdrawCancel", "WalletTransfer", "AccountTransfer"} <= MOVES_FUNDS
    assert {"CreateSubaccount", "Earn/Allocate", "Earn/Deallocate"} <= MOVES_FUNDS
    assert MOVES_FUNDS <= KNOWN_PRIVATE
    assert not permitted("Withdraw", None) and permitted("AddOrder", None)
    assert not permitted("SomethingNew", None)  # an allowlist: unknown names never pass
    assert permitted("Withdraw", frozenset({"Withdraw"}))
    assert not permitted("OpenOrders", frozenset({"Balance"}))
