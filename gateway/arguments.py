"""What ``krakenwatch gateway`` and its client commands (``add-client``, ``list-clients``,
``remove-client``) parse alike: the program name, a parser whose errors are one line, the
``--config`` and ``--env-file`` options, and the check of an explicit ``--config``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

__all__ = ["PROG", "Parser", "add_common_arguments", "missing_config"]

PROG = "krakenwatch gateway"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, no usage block: the culprit and where to look."""
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--env-file``, shared by the gateway and its client commands."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="the client credentials file (default: gateway.toml in the data dir)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=None,
        metavar="F",
        help="read variables from F instead of ./.env",
    )


def missing_config(path: Path | None) -> str | None:
    """What is wrong with an explicit ``--config`` that does not exist (a typo would turn every
    bot with a client credential away), or ``None``."""
    if path is None or path.is_file():
        return None
    return f"--config: {path} does not exist (add-client creates it; without --config the data dir's gateway.toml is used)"
