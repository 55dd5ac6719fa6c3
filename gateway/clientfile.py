"""The gateway's client credentials file: a TOML file of ``[[clients]]`` tables, mode 0600.

::

    [[clients]]
    name = "bot-a"                      # the metrics' ``client`` label
    account = "MASTER"                  # the account the gateway signs for
    key = "..."                         # what the bot sends as API-Key
    secret = "..."                      # base64 of 64 random bytes; the bot signs with it
    allow = ["Balance", "AddOrder"]     # optional: only these methods
    order_share = 0.5                   # optional: at most this share of a pair's order budget

The secret is stored as is: the gateway verifies each request's HMAC with it, which a hash of the
secret cannot do. So the file is refused when group or others have any access to it, and it is
only ever written whole, with mode 0600, through a temporary file renamed over it (a gateway that
re-reads it never sees half a file). :func:`read_clients` raises :class:`ClientConfigError`
naming the file and the field; its messages never carry a value from the file.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import itertools
import json
import os
import re
import secrets
import stat
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker import ConfigurationError
from broker.signing import InvalidSecretError, decode_secret

from .methods import known_private

__all__ = [
    "CONFIG_NAME",
    "RESERVED_NAMES",
    "ClientConfigError",
    "ClientEntry",
    "add_client",
    "default_config_path",
    "new_key",
    "new_secret",
    "read_clients",
    "remove_client",
]

CONFIG_NAME = "gateway.toml"
#: ``client`` labels the gateway uses itself
RESERVED_NAMES = frozenset({"account-key", "unknown", "monitor", "internal", "other"})
HEADER = (
    "# krakenwatch gateway: client credentials (krakenwatch gateway add-client / remove-client).\n"
    "# Keep this file mode 0600: it holds the secrets the gateway verifies requests with.\n"
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_FIELDS = ("name", "account", "key", "secret", "allow", "order_share")
_REQUIRED = ("name", "account", "key", "secret")
_TABLE = re.compile(r"^\s*\[")
_CLIENTS_TABLE = re.compile(r"^\s*\[\[\s*clients\s*\]\]\s*(#.*)?$")
#: the least a client secret decodes to (generated ones are 64 bytes)
MIN_SECRET_BYTES = 32


class ClientConfigError(ConfigurationError):
    """The client credentials file cannot be used; the message names the file and the field."""

    remedy = "Fix the named field of the gateway's client file (or its mode: chmod 600)."


@dataclass(frozen=True)
class ClientEntry:
    name: str
    account: str
    key: str
    secret: str = field(repr=False)
    #: only these methods (``None``: every method but those that move funds)
    allow: tuple[str, ...] | None = None
    #: at most this share (0 < share <= 1) of each pair's order budget (``None``: no own limit)
    order_share: float | None = None


def default_config_path(data_dir: Path) -> Path:
    """Where the client file lives unless ``--config`` says otherwise."""
    return data_dir / CONFIG_NAME


def new_key() -> str:
    """A fresh client key: 56 base64 characters, like a Kraken API key."""
    return base64.b64encode(secrets.token_bytes(42)).decode("ascii")


def new_secret() -> str:
    """A fresh client secret: base64 of 64 random bytes (88 characters), like Kraken's."""
    return base64.b64encode(secrets.token_bytes(64)).decode("ascii")


def check_name(name: str, where: str) -> None:
    if not _NAME.fullmatch(name):
        raise ClientConfigError(
            f"{where}: {name!r} is not a client name (letters, digits, '_', '.', '-'; up to 64)"
        )
    if name in RESERVED_NAMES:
        raise ClientConfigError(f"{where}: {name!r} is reserved; pick another name")


def check_allow(methods: Sequence[object], where: str) -> tuple[str, ...]:
    if not methods:
        raise ClientConfigError(f"{where}: an empty list allows nothing; leave it out instead")
    for i, method in enumerate(methods):
        if not isinstance(method, str) or not known_private(method):
            raise ClientConfigError(
                f"{where}[{i}]: {str(method)[:64]!r} is not a private Kraken method the gateway "
                "knows (exact case, e.g. 'Balance', 'AddOrder'; see the README's method table)"
            )
    return tuple(dict.fromkeys(str(m) for m in methods))


def _open_to_others(mode: int) -> bool:
    return bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def read_clients(path: Path) -> list[ClientEntry]:
    """The clients of ``path`` (none when the file does not exist); :class:`ClientConfigError`
    when it is open to group or others, not TOML, or a field is wrong."""
    try:
        info = path.stat()
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ClientConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    if _open_to_others(info.st_mode):
        raise ClientConfigError(
            f"{path}: readable or writable by group or others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); it holds client secrets: chmod 600 {path}"
        )
    return parse_clients(raw, path)


def parse_clients(raw: bytes, path: Path) -> list[ClientEntry]:
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ClientConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ClientConfigError(f"{path}: not valid TOML: {exc}") from None
    for name in doc:
        if name != "clients":
            raise ClientConfigError(f"{path}: {name}: unknown field (the file holds [[clients]])")
    tables = doc.get("clients", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ClientConfigError(f"{path}: clients: must be [[clients]] tables")
    entries = [_entry(table, f"{path}: clients[{i}]") for i, table in enumerate(tables)]
    for attribute in ("name", "key"):
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            value = getattr(entry, attribute)
            if value in seen:
                shown = repr(value) if attribute == "name" else "the same key as another client"
                raise ClientConfigError(f"{path}: clients[{i}].{attribute}: {shown} is used twice")
            seen.add(value)
    return entries


def _entry(table: dict[str, Any], where: str) -> ClientEntry:
    for name in table:
        if name not in _FIELDS:
            raise ClientConfigError(f"{where}.{name}: unknown field (use {', '.join(_FIELDS)})")
    for name in _REQUIRED:
        if not isinstance(table.get(name), str) or not table[name].strip():
            raise ClientConfigError(f"{where}.{name}: missing, or not a non-empty string")
    name, key, secret = table["name"], table["key"].strip(), table["secret"].strip()
    check_name(name, f"{where}.name")
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise ClientConfigError(f"{where}.key: control, blank or non-ASCII characters")
    try:
        decoded = decode_secret(secret)
    except InvalidSecretError as exc:
        raise ClientConfigError(f"{where}.secret: {exc.message}") from None
    if len(decoded) < MIN_SECRET_BYTES:
        raise ClientConfigError(
            f"{where}.secret: shorter than {MIN_SECRET_BYTES} bytes; issue a new credential"
        )
    allow = table.get("allow")
    if allow is not None and not isinstance(allow, list):
        raise ClientConfigError(f"{where}.allow: must be a list of method names")
    return ClientEntry(
        name,
        table["account"].strip(),
        key,
        secret,
        None if allow is None else check_allow(allow, f"{where}.allow"),
        _order_share(table.get("order_share"), f"{where}.order_share"),
    )


def _order_share(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ClientConfigError(f"{where}: must be a number above 0 and at most 1 (0.5: half)")
    return float(value)


# -- writing ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One writer of the file at a time (a lock file beside it)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once, mode 0600."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _current(path: Path) -> tuple[str, list[ClientEntry]]:
    """The file's text and clients, checked (a broken file is never added to)."""
    entries = read_clients(path)
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    return text, entries


def _block(entry: ClientEntry) -> str:
    quoted = json.dumps  # a JSON string of ASCII text is a TOML basic string
    lines = [
        "[[clients]]",
        f"name = {quoted(entry.name)}",
        f"account = {quoted(entry.account)}",
        f"key = {quoted(entry.key)}",
        f"secret = {quoted(entry.secret)}",
    ]
    if entry.allow is not None:
        lines.append(f"allow = [{', '.join(quoted(m) for m in entry.allow)}]")
    if entry.order_share is not None:
        lines.append(f"order_share = {entry.order_share!r}")
    return "\n".join(lines) + "\n"


def add_client(
    path: Path,
    name: str,
    account: str,
    allow: Sequence[str] | None = None,
    order_share: float | None = None,
) -> ClientEntry:
    """Append a client with a fresh key and secret to ``path`` (created, mode 0600)."""
    check_name(name, "NAME")
    chosen = None if allow is None else check_allow(list(allow), "--allow")
    share = _order_share(order_share, "--order-share")
    with _locked(path):
        text, entries = _current(path)
        if any(e.name == name for e in entries):
            raise ClientConfigError(
                f"NAME: a client named {name!r} exists in {path}; remove it first "
                "(remove-client) or pick another name"
            )
        entry = ClientEntry(name, account, new_key(), new_secret(), chosen, share)
        updated = text.rstrip("\n") + "\n\n" + _block(entry)
        if [e.name for e in parse_clients(updated.encode(), path)] != [
            *(e.name for e in entries),
            name,
        ]:
            raise ClientConfigError(f"{path}: cannot append to it safely; check it by hand")
        _write(path, updated)
    return entry


def remove_client(path: Path, name: str) -> ClientEntry:
    """Take the client ``name`` out of ``path`` (the rest of the text, comments included, stays)."""
    with _locked(path):
        text, entries = _current(path)
        found = [e for e in entries if e.name == name]
        if not found:
            raise ClientConfigError(f"NAME: no client named {name!r} in {path}")
        lines = text.splitlines(keepends=True)
        starts = [i for i, line in enumerate(lines) if _TABLE.match(line)] + [len(lines)]
        kept = lines
        for start, end in itertools.pairwise(starts):
            if not _CLIENTS_TABLE.match(lines[start]):
                continue
            block = "".join(lines[start:end])
            if [e.name for e in parse_clients(block.encode(), path)] == [name]:
                kept = lines[:start] + lines[end:]
                break
        updated = "".join(kept)
        left = [e.name for e in parse_clients(updated.encode(), path)]
        if left != [e.name for e in entries if e.name != name]:
            raise ClientConfigError(f"{path}: cannot remove {name!r} safely; edit it by hand")
        _write(path, updated)
    return found[0]
