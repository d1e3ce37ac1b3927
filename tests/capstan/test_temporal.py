from __future__ import annotations

import uuid
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.contrib.pydantic import pydantic_data_converter

from capstan.settings import Settings
from capstan.temporal import SEARCH_ATTRIBUTES, connect_temporal, ensure_search_attributes


async def _custom_attributes(client, namespace: str) -> dict[str, int]:
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return dict(listed.custom_attributes)


async def test_connect_uses_settings(temporal_env):
    target = temporal_env.client.service_client.config.target_host
    settings = Settings(temporal_address=target, temporal_namespace="default")
    client = await connect_temporal(settings)
    assert client.namespace == "default"
    assert client.data_converter is pydantic_data_converter
    assert await client.service_client.check_health()


async def test_lazy_connect_needs_no_server():
    client = await connect_temporal(Settings(temporal_address="127.0.0.1:1"), lazy=True)
    assert client.namespace == "default"


async def test_search_attributes_registered_once(temporal_env):
    client = temporal_env.client
    namespace = f"capstan-test-{uuid.uuid4().hex[:8]}"
    retention = Duration()
    retention.FromTimedelta(timedelta(days=1))
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=retention)
    )
    assert not set(SEARCH_ATTRIBUTES) & set(await _custom_attributes(client, namespace))

    await ensure_search_attributes(client, namespace)
    await ensure_search_attributes(client, namespace)  # idempotent

    registered = await _custom_attributes(client, namespace)
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    assert {name: registered.get(name) for name in SEARCH_ATTRIBUTES} == dict.fromkeys(
        SEARCH_ATTRIBUTES, keyword
    )
