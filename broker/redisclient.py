"""The Redis a store spec names, connected: one server (``redis://``, ``rediss://``) or whichever
primary the Sentinels name now (``redis-sentinel://``, ``rediss-sentinel://``); and writes that
count only once replicas have them (:func:`replicated`).

Needs redis-py (``pip install 'krakenwatch[redis]'``); imported only when a Redis store is opened.

With Sentinels, redis-py asks them for the primary before each new connection and drops the
connections to a primary that was demoted; while no Sentinel names a reachable primary every call
raises :class:`redis.sentinel.MasterNotFoundError` (a connection error: the stores fail closed).
Replication is asynchronous, so a failover may lose the primary's last writes; a write made with
:func:`replicated` has reached ``replicas`` replicas before the caller goes on, so a failover to
one of them keeps it, and an old primary cut off from its replicas cannot acknowledge anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError, RedisError
from redis.sentinel import Sentinel

from .storespec import RedisSpec

__all__ = ["NotReplicatedError", "connect", "replicated", "run_script"]

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
