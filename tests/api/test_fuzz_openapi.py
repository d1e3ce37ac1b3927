"""Schemathesis over the gateway's whole OpenAPI: no 5xx, and every response as the schema documents it.

The app runs in process over ASGI (schemathesis starts its lifespan, so the pool, the migrations and
the lazy Temporal client are real) on the test's own PostgreSQL database and the session's Temporal
dev server, with a task queue of its own and no worker: a trigger the fuzzer gets through starts a
context workflow that just waits.

Random data rarely gets past the first check of a route, so the generated requests are steered
half of the time, never exclusively:

* a project with stages and services is created first, and path and query parameters that name a
  project, stage or service are replaced by one of those names, so the code behind the 404s runs;
* bodies that must decode (base64 shipyards and resources, secrets, Keptn events) get bodies of
  the right shape whose leaves are still fuzzed, so the code behind the 400s runs.

DELETE of a project or a service is pointed at a throwaway project and service instead, so that
one early example cannot take the project away from every later operation.

Every operation runs; the budget is bounded (``MAX_EXAMPLES`` per operation, deterministic
generation) to keep the test well under a minute and a half.
"""

from __future__ import annotations

import base64
import datetime
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from capstan.secret_box import generate_secret_key
from capstan.settings import Settings
from keptn.secrets import KEPTN_SCOPES
from tests.fixtures.app_client import TOKEN
from tests.store.factories import SHIPYARD

MAX_EXAMPLES = 25
"""Fuzzing examples per operation (the examples and coverage phases add a bounded number more)."""

PROJECT = "sockshop"
STAGES = ("dev", "staging")
SERVICES = ("carts", "orders")
DOOMED_PROJECT = "doomed"
DOOMED_SERVICE = "doomed-svc"

AUTH = {"x-token": TOKEN}
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]

PROJECTS = "/api/controlPlane/v1/project"
RESOURCE_SERVICE = "/api/resource-service/v1/project/{projectName}"
RESOURCE_LEVELS = (
    RESOURCE_SERVICE,
    f"{RESOURCE_SERVICE}/stage/{{stageName}}",
    f"{RESOURCE_SERVICE}/stage/{{stageName}}/service/{{serviceName}}",
)
SECRETS = "/api/secrets/v1/secret"

# Parameter names (path and query) that name a project, stage or service, across the routes.
_PROJECT_PARAMS = ("project", "projectName")
_STAGE_PARAMS = ("stage", "stageName")
_SERVICE_PARAMS = ("service", "serviceName")


def _b64(raw: str | bytes) -> str:
    return base64.b64encode(raw.encode() if isinstance(raw, str) else raw).decode()


def _known_names(method: str, path: str) -> dict[str, st.SearchStrategy[str]]:
    """Strategies of existing names per parameter name, for one operation."""
    if method == "DELETE" and path == f"{PROJECTS}/{{project}}":
        return {"project": st.just(DOOMED_PROJECT)}
    if method == "DELETE" and path == f"{PROJECTS}/{{project}}/service/{{service}}":
        return {"project": st.just(PROJECT), "service": st.just(DOOMED_SERVICE)}
    known: dict[str, st.SearchStrategy[str]] = {}
    known.update(dict.fromkeys(_PROJECT_PARAMS, st.just(PROJECT)))
    known.update(dict.fromkeys(_STAGE_PARAMS, st.sampled_from(STAGES)))
    known.update(dict.fromkeys(_SERVICE_PARAMS, st.sampled_from(SERVICES)))
    return known


def _naming_existing(
    context: schemathesis.HookContext, strategy: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """The generated parameters, or as often the same with existing names put in."""
    assert context.operation is not None
    known = _known_names(context.operation.method.upper(), context.operation.path)

    def substitute(params: Any) -> st.SearchStrategy[Any]:
        if not isinstance(params, dict) or not known.keys() & params.keys():
            return st.just(params)
        return st.fixed_dictionaries({key: known.get(key, st.just(value)) for key, value in params.items()})

    return st.one_of(strategy, strategy.flatmap(substitute))


# Leaves: names that pass Keptn's rules or not, any text, any bytes.
_name = st.one_of(st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True), st.text(max_size=20))
_project = st.one_of(st.sampled_from((PROJECT, DOOMED_PROJECT)), _name)
_stage = st.one_of(st.sampled_from(STAGES), _name)
_service = st.one_of(st.sampled_from(SERVICES), _name)
_shipyard = st.one_of(st.just(_b64(SHIPYARD)), st.text().map(_b64), st.binary().map(_b64))
_content = st.one_of(st.binary(max_size=64).map(_b64), st.just(_b64(SHIPYARD)))
_uri = st.one_of(
    st.sampled_from(("shipyard.yaml", "slo.yaml", "sli.yaml", "helm/carts.tgz", "metadata.yaml")),
    st.from_regex(r"[a-zA-Z0-9/._-]{1,30}", fullmatch=True),
    st.text(max_size=30),
)
_resources = st.fixed_dictionaries(
    {
        "resources": st.lists(
            st.fixed_dictionaries({"resourceURI": _uri, "resourceContent": _content}), min_size=1, max_size=3
        )
    }
)
_secret = st.fixed_dictionaries(
    {
        "name": _name,
        "scope": st.one_of(st.sampled_from(KEPTN_SCOPES), _name),
        "data": st.one_of(
            st.dictionaries(st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True), st.text(), min_size=1),
            st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=3),
        ),
    }
)
_event_type = st.one_of(
    st.sampled_from(
        (
            "sh.keptn.event.dev.delivery.triggered",
            "sh.keptn.event.staging.delivery.triggered",
            "sh.keptn.event.dev.evaluation.triggered",
            "sh.keptn.event.deployment.started",
            "sh.keptn.event.deployment.finished",
            "sh.keptn.event.evaluation.invalidated",
            "sh.keptn.event.approval.finished",
            "sh.keptn.event.monitoring.configure",
            "sh.keptn.events.problem",
            "sh.keptn.log.error",
        )
    ),
    st.text(max_size=40).map(lambda text: f"sh.keptn.event.{text}"),
)
_event_data = st.fixed_dictionaries(
    {"project": _project, "stage": _stage, "service": _service},
    optional={
        "result": st.sampled_from(("pass", "warning", "fail", "")),
        "status": st.sampled_from(("succeeded", "errored", "unknown", "")),
        "type": st.sampled_from(("prometheus", "")),
        "State": st.sampled_from(("OPEN", "RESOLVED", "CLOSED")),
        "labels": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2),
    },
)
_event = st.fixed_dictionaries(
    {
        "type": _event_type,
        "data": _event_data,
        "specversion": st.just("1.0"),
        "source": st.text(min_size=1, max_size=20),
        "id": st.uuids().map(str),
    },
    optional={
        "shkeptncontext": st.one_of(st.uuids().map(str), st.text(max_size=10)),
        "triggeredid": st.one_of(st.uuids().map(str), st.text(max_size=10)),
        "time": st.datetimes(timezones=st.just(datetime.UTC)).map(lambda moment: moment.isoformat()),
    },
)

WELL_SHAPED_BODIES: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("POST", PROJECTS): st.fixed_dictionaries({"name": _name, "shipyard": _shipyard}),
    ("PUT", PROJECTS): st.fixed_dictionaries({"name": _project, "shipyard": _shipyard}),
    ("POST", f"{PROJECTS}/{{project}}/service"): st.fixed_dictionaries({"serviceName": _name}),
    ("POST", SECRETS): _secret,
    ("PUT", SECRETS): _secret,
    ("POST", "/api/v1/event"): _event,
}
for _level in RESOURCE_LEVELS:
    WELL_SHAPED_BODIES[("POST", f"{_level}/resource")] = _resources
    WELL_SHAPED_BODIES[("PUT", f"{_level}/resource")] = _resources
    WELL_SHAPED_BODIES[("PUT", f"{_level}/resource/{{resourceURI}}")] = st.fixed_dictionaries(
        {"resourceContent": _content}
    )


def _well_shaped(
    context: schemathesis.HookContext, strategy: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """The generated body, or as often one of the shape the route decodes, with fuzzed leaves."""
    assert context.operation is not None
    shaped = WELL_SHAPED_BODIES.get((context.operation.method.upper(), context.operation.path))
    return strategy if shaped is None else st.one_of(strategy, shaped)


@pytest.fixture
def fuzz_schema(
    request: pytest.FixtureRequest, db_url: str, temporal_env: WorkflowEnvironment
) -> Iterator[schemathesis.BaseSchema]:
    """The app's OpenAPI schema, served in process on the test's database with a seeded project."""
    # schemathesis 4.32's from_fixture reads and rewrites ``node._nodeid`` (to name each operation in
    # its reports), an attribute pytest 9.2 no longer has: give the node a plain one to use.
    request.node._nodeid = request.node.nodeid
    settings = Settings(
        database_url=db_url,
        api_token=TOKEN,
        secret_key=generate_secret_key(),
        # Every example comes from one client address, and the fuzzer sends some without a valid
        # x-token: at the default limit the address would get nothing but 429 within seconds.
        auth_failures_per_minute=1_000_000,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"api-fuzz-{uuid.uuid4()}",
    )
    app = create_app(settings)
    # Loading the schema over ASGI starts the app's lifespan; the schemathesis pytest plugin ends it
    # when the test is torn down, before the database fixture drops the database.
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    schema.config.update(headers=AUTH)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=MAX_EXAMPLES,
        deterministic=True,
        database="none",
    )
    schema.hook("before_generate_path_parameters")(_naming_existing)
    schema.hook("before_generate_query")(_naming_existing)
    schema.hook("before_generate_body")(_well_shaped)

    create_project = schema[PROJECTS]["POST"]
    create_service = schema[f"{PROJECTS}/{{project}}/service"]["POST"]
    for project, services in ((PROJECT, (*SERVICES, DOOMED_SERVICE)), (DOOMED_PROJECT, SERVICES)):
        created = create_project.Case(body={"name": project, "shipyard": _b64(SHIPYARD)}).call(headers=AUTH)
        assert created.status_code == 201, created.text
        for service in services:
            added = create_service.Case(path_parameters={"project": project}, body={"serviceName": service})
            response = added.call(headers=AUTH)
            assert response.status_code == 200, response.text
    yield schema


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
def test_no_operation_answers_5xx_or_off_schema(case: schemathesis.Case[Any]) -> None:
    """Every operation: no 5xx, documented status codes, and bodies that match the schema."""
    case.call_and_validate(checks=CHECKS)
