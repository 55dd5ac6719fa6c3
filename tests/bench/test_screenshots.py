"""The README's screenshots can be refreshed: ``python -m bench.screenshots`` writes the PNGs."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from bench.screenshots import HEIGHT, SHOTS, WIDTH, main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_the_screenshot_script_writes_overview_balances_and_gateway(tmp_path: Path) -> None:
    assert main(["--output", str(tmp_path)]) == 0
    assert SHOTS == ("overview.png", "balances.png", "gateway.png")
    for name in SHOTS:
        data = (tmp_path / name).read_bytes()
        assert data[:8] == PNG and data[12:16] == b"IHDR"
        assert struct.unpack(">II", data[16:24]) == (WIDTH, HEIGHT)
        assert 20_000 < len(data) < 500_000, len(data)
