"""The Redis a store spec names, connected: one server (``redis://``, ``rediss://``) or whichever
primary the Sentinels name now (``redis-sentinel://``, ``rediss-sentinel://``); writes that count
only once replicas have them (:func:`replicated`); and Redis trouble as the store's error, so that
nothing is sent (:func:`failing_closed`).

Needs redis-py (``pip install 'krakenwatch[redis]'``); imported only when a Redis store is opened.

With Sentinels, redis-py asks them for the primary before each new connection and drops the
connections to a primary that was demoted; while no Sentinel names a reachable primary every call
raises :class:`redis.sentinel.MasterNotFoundError` (a connection error: the stores fail closed).
Replication is asynchronous, so a failover may lose the primary's last writes; a write made with
:func:`replicated` has reached ``replicas`` replicas before the caller goes on, so a failover to
one of them keeps it, and an old primary cut off from its replicas cannot acknowledge anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import MasterNotFoundError, Sentinel

from .errors import NonceStoreUnavailable
from .storespec import RedisSpec

__all__ = ["NotReplicatedError", "connect", "failing_closed", "replicated", "run_script"]

#: how long a write waits for its replicas before it counts as not written
WAIT_MS = 1000
#: how long connecting to a Sentinel and its answer may take
SENTINEL_TIMEOUT_S = 0.5


class NotReplicatedError(RedisError):
    """Fewer replicas than asked acknowledged a write in time: it may not survive a failover."""


def connect(spec: RedisSpec, *, io_timeout_s: float, health_check_interval: int = 0) -> redis.Redis:
    """A client for the store ``spec`` names (see the module docstring)."""
    timeouts: dict[str, Any] = {
        "socket_connect_timeout": io_timeout_s,
        "socket_timeout": max(io_timeout_s, WAIT_MS / 1000 + 1.0),
    }
    if spec.sentinel is None:
        return redis.Redis.from_url(
            spec.url, health_check_interval=health_check_interval, **timeouts
        )
    found = spec.sentinel
    # Sentinels are asked one after the other until one names the primary: a short timeout each,
    # so that a call refused while they are cut off is refused soon
    quick = {"socket_connect_timeout": SENTINEL_TIMEOUT_S, "socket_timeout": SENTINEL_TIMEOUT_S}
    sentinels = Sentinel(
        list(found.addresses),
        sentinel_kwargs={**quick, "password": found.sentinel_password, "ssl": found.ssl},
    )
    client: redis.Redis = sentinels.master_for(
        found.service,
        db=found.db,
        username=found.username,
        password=found.password,
        ssl=found.ssl,
        health_check_interval=health_check_interval,
        **timeouts,
    )
    return client


def replicated(
    client: redis.Redis,
    replicas: int,
    commands: Callable[[Any], object],
    *,
    scripts: Sequence[Script] = (),
) -> list[Any]:
    """The results of the commands ``commands(target)`` runs on ``target``; with ``replicas``,
    on a pipeline followed by ``WAIT`` on the same connection (``WAIT`` counts that connection's
    writes), :class:`NotReplicatedError` when fewer replicas acknowledged within :data:`WAIT_MS`
    (a command's own error is raised first). Without, on ``client`` itself: ``commands`` must
    return its command's result. Scripts run with :func:`run_script`; ``scripts`` are loaded
    once more when the server does not know them (a new primary)."""
    if replicas == 0:
        return [commands(client)]
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        commands(pipe)
        pipe.execute_command("WAIT", replicas, WAIT_MS)  # type: ignore[no-untyped-call]
        try:
            results = pipe.execute()
        except NoScriptError:
            if attempt == 2 or not scripts:
                raise
            for script in scripts:
                client.script_load(script.script)
            continue
        acked = int(results.pop())
        if acked < replicas:
            raise NotReplicatedError(
                f"{acked} of {replicas} replica(s) acknowledged the write within {WAIT_MS} ms"
            )
        return results
    raise AssertionError("unreachable")


def run_script(target: Any, script: Script, keys: list[str], args: list[Any]) -> object:
    """``script`` on ``target``: a client (loaded when the server does not know it), or a
    pipeline, where it is sent by its digest alone (no ``SCRIPT EXISTS`` round trip first;
    :func:`replicated` loads it when the server answers ``NOSCRIPT``)."""
    if isinstance(target, Pipeline):
        return target.evalsha(script.sha, len(keys), *keys, *args)
    return script(keys=keys, args=args, client=target)


@contextlib.contextmanager
def failing_closed(where: str) -> Iterator[None]:
    """Redis trouble as :class:`~broker.errors.NonceStoreUnavailable` naming the store at
    ``where`` (a masked spec: never a password); the held lease's own ``KWLEASE`` / ``KWUNIT``
    replies pass through to :mod:`broker.redislease`."""
    try:
        yield
    except MasterNotFoundError:
        raise NonceStoreUnavailable(
            f"no Redis primary is known to the Sentinels of {where} (a failover in "
            "progress?); nothing was sent"
        ) from None
    except NotReplicatedError as exc:
        raise NonceStoreUnavailable(
            f"Redis at {where}: {exc} (a replica down, or this primary cut off from them); "
            "nothing was sent"
        ) from None
    except ReadOnlyError:
        raise NonceStoreUnavailable(
            f"Redis at {where} is read-only (a replica?); nothing was sent"
        ) from None
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise NonceStoreUnavailable(
            f"Redis at {where} is unreachable or not answering ({type(exc).__name__}); "
            "nothing was sent"
        ) from None
    except ResponseError as exc:  # NOREPLICAS, NOPERM, OOM, MISCONF, KWINFO...
        if "KWLEASE" in str(exc) or "KWUNIT" in str(exc):
            raise
        raise NonceStoreUnavailable(
            f"Redis at {where} refused the store's command ({_first_word(exc)}: see "
            "docs/hosts.md for what the store needs); nothing was sent"
        ) from None


def _first_word(exc: ResponseError) -> str:
    """The error code of a Redis error reply (after a pipeline's ``... caused error:``)."""
    text = str(exc).rpartition("caused error: ")[2]
    return (text.split() or ["ERR"])[0][:40]
