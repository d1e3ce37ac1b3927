"""Connecting to Temporal over mutual TLS and with an API key, built from the settings."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode, TLSConfig
from temporalio.testing import WorkflowEnvironment

from capstan.settings import Settings
from capstan.temporal import (
    SEARCH_ATTRIBUTES,
    TemporalSettingsError,
    connect_temporal,
    ensure_search_attributes,
)
from capstan.temporal import temporal_tls as tls_of
from tests.deploy.tls import SERVER_NAME, Pki, make_pki, tls_proxy


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def _target(env: WorkflowEnvironment) -> str:
    target: str = env.client.service_client.config.target_host
    return target


async def test_mutual_tls_through_a_tls_endpoint(temporal_env: WorkflowEnvironment, pki: Pki) -> None:
    async with tls_proxy(pki, _target(temporal_env)) as (address, clients):
        settings = Settings(
            temporal_address=address,
            temporal_tls_ca_file=pki.ca,
            temporal_tls_cert_file=pki.client_cert,
            temporal_tls_key_file=pki.client_key,
            temporal_tls_server_name=SERVER_NAME,  # the certificate's name, not 127.0.0.1
        )
        client = await connect_temporal(settings)
        assert await client.service_client.check_health()
        assert await client.count_workflows() is not None  # a namespace RPC, through the proxy
        assert clients and set(clients) == {"capstan-worker"}  # it presented our client certificate

        # the same endpoint refuses a client without its certificate, and one that trusts another CA
        no_cert = settings.model_copy(update={"temporal_tls_cert_file": None, "temporal_tls_key_file": None})
        with pytest.raises(RuntimeError):
            await (await connect_temporal(no_cert, lazy=True)).service_client.check_health()
        plain = Settings(temporal_address=address)
        with pytest.raises(RuntimeError):
            await (await connect_temporal(plain, lazy=True)).service_client.check_health()


def test_tls_settings(pki: Pki) -> None:
    assert tls_of(Settings()) is False
    assert tls_of(Settings(temporal_tls=True)) is True  # the system's CAs
    assert tls_of(Settings(temporal_api_key="key")) is True  # Temporal Cloud: API keys need TLS
    config = tls_of(
        Settings(
            temporal_tls_ca_file=pki.ca,
            temporal_tls_cert_file=pki.client_cert,
            temporal_tls_key_file=pki.client_key,
            temporal_tls_server_name="x.tmprl.cloud",
        )
    )
    assert isinstance(config, TLSConfig)
    assert config.server_root_ca_cert == pki.ca.read_bytes()
    assert (config.client_cert, config.client_private_key) == (
        pki.client_cert.read_bytes(),
        pki.client_key.read_bytes(),
    )
    assert config.domain == "x.tmprl.cloud"


@pytest.mark.parametrize(
    ("update", "field", "message"),
    [
        (
            {"temporal_tls_ca_file": Path("/nonexistent/ca.pem")},
            "CAPSTAN_TEMPORAL_TLS_CA_FILE",
            "cannot read",
        ),
        ({"temporal_tls_cert_file": "CERT"}, "CAPSTAN_TEMPORAL_TLS_KEY_FILE", "go together"),
        ({"temporal_tls_key_file": "KEY"}, "CAPSTAN_TEMPORAL_TLS_CERT_FILE", "go together"),
        ({"temporal_tls_ca_file": "NOT_PEM"}, "CAPSTAN_TEMPORAL_TLS_CA_FILE", "not a PEM file"),
    ],
)
async def test_bad_tls_settings_name_the_setting(
    pki: Pki, tmp_path: Path, update: dict[str, Any], field: str, message: str
) -> None:
    (tmp_path / "junk.txt").write_text("not a certificate")
    files = {"CERT": pki.client_cert, "KEY": pki.client_key, "NOT_PEM": tmp_path / "junk.txt"}
    settings = Settings(**{name: files.get(value, value) for name, value in update.items()})
    with pytest.raises(TemporalSettingsError) as raised:
        await connect_temporal(settings, lazy=True)  # fails before any connection is tried
    assert raised.value.field == field
    assert field in str(raised.value) and message in str(raised.value)


async def test_connect_with_api_key_sends_it_over_tls(temporal_env: WorkflowEnvironment) -> None:
    client = await connect_temporal(
        Settings(temporal_address=_target(temporal_env), temporal_api_key="k-1"), lazy=True
    )
    assert client.service_client.config.api_key == "k-1"
    assert client.service_client.config.tls is True


class _Refusing:
    """Temporal Cloud's operator service as an API key sees it (outside this machine)."""

    def __init__(self, refuse: str) -> None:
        self.refuse = refuse

    async def list_search_attributes(self, request: object) -> object:
        if self.refuse == "list":
            raise RPCError("Request unauthorized.", RPCStatusCode.PERMISSION_DENIED, b"")
        return SimpleNamespace(custom_attributes={})

    async def add_search_attributes(self, request: object) -> None:
        raise RPCError("Request unauthorized.", RPCStatusCode.PERMISSION_DENIED, b"")


@pytest.mark.parametrize("refuse", ["list", "add"])
async def test_refused_search_attributes_are_logged_not_fatal(
    refuse: str, caplog: pytest.LogCaptureFixture
) -> None:
    client: Any = SimpleNamespace(operator_service=_Refusing(refuse))
    with caplog.at_level(logging.ERROR, logger="capstan.temporal"):
        assert await ensure_search_attributes(client, "capstan.a1b2c") is False
    (record,) = [r for r in caplog.records if r.name == "capstan.temporal"]
    assert "create them on the namespace yourself" in record.getMessage()
    command = record.__dict__["temporal_cloud"]
    assert command.startswith("tcld namespace search-attributes add --namespace capstan.a1b2c")
    assert all(f"--search-attribute {name}=Keyword" in command for name in SEARCH_ATTRIBUTES)
    assert "PERMISSION_DENIED" in record.__dict__["refused"]


async def test_other_search_attribute_errors_still_raise() -> None:
    class Missing:
        async def list_search_attributes(self, request: object) -> object:
            raise RPCError("namespace not found", RPCStatusCode.NOT_FOUND, b"")

    client: Any = SimpleNamespace(operator_service=Missing())
    with pytest.raises(RPCError):
        await ensure_search_attributes(client, "nope")
