from __future__ import annotations

import socket

import pytest

from capstan.devserver import DevServerError, port_claims
from capstan.ports import PortClaim, PortInUseError, check_ports_free, is_port_free
from capstan.settings import Settings


def test_free_port_is_free():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert is_port_free("127.0.0.1", port)


def test_listening_port_is_not_free(listening_socket):
    assert not is_port_free("127.0.0.1", listening_socket.getsockname()[1])


def test_port_in_use_error_names_port_and_setting(listening_socket):
    port = listening_socket.getsockname()[1]
    with pytest.raises(PortInUseError) as caught:
        check_ports_free([PortClaim(port, "CAPSTAN_API_PORT")])
    assert str(caught.value) == f"port {port} (CAPSTAN_API_PORT) is already in use"
    assert caught.value.port == port
    assert caught.value.field == "CAPSTAN_API_PORT"


def test_wildcard_listener_blocks_loopback(listening_socket):
    # A server on 0.0.0.0 takes the port on 127.0.0.1 too.
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not is_port_free("127.0.0.1", port)


def test_same_port_configured_twice():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(
        PortInUseError,
        match=f"port {port} is configured twice: by CAPSTAN_API_PORT and by CAPSTAN_TEMPORAL_UI_PORT",
    ):
        check_ports_free([PortClaim(port, "CAPSTAN_API_PORT"), PortClaim(port, "CAPSTAN_TEMPORAL_UI_PORT")])


def test_port_claims_with_dev_server():
    claims = port_claims(Settings(api_port=8080, temporal_port=7233, temporal_ui_port=8233))
    assert [(c.port, c.setting.split(",")[-1].strip()) for c in claims] == [
        (8080, "CAPSTAN_API_PORT"),
        (7233, "CAPSTAN_TEMPORAL_PORT"),
        (8233, "CAPSTAN_TEMPORAL_UI_PORT"),
        (7243, "CAPSTAN_TEMPORAL_PORT+10"),
        (7244, "CAPSTAN_TEMPORAL_PORT+11"),
    ]


def test_port_claims_with_external_temporal():
    claims = port_claims(Settings(api_port=9000, temporal_address="temporal:7233"))
    assert [c.port for c in claims] == [9000]


def test_derived_port_above_range():
    with pytest.raises(DevServerError, match="port 65540"):
        port_claims(Settings(temporal_port=65530))
