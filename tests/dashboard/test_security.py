"""The dashboard's own guarantees: its files are private, and password guessing is slowed down
(per client address, for the login form and the HTTP routes alike, and said so)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from streamlit.testing.v1 import AppTest

from broker.private import private_data_dir
from dashboard.checks.gate import run_check
from dashboard.config import load_settings
from dashboard.history.store import EventStore
from dashboard.monitor.status import AccountState
from dashboard.web.auth import FREE_FAILURES, LOCAL, PasswordThrottle, client_key
from dashboard.web.service import DATABASE_NAME, Service
from dashboard.web.streamlit_app import set_service
from testkit.headless import headless_server
from testkit.net import eventually
from testkit.sim import master_environment, one_key_simulator

PAGES = Path(__file__).resolve().parents[2] / "dashboard" / "ui"
PASSWORD = "a long enough password"
WAL_FILES = ("", "-wal", "-shm")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(root: Path) -> dict[str, str]:
    """The mode of ``root`` (as ".") and of everything under it, by relative path."""
    paths = [root, *root.rglob("*")]
    return {str(p.relative_to(root)): f"{mode(p):04o}" for p in paths}


def database_files(db: Path) -> list[Path]:
    return [Path(f"{db}{suffix}") for suffix in WAL_FILES]


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The usual umask (022), which lets everyone read what is created with default modes."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def tightened(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("tightened ")]


# -- private files ----------------------------------------------------------------------------


def test_a_fresh_data_dir_holds_only_0700_dirs_and_0600_files(
    tmp_path: Path, usual_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    with one_key_simulator("private") as (sim, key, secret):
        env = master_environment(sim.url, key, secret, KRAKENWATCH_DATA_DIR=str(data))
        service = Service.create(load_settings(env, use_dotenv=False))
        service.start()
        try:
            eventually(
                lambda: (
                    service.monitor.snapshot().account("MASTER").state == AccountState.CONNECTED
                ),
                what="MASTER connected",
            )
            found = modes(data)
        finally:
            service.stop()
    db = DATABASE_NAME
    assert {".", "nonces", db, f"{db}-wal", f"{db}-shm"} <= found.keys()
    assert {name: "0700" if (data / name).is_dir() else "0600" for name in found} == found
    assert tightened(caplog) == [], "nothing new is ever tightened"


def test_the_stores_wal_files_are_0600_whenever_sqlite_makes_them(
    tmp_path: Path, usual_umask: None
) -> None:
    """SQLite gives a new -wal/-shm the database's mode: after a checkpoint, a reader, a reopen."""
    db = tmp_path / "new" / "events.sqlite3"
    with EventStore(db):
        assert mode(db.parent) == 0o700
        with EventStore.open_readonly(db) as reader:
            assert reader.count() == 0
            with contextlib.closing(sqlite3.connect(db)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            assert [mode(p) for p in database_files(db)] == [0o600] * 3
    assert not Path(f"{db}-wal").exists(), "the last writer removes its WAL files"
    with EventStore(db):
        assert [mode(p) for p in database_files(db)] == [0o600] * 3


def test_a_wide_data_dir_and_database_are_tightened_and_said_so_once(
    tmp_path: Path, usual_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    (data / "nonces").mkdir(parents=True, mode=0o755)
    data.chmod(0o755)
    db = data / DATABASE_NAME
    with EventStore(db):  # a writer of an earlier release still runs: its -wal and -shm exist
        for path in database_files(db):
            path.chmod(0o644)
        settings = load_settings({"KRAKENWATCH_DATA_DIR": str(data)}, use_dotenv=False)
        caplog.set_level(logging.WARNING)
        Service.create(settings).stop()
        assert [mode(p) for p in (data, data / "nonces")] == [0o700] * 2
        assert [mode(p) for p in database_files(db)] == [0o600] * 3
        assert sorted(tightened(caplog)) == sorted(
            [
                f"tightened {data} from 0755 to 0700",
                f"tightened {data / 'nonces'} from 0755 to 0700",
                *(f"tightened {p} from 0644 to 0600" for p in database_files(db)),
            ]
        )
        caplog.clear()
        Service.create(settings).stop()
        assert tightened(caplog) == [], "said once: private files stay private"


def test_krakenwatch_check_makes_the_data_dir_private(tmp_path: Path, usual_umask: None) -> None:
    data = tmp_path / "data"
    with one_key_simulator("private") as (sim, key, secret):
        env = master_environment(sim.url, key, secret, KRAKENWATCH_DATA_DIR=str(data))
        run_check(
            load_settings(env, use_dotenv=False),
            10,
            as_json=True,
            out=io.StringIO(),
            err=io.StringIO(),
        )
    found = modes(data)
    assert {".", "nonces"} <= found.keys()
    assert {name: "0700" if (data / name).is_dir() else "0600" for name in found} == found


# -- password attempts slowed down: the throttle ----------------------------------------------


def fail(throttle: PasswordThrottle, address: str | None = "203.0.113.7") -> float:
    """One wrong password from ``address``: the wait it leaves (asserting it was checked)."""
    attempt = throttle.attempt(address, lambda: False)
    assert not attempt.ok and not attempt.throttled
    return attempt.retry_after_s


def test_the_throttle_waits_1_2_4_up_to_60_s_after_5_failures_and_a_success_resets() -> None:
    clock = Clock()
    throttle = PasswordThrottle(clock=clock)
    address = "203.0.113.7"
    assert [fail(throttle) for _ in range(FREE_FAILURES)] == [0, 0, 0, 0, 1]
    checked: list[str] = []

    def right() -> bool:
        checked.append("right")
        return True

    refused = throttle.attempt(address, right)
    assert (refused.ok, refused.throttled, refused.retry_after) == (False, True, 1)
    assert checked == [], "a throttled attempt is not checked, even with the right password"
    clock.now += 0.5
    assert throttle.attempt(address, right).retry_after_s == pytest.approx(0.5)
    waits = []
    for _ in range(8):
        clock.now += throttle.retry_after(address)
        waits.append(fail(throttle))
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]
    assert throttle.attempt("198.51.100.1", right).ok, "other addresses are not slowed down"
    clock.now += 60
    assert throttle.attempt(address, right).ok
    assert fail(throttle) == 0, "a success starts the count again"


def test_the_throttle_counts_per_address_ipv6_by_its_64_and_loopback_as_one() -> None:
    assert (
        client_key("2001:db8:1:2::5") == client_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    )
    assert client_key("2001:db8:1:3::5") != client_key("2001:db8:1:2::5")
    assert client_key("::ffff:203.0.113.7") == client_key("203.0.113.7") == "203.0.113.7"
    assert client_key(None) == client_key("127.0.0.1") == client_key("::1") == LOCAL
    throttle = PasswordThrottle(clock=Clock())
    for _ in range(FREE_FAILURES):
        fail(throttle, None)  # a Streamlit session from this host has no address
    assert throttle.retry_after("127.0.0.1") == 1, "the HTTP routes see the same client"


def test_the_throttle_forgets_idle_addresses_and_holds_at_most_max_addresses() -> None:
    clock = Clock()
    throttle = PasswordThrottle(clock=clock, max_addresses=3)
    for i in range(5):
        fail(throttle, f"192.0.2.{i}")
        clock.now += 1
    assert len(throttle) == 3
    assert throttle.retry_after("192.0.2.0") == 0
    for _ in range(FREE_FAILURES - 1):
        fail(throttle, "192.0.2.4")
    assert throttle.retry_after("192.0.2.4") == 1
    clock.now += 3600
    fail(throttle, "192.0.2.9")
    assert len(throttle) == 1, "an hour without a failure: forgotten"
    assert throttle.retry_after("192.0.2.4") == 0


def test_concurrent_attempts_cannot_slip_past_the_throttle() -> None:
    throttle = PasswordThrottle(clock=Clock())
    checks: list[int] = []
    lock = threading.Lock()

    def wrong() -> bool:
        with lock:
            checks.append(1)
        return False

    start = threading.Barrier(40)

    def guess() -> None:
        start.wait()
        for _ in range(5):
            throttle.attempt("203.0.113.7", wrong)

    threads = [threading.Thread(target=guess) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(checks) == FREE_FAILURES, "200 guesses at once, only the free ones checked"


# -- ... over HTTP (/metrics, /api/verify) and in the login form -------------------------------


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[Service, Clock]]:
    """A service with a password, its throttle on a test clock."""
    env = {"KRAKENWATCH_DATA_DIR": str(tmp_path / "data"), "KRAKENWATCH_PASSWORD": PASSWORD}
    service = Service.create(load_settings(env, use_dotenv=False))
    clock = Clock()
    service.password_throttle = PasswordThrottle(clock=clock)
    try:
        yield service, clock
    finally:
        service.stop()


def test_basic_auth_refuses_an_address_after_5_failures_and_says_for_how_long(
    guarded: tuple[Service, Clock],
) -> None:
    service, clock = guarded
    server = headless_server(service).start()
    try:
        metrics, verify = server.url + "/metrics", server.url + "/api/verify"

        def get(url: str, password: str | None) -> requests.Response:
            auth = None if password is None else ("prometheus", password)
            return requests.get(url, auth=auth, timeout=10)

        for _ in range(3):
            assert get(metrics, None).status_code == 401, "no credentials: nothing was tried"
        for _ in range(FREE_FAILURES):
            wrong = get(metrics, "wrong password!!")
            assert (wrong.status_code, wrong.text) == (401, "authentication required\n")
            assert "Retry-After" not in wrong.headers
            assert wrong.headers["WWW-Authenticate"] == 'Basic realm="krakenwatch"'
        for url in (metrics, verify):  # one throttle for both routes (and the login form)
            refused = get(url, PASSWORD)
            assert refused.status_code == 401
            assert refused.headers["Retry-After"] == "1"
            assert refused.headers["WWW-Authenticate"] == 'Basic realm="krakenwatch"'
            assert refused.text == (
                "too many failed attempts from this address; try again in 1 s\n"
            )
        clock.now += 1
        assert get(metrics, "wrong password!!").status_code == 401
        assert get(metrics, PASSWORD).headers["Retry-After"] == "2", "the wait doubles"
        clock.now += 2
        assert get(metrics, PASSWORD).status_code == 200
        for _ in range(FREE_FAILURES):  # the success reset this address: five checked again
            assert get(metrics, "wrong password!!").text == "authentication required\n"
        assert get(metrics, PASSWORD).headers["Retry-After"] == "1"
    finally:
        server.stop()


def login(at: AppTest, password: str) -> AppTest:
    at.text_input[0].set_value(password)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_login_form_says_attempts_are_slowed_down_and_when_to_retry(
    guarded: tuple[Service, Clock],
) -> None:
    service, clock = guarded
    set_service(service)
    try:
        at = AppTest.from_file(str(PAGES / "screens" / "overview.py"), default_timeout=30)
        at.run()
        assert any("slowed down" in c.value for c in at.caption)
        for _ in range(FREE_FAILURES - 1):
            assert [e.value for e in login(at, "wrong").error] == ["Wrong password."]
        assert [e.value for e in login(at, "wrong").error] == [
            "Wrong password. Too many failed attempts; try again in 1 s."
        ]
        assert [e.value for e in login(at, PASSWORD).error] == [
            "Too many failed attempts; try again in 1 s."
        ]
        assert [t.value for t in at.title] == ["krakenwatch"], "not logged in"
        assert service.password_throttle.retry_after("127.0.0.1") > 0, "shared with the routes"
        clock.now += 1
        login(at, PASSWORD)
        assert at.title[0].value == "Post-deploy verification"
        assert service.password_throttle.retry_after(None) == 0
    finally:
        set_service(None)


def test_a_shared_folder_is_never_narrowed_and_named(tmp_path: Path) -> None:
    shared = tmp_path / "drop"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # noqa: S103 (the shared folder under test)
    with pytest.raises(PermissionError, match=r"shared folder \(mode 1777\).*KRAKENWATCH_DATA_DIR"):
        private_data_dir(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
