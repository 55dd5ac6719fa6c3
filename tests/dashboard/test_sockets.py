"""TCP_NODELAY for the servers' connections (no 40 ms wait for a delayed acknowledgement)."""

from __future__ import annotations

import socket

from dashboard.web.sockets import no_delay_on_listening_sockets


def nagle_off(sock: socket.socket) -> bool:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_connections_of_a_listening_socket_get_nagle_off() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:  # as Streamlit binds: proto 0
        with socket.create_connection(server.getsockname()):
            accepted, _ = server.accept()
            with accepted:
                assert not nagle_off(accepted), "asyncio would leave Nagle on for this one"
        assert no_delay_on_listening_sockets() >= 1
        with socket.create_connection(server.getsockname()) as after:
            accepted, _ = server.accept()
            with accepted:
                assert nagle_off(accepted)
            assert not nagle_off(after), "the client's own socket is not touched"
