"""``TCP_NODELAY`` for the HTTP servers of this process.

A response is written as two sends, its headers then its body. Without ``TCP_NODELAY`` (Nagle's
algorithm on), a body smaller than one segment waits until the client acknowledges the headers,
and a keep-alive client delays that acknowledgement by up to 40 ms: on loopback (one segment is
64 KiB) every gzipped ``/metrics`` scrape took 40 ms longer than its work. asyncio turns Nagle off
only for sockets created with ``proto=IPPROTO_TCP``, which neither Streamlit's server nor
``socket.create_server`` does; an accepted connection inherits the option from its listening
socket (Linux), so setting it there covers every connection.
"""

from __future__ import annotations

import os
import socket
import stat

__all__ = ["no_delay", "no_delay_on_listening_sockets"]

_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def no_delay(sock: socket.socket) -> bool:
    """Turn Nagle's algorithm off on a TCP socket (its future connections too, when it listens);
    ``False`` for any other socket."""
    if sock.type != socket.SOCK_STREAM or sock.family not in _TCP_FAMILIES:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        return False
    return True


def no_delay_on_listening_sockets() -> int:
    """:func:`no_delay` on every listening TCP socket of this process (the servers that bind
    their own sockets, e.g. Streamlit's); returns how many. Needs ``/dev/fd`` (Linux, macOS)."""
    try:
        descriptors = [int(name) for name in os.listdir("/dev/fd")]
    except OSError:
        return 0
    found = 0
    for fd in descriptors:
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(fd))  # a second descriptor of the same socket
        except OSError:
            continue
        with sock:
            try:
                listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
            except OSError:
                listening = False
            if listening and no_delay(sock):
                found += 1
    return found
