"""Hosts as Linux network namespaces, for the multi-host fault suite (needs root and iproute2).

A :class:`Lab` (a context manager) builds, under one random run id (``kw`` + 6 hex digits, so
parallel runs never collide):

* a "switch" namespace holding one bridge per network (``store``, ``kraken``...): nothing is
  ever added to the root namespace's interfaces;
* per host (:meth:`Lab.add_host`), a namespace ``kw<id>-<name>`` with its loopback up and, per
  network it joins, a veth named after the network whose far end is a port of that network's
  bridge;
* addresses in one private /24 picked for the run (``10.213.x.0/24``, one not routed by the root
  namespace), split into a /26 per network: ``store`` 10.213.x.1-62, ``kraken`` .65-126...

Faults are link states: :meth:`Lab.cut` takes a host's port on a network down at the switch (its
packets vanish, both ways: a partition, not a refusal) and :meth:`Lab.heal` brings it back.

:meth:`Host.spawn` runs a command in the host (``ip netns exec``) in its own session. When the lab
closes, even after a failure, Ctrl-C or SIGTERM, every process it started is stopped (SIGCONT, then
SIGTERM, SIGKILL after a grace), then any process still inside one of its namespaces, by its pid,
and the namespaces are deleted (their links with them).

:func:`netns_support` says whether this machine allows it, and why not.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from .procs import spawn

__all__ = ["NETWORKS", "Host", "Lab", "NetnsSupport", "lab_namespaces", "netns_support"]

NETWORKS = ("store", "kraken")
PREFIX = "kw"
#: the /16 the per-run /24 is picked from
SUPERNET = "10.213"
_NETWORK_SIZE = 64  # a /26 per network inside the run's /24
STOP_GRACE_S = 3.0


@dataclass(frozen=True)
class NetnsSupport:
    ok: bool
    reason: str


def _ip(*args: str, check: bool = True, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done


@functools.cache
def netns_support() -> NetnsSupport:
    """Whether network namespaces, veth pairs and bridges can be made here (root and a working
    ``ip netns add``), and why not."""
    if os.geteuid() != 0:
        return NetnsSupport(False, "not root: network namespaces need root (CAP_SYS_ADMIN)")
    if shutil.which("ip") is None:
        return NetnsSupport(False, "`ip` is not installed (Debian package iproute2)")
    probe = f"{PREFIX}{secrets.token_hex(3)}-probe"
    try:
        added = _ip("netns", "add", probe, check=False)
        if added.returncode != 0:
            return NetnsSupport(False, f"`ip netns add` failed: {added.stderr.strip()}")
        for args in (
            ("link", "add", "br0", "type", "bridge"),
            ("link", "add", "v0", "type", "veth", "peer", "name", "v1"),
        ):
            made = _ip("-n", probe, *args, check=False)
            if made.returncode != 0:
                return NetnsSupport(False, f"`ip {' '.join(args)}` failed: {made.stderr.strip()}")
    except (OSError, subprocess.SubprocessError) as exc:
        return NetnsSupport(False, f"`ip netns` cannot be run: {exc}")
    finally:
        _ip("netns", "del", probe, check=False)
    return NetnsSupport(True, "root, ip netns, veth and bridge all work")


def lab_namespaces(run_id: str | None = None) -> list[str]:
    """The namespaces that exist now and belong to a lab (``run_id``'s, or any lab's)."""
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    names = [line.split()[0] for line in listed if line.strip()]
    start = f"{run_id}-" if run_id else PREFIX
    return [n for n in names if n.startswith(start) and "-" in n]


def _free_subnet() -> ipaddress.IPv4Network:
    """A 10.213.x.0/24 that the root namespace neither addresses nor routes."""
    routes = _ip("-4", "route", "show", "table", "all", check=False).stdout
    used = _ip("-4", "-o", "addr", check=False).stdout + routes
    for _ in range(200):
        net = ipaddress.IPv4Network(f"{SUPERNET}.{secrets.randbelow(256)}.0/24")
        if f"{SUPERNET}.{net.network_address.packed[2]}." not in used:
            return net
    raise RuntimeError(f"no free {SUPERNET}.x.0/24 for the lab")


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process, from ``/proc/<pid>/stat``; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], fields[19]


@dataclass
class Host:
    """One namespace: ``addresses`` by network; processes started here are stopped by the lab."""

    name: str
    ns: str
    addresses: dict[str, str]
    lab: Lab = field(repr=False)

    @property
    def prefix(self) -> list[str]:
        """The command prefix that runs a command in this host."""
        return ["ip", "netns", "exec", self.ns]

    def address(self, network: str) -> str:
        return self.addresses[network]

    def run(
        self, argv: Sequence[str], *, timeout: float = 30.0, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` here to completion, its output captured as text."""
        return subprocess.run(
            [*self.prefix, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=None if env is None else dict(env),
        )

    def spawn(
        self,
        argv: Sequence[str],
        log: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` here in its own session, output appended to ``log`` (``env`` over a
        clean environment, as :func:`testkit.procs.spawn`); stopped when the lab closes."""
        proc = spawn([*self.prefix, *argv], log, env=env, cwd=cwd)
        self.lab.processes.append(proc)
        return proc


class Lab:
    """The switch, its networks and the hosts; use as a context manager (see the module)."""

    def __init__(self, networks: Sequence[str] = NETWORKS) -> None:
        support = netns_support()
        if not support.ok:
            raise RuntimeError(f"network namespaces are not available: {support.reason}")
        self.id = f"{PREFIX}{secrets.token_hex(3)}"
        self.subnet = _free_subnet()
        self.networks = list(networks)
        if len(self.networks) > 256 // _NETWORK_SIZE:
            raise ValueError("at most 4 networks per lab")
        self.switch = f"{self.id}-switch"
        self.hosts: dict[str, Host] = {}
        self.processes: list[subprocess.Popen[bytes]] = []
        self._namespaces: list[str] = []
        self._ports: dict[tuple[str, str], str] = {}
        self._previous_sigterm: Any = None
        #: every process the lab started or found in its namespaces: pid -> its start time
        self.seen: dict[int, str] = {}

    # ------------------------------------------------------------------ building
    def _add_namespace(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self._namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def _open(self) -> None:
        self._add_namespace(self.switch)
        for network in self.networks:
            bridge = f"br-{network}"[:15]
            _ip("-n", self.switch, "link", "add", bridge, "type", "bridge")
            _ip("-n", self.switch, "link", "set", bridge, "up")

    def _netmask(self, network: str) -> tuple[int, int]:
        """(first host address as an int, prefix length) of ``network``'s /26."""
        base = int(self.subnet.network_address) + self.networks.index(network) * _NETWORK_SIZE
        return base, 32 - (_NETWORK_SIZE - 1).bit_length()

    def add_host(self, name: str, networks: Sequence[str] = NETWORKS) -> Host:
        """A new host ``name`` on ``networks`` (each host gets the same last octet on each)."""
        if name in self.hosts or not name.replace("_", "").isalnum():
            raise ValueError(f"host name {name!r} is taken or not alphanumeric")
        index = len(self.hosts) + 1
        if index >= _NETWORK_SIZE - 1:
            raise ValueError("too many hosts")
        host = Host(name, f"{self.id}-{name}", {}, self)
        self._add_namespace(host.ns)
        for network in networks:
            base, length = self._netmask(network)
            address = str(ipaddress.IPv4Address(base + index))
            port = f"{network[:3]}{index}"
            inside = network[:15]
            _ip(
                "-n",
                self.switch,
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                inside,
                "netns",
                host.ns,
            )
            _ip("-n", self.switch, "link", "set", port, "master", f"br-{network}"[:15], "up")
            _ip("-n", host.ns, "addr", "add", f"{address}/{length}", "dev", inside)
            _ip("-n", host.ns, "link", "set", inside, "up")
            host.addresses[network] = address
            self._ports[(name, network)] = port
        self.hosts[name] = host
        return host

    # ------------------------------------------------------------------ faults
    def cut(self, host: str, network: str) -> None:
        """Partition ``host`` from ``network``: its switch port goes down (packets vanish)."""
        _ip("-n", self.switch, "link", "set", self._ports[(host, network)], "down")

    def heal(self, host: str, network: str) -> None:
        _ip("-n", self.switch, "link", "set", self._ports[(host, network)], "up")

    def is_cut(self, host: str, network: str) -> bool:
        shown = _ip("-n", self.switch, "-o", "link", "show", self._ports[(host, network)]).stdout
        return "state UP" not in shown and ",UP" not in shown

    # ------------------------------------------------------------------ teardown
    def _stop_processes(self) -> None:
        self._note_pids(p.pid for p in self.processes)
        for ns in self._namespaces:
            self._note_pids(int(p) for p in _ip("netns", "pids", ns, check=False).stdout.split())
        running = [p for p in self.processes if p.poll() is None]
        for sig in (signal.SIGCONT, signal.SIGTERM):
            for proc in running:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, sig)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
        for proc in self.processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def _kill_leftovers(self) -> None:
        """Any process still inside one of the lab's namespaces (started by one of ours)."""
        for ns in self._namespaces:
            pids = [int(p) for p in _ip("netns", "pids", ns, check=False).stdout.split()]
            self._note_pids(pids)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _note_pids(self, pids: Iterable[int]) -> None:
        for pid in pids:
            stat = _stat(pid)
            if stat is not None:
                self.seen.setdefault(pid, stat[1])

    def survivors(self) -> list[int]:
        """The lab's processes still alive (a pid now used by another process does not count)."""
        return [
            pid
            for pid, started in sorted(self.seen.items())
            if (stat := _stat(pid)) is not None and stat[1] == started and stat[0] != "Z"
        ]

    def close(self) -> None:
        """Stop every process, delete every namespace (idempotent; errors are collected)."""
        problems = []
        try:
            self._stop_processes()
        finally:
            self._kill_leftovers()
            for ns in reversed(self._namespaces):
                done = _ip("netns", "del", ns, check=False)
                if done.returncode != 0 and ns in lab_namespaces(self.id):
                    problems.append(f"{ns}: {done.stderr.strip()}")
            self._namespaces = [ns for ns in self._namespaces if ns in lab_namespaces(self.id)]
        if problems:
            raise RuntimeError(f"lab {self.id}: namespaces left behind: {problems}")

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds through __exit__, which cleans up

    def __enter__(self) -> Lab:
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            self._open()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close()
        finally:
            if self._previous_sigterm is not None:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
                self._previous_sigterm = None
