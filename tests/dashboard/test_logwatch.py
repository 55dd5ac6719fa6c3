"""The bot-log watcher on real files: a bot's lines, partial lines, rotation, truncation, patterns."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from dashboard.history.logwatch import LogWatcher
from dashboard.logpatterns import DEFAULT_PATTERNS, LogPattern, LogPatternError, load_patterns
from dashboard.monitor.events import LOG_MATCH, Event

# A bot's log while it connects a Kraken account, with its emoji mis-decoded the way such logs get
# copied around (UTF-8 shown in Mac Roman: "‚úÖ" is "✅"); test_real_emoji_lines checks the
# properly encoded lines too.
CONNECT_LINES = [
    "2026-01-11 17:30:57 | INFO | \uf8ffüìä Attempting to connect User #1 (Daivon Frazier) - Kraken...",
    "2026-01-11 17:30:57 | DEBUG | ‚úÖ Custom nonce generator installed for USER:daivon_frazier",
    "2026-01-11 17:30:57 | DEBUG | \uf8ffüîÑ Refreshed nonce baseline to 1768152936550371 for USER:daivon_frazier",
    "2026-01-11 17:30:58 | INFO | ‚úÖ KRAKEN PRO CONNECTED (USER:daivon_frazier)",
    "2026-01-11 17:30:58 | INFO |    Account: USER:daivon_frazier",
    "2026-01-11 17:30:58 | INFO |    USD Balance: $XXX.XX",
    "2026-01-11 17:30:58 | INFO |    USDT Balance: $XXX.XX",
    "2026-01-11 17:30:58 | INFO |    Total: $XXX.XX",
    "2026-01-11 17:30:58 | INFO | ‚úÖ User #1 Kraken connected",
]
CREDENTIALS_MISSING_LINE = "2026-01-11 17:30:57 | INFO | ‚ö†Ô∏è  Kraken credentials not configured for USER:daivon_frazier (skipping)"
PERMISSION_FAILURE_LINES = [
    "2026-01-11 17:30:58 | ERROR | ‚ùå Kraken connection test failed (USER:daivon_frazier): EGeneral:Permission denied",
    "2026-01-11 17:30:58 | ERROR |    ‚ö†Ô∏è  API KEY PERMISSION ERROR",
]
INVALID_NONCE_LINES = [
    "EAPI:Invalid nonce",
    '17:30:57.500 - ‚ùå Kraken rejects with "Invalid nonce"',
]
# Illustrative lines for the bot-side checklist items ("Bot starts without errors", "Other brokers
# (Coinbase, Alpaca) still connect successfully", "Trading cycles begin normally"): illustrative.
BOT_SIDE = [
    "2026-01-11 17:30:56 | INFO | 🚀 Starting bot (version 7.2)",
    "2026-01-11 17:30:59 | INFO | ✅ Coinbase Advanced Trade connected",
    "2026-01-11 17:30:59 | INFO | ✅ Alpaca connected (paper)",
    "2026-01-11 17:31:00 | INFO | 🔁 Trading cycle #1 started",
]
DAIVON = "USER:daivon_frazier"


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.arrived = threading.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self.arrived.set()


def append(path: Path, text: str | bytes) -> None:
    with path.open("ab") as f:
        f.write(text.encode() if isinstance(text, str) else text)


_opened: list[LogWatcher] = []


def watcher(
    path: Path,
    *,
    from_start: bool = True,
    patterns: Sequence[LogPattern] = DEFAULT_PATTERNS,
    on_event: Callable[[Event], None] | None = None,
    **kw: Any,
) -> tuple[LogWatcher, Sink]:
    """A watcher on ``path`` (stopped, its file closed, when the test ends)."""
    sink = Sink()
    w = LogWatcher(path, patterns, on_event or sink, from_start=from_start, **kw)
    _opened.append(w)
    return w, sink


@pytest.fixture(autouse=True)
def _stop_watchers() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().stop()


def seen(events: list[Event]) -> list[tuple[str, str | None]]:
    return [(e.data["pattern"], e.account) for e in events]


def test_a_bots_connect_lines(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    append(log, "\n".join(CONNECT_LINES) + "\n")
    w, sink = watcher(log)
    events = w.poll()
    assert events == sink.events
    assert seen(events) == [("nonce_refreshed", DAIVON), ("kraken_connected", DAIVON)]
    refreshed, connected = events
    assert refreshed.kind == LOG_MATCH and refreshed.data["nonce"] == "1768152936550371"
    assert connected.detail == CONNECT_LINES[3]
    assert connected.data == {
        "pattern": "kraken_connected",
        "line": connected.detail,
        "account": DAIVON,
    }
    assert w.stats.lines == len(CONNECT_LINES)
    assert w.stats.matches["kraken_connected"] == 1


def test_a_bots_failure_lines(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    append(
        log,
        "\n".join([CREDENTIALS_MISSING_LINE, *PERMISSION_FAILURE_LINES, *INVALID_NONCE_LINES])
        + "\n",
    )
    events = watcher(log)[0].poll()
    assert seen(events) == [
        ("credentials_missing", DAIVON),
        ("connection_failed", DAIVON),
        ("permission_error", None),
        ("invalid_nonce", None),
        ("invalid_nonce", None),
    ]
    assert events[1].data["error"] == "EGeneral:Permission denied"


def test_bot_side_checklist_lines(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    append(log, "\n".join(BOT_SIDE) + "\n")
    events = watcher(log)[0].poll()
    assert [e.data["pattern"] for e in events] == [
        "bot_started",
        "other_broker_connected",
        "other_broker_connected",
        "trading_cycle",
    ]
    assert [e.data.get("broker") for e in events[1:3]] == ["Coinbase", "Alpaca"]
    for negative in ("Coinbase not connected", "OKX disconnected", "Kraken connected"):
        assert not any(p.compiled.search(negative) for p in DEFAULT_PATTERNS), negative


def test_real_emoji_lines(tmp_path: Path) -> None:
    lines = [*CONNECT_LINES, CREDENTIALS_MISSING_LINE, *PERMISSION_FAILURE_LINES]
    real = [line.encode("mac_roman").decode("utf-8") for line in lines]
    assert "✅ KRAKEN PRO CONNECTED (USER:daivon_frazier)" in real[3]
    log = tmp_path / "bot.log"
    append(log, "\n".join(real) + "\n")
    assert seen(watcher(log)[0].poll()) == [
        ("nonce_refreshed", DAIVON),
        ("kraken_connected", DAIVON),
        ("credentials_missing", DAIVON),
        ("connection_failed", DAIVON),
        ("permission_error", None),
    ]


def test_starts_at_the_end_unless_from_start(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    append(log, "old: EAPI:Invalid nonce\n")
    tail, _ = watcher(log, from_start=False)
    head, _ = watcher(log, from_start=True)
    append(log, "new: EAPI:Invalid nonce\n")
    assert [e.detail for e in tail.poll()] == ["new: EAPI:Invalid nonce"]
    assert [e.detail for e in head.poll()] == ["old: EAPI:Invalid nonce", "new: EAPI:Invalid nonce"]


def test_a_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    log.touch()
    w, sink = watcher(log)
    append(log, "INFO | ✅ KRAKEN PRO CONN")
    assert w.poll() == []
    append(log, "ECTED (MASTER)\r\nINFO | EAPI:Invalid")
    assert seen(w.poll()) == [("kraken_connected", "MASTER")]
    assert sink.events[0].detail == "INFO | ✅ KRAKEN PRO CONNECTED (MASTER)"
    append(log, " nonce\n")
    assert seen(w.poll()) == [("invalid_nonce", None)]
    assert w.poll() == []


def test_rotation_delivers_every_line_once(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    w, sink = watcher(log)
    old = log.open("a", encoding="utf-8")
    old.write("cycle 1 started\n")
    old.flush()
    assert len(w.poll()) == 1
    old.write("cycle 2 started\n")  # written, not yet read, when the file is renamed
    old.flush()
    os.rename(log, tmp_path / "bot.log.1")
    old.write("cycle 3 started\n")  # the writer still holds the old file
    old.flush()
    assert [e.detail for e in w.poll()] == ["cycle 2 started", "cycle 3 started"]
    append(log, "cycle 4 started\n")  # the new file
    old.write("cycle 5 started")  # last words of the old file, without a newline
    old.close()
    assert [e.detail for e in w.poll()] == ["cycle 5 started", "cycle 4 started"]
    append(log, "cycle 6 started\n")
    assert [e.detail for e in w.poll()] == ["cycle 6 started"]
    assert w.poll() == []
    assert [e.detail for e in sink.events] == [f"cycle {n} started" for n in (1, 2, 3, 5, 4, 6)]
    assert w.stats.rotations == 1


def test_rotation_by_a_logging_rotating_file_handler(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    handler = logging.handlers.RotatingFileHandler(
        log, maxBytes=200, backupCount=50, encoding="utf-8"
    )
    logger = logging.Logger("bot-under-test")
    logger.addHandler(handler)
    w, sink = watcher(log, from_start=True)
    for n in range(60):
        logger.warning("Trading cycle #%d complete", n)
        w.poll()
    handler.close()
    w.poll()
    assert [e.detail for e in sink.events] == [f"Trading cycle #{n} complete" for n in range(60)]
    assert w.stats.rotations == len(list(tmp_path.glob("bot.log.*"))) > 5


def test_truncation_restarts_from_the_top(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    append(log, "Starting bot\n" + "filler line\n" * 20)
    w, _ = watcher(log)
    assert [e.data["pattern"] for e in w.poll()] == ["bot_started"]
    with log.open("w") as f:  # copytruncate-style: same file, now shorter
        f.write("Bot started again\n")
    assert [e.detail for e in w.poll()] == ["Bot started again"]
    assert w.stats.truncations == 1
    assert w.poll() == []


def test_a_missing_file_is_waited_for(tmp_path: Path) -> None:
    log = tmp_path / "later" / "bot.log"
    w, _ = watcher(log, from_start=False)
    assert w.poll() == []
    assert w.poll() == []
    log.parent.mkdir()
    append(log, "Starting bot\n")  # a file that appears later is read from its start
    assert [e.detail for e in w.poll()] == ["Starting bot"]


def test_long_lines_are_cut_and_bounded(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    append(log, "EAPI:Invalid nonce " + "x" * 1_000_000)
    w, _ = watcher(log, max_line_bytes=4096)
    assert w.poll() == []
    assert len(w._buf) == 4096  # the held partial line stays bounded
    append(log, "y" * 100_000 + "\nStarting bot\n")
    events = w.poll()
    assert [e.data["pattern"] for e in events] == ["invalid_nonce", "bot_started"]
    assert len(events[0].detail) == 300 and events[0].detail.endswith("…")
    assert w.stats.long_lines == 1 and w.stats.lines == 2


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    append(log, b"\xff\xfe EAPI:Invalid nonce \xc3\n")
    (event,) = watcher(log)[0].poll()
    assert event.detail == "\ufffd\ufffd EAPI:Invalid nonce \ufffd"


def test_secrets_are_redacted_from_lines_and_groups(tmp_path: Path) -> None:
    secret = "c2VjcmV0c2VjcmV0c2VjcmV0"
    log = tmp_path / "bot.log"
    append(log, f"Kraken connection test failed (MASTER): bad signature with {secret}\n")
    (event,) = watcher(log, redact=[secret, ""])[0].poll()
    assert secret not in json.dumps(event.data) and secret not in event.detail
    assert event.data["error"] == "bad signature with [redacted]"


def test_on_event_errors_do_not_stop_the_watcher(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    append(log, "Starting bot\nBot started\n")

    def explode(event: Event) -> None:
        raise RuntimeError("boom")

    w, _ = watcher(log, on_event=explode)
    assert len(w.poll()) == 2
    assert w.stats.callback_errors == 2


def test_the_thread_follows_and_stops_promptly(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    log.touch()
    w, sink = watcher(log, from_start=False, poll_interval=60.0)
    w.start()
    try:
        append(log, "EAPI:Invalid nonce\n")
        w.poll()  # no waiting for the interval: a direct poll is safe beside the thread
        assert sink.arrived.wait(10)
    finally:
        started = time.monotonic()
        w.stop(timeout=10)
    assert time.monotonic() - started < 5  # the 60 s wait is interrupted
    assert w._thread is None
    append(log, "Bot started\n")
    assert [e.detail for e in w.poll()] == ["Bot started"]  # resumes where it stopped
    assert len(sink.events) == 2


def test_the_thread_polls_on_its_own(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    w, sink = watcher(log, poll_interval=0.01)
    w.start()
    try:
        append(log, "Bot started\n")
        assert sink.arrived.wait(10)
    finally:
        w.stop()
    assert seen(sink.events) == [("bot_started", None)]


def test_bad_regex_names_the_pattern() -> None:
    with pytest.raises(ValueError, match=r"'broken'.*invalid regex"):
        LogPattern("broken", r"(unclosed")
    with pytest.raises(LogPatternError, match=r"'p'.*account_group 'who'"):
        LogPattern("p", r"(?P<account>\S+)", account_group="who")
    with pytest.raises(LogPatternError, match="reserved"):
        LogPattern("p", r"(?P<line>.*)")


def test_custom_patterns_from_toml(tmp_path: Path) -> None:
    spec = tmp_path / "patterns.toml"
    spec.write_text(
        "extend = true\n"
        "[[patterns]]\n"
        'name = "order_filled"\n'
        "regex = 'Order filled for (?P<who>\\S+)'\n"
        'account_group = "who"\n'
        "[[patterns]]\n"
        'name = "bot_started"\n'
        "regex = 'BOOT OK'\n"
    )
    patterns = load_patterns(spec)
    names = [p.name for p in patterns]
    assert names == [p.name for p in DEFAULT_PATTERNS] + ["order_filled"]
    assert next(p for p in patterns if p.name == "bot_started").regex == "BOOT OK"
    log = tmp_path / "bot.log"
    append(log, "Order filled for USER:tania_gilbert\nStarting bot\nBOOT OK\n")
    events = watcher(log, patterns=patterns)[0].poll()
    assert seen(events) == [("order_filled", "USER:tania_gilbert"), ("bot_started", None)]
    assert events[1].detail == "BOOT OK"


def test_custom_patterns_replace_defaults_and_json(tmp_path: Path) -> None:
    spec = tmp_path / "patterns.json"
    spec.write_text(json.dumps({"patterns": [{"name": "only", "regex": "only this"}]}))
    assert [p.name for p in load_patterns(spec)] == ["only"]
    assert load_patterns(None) == list(DEFAULT_PATTERNS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[patterns]]\nname = "a"\n', r"patterns\[0\]\.regex: missing"),
        ('[[patterns]]\nname = "a"\nregexp = "x"\n', r"patterns\[0\]\.regexp: unknown field"),
        (
            "[[patterns]]\nname = 'bad'\nregex = '(x'\n",
            r"patterns\[0\]: log pattern 'bad': invalid regex",
        ),
        ("extend = 'yes'\n", "extend: must be true or false"),
        ("patterns = 3\n", "patterns: must be a list"),
        ("patterns = []\n", "patterns: none defined"),
        ("[[patterns]]\nname='a'\nregex='x'\n[[patterns]]\nname='a'\nregex='y'\n", "used twice"),
        ("this is = not toml [\n", "cannot read the log patterns"),
    ],
)
def test_pattern_file_errors_name_the_file_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    spec = tmp_path / "patterns.toml"
    spec.write_text(text)
    with pytest.raises(LogPatternError, match=re.escape(str(spec)) + ".*" + message):
        load_patterns(spec)


def test_missing_pattern_file(tmp_path: Path) -> None:
    missing = tmp_path / "nothere.toml"
    with pytest.raises(LogPatternError, match=re.escape(str(missing))):
        load_patterns(str(missing))
