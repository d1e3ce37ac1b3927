import base64
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.sli_providers import (
    FetchSLIsInput,
    FetchSLIsResult,
    PrometheusEndpoint,
    SLIProviderActivities,
    SLIProviderConfig,
    sli_provider_config,
)
from capstan.settings import Settings
from store import projects, resources
from store.resources import ResourceScope
from tests.fixtures.ports import free_port
from tests.store.factories import keptn_time, shipyard, wire

PROJECT = ResourceScope("sockshop")
DEV = ResourceScope("sockshop", "dev")
CARTS = ResourceScope("sockshop", "dev", "carts")
RT = 'capstan_test_response_time_seconds{project="$PROJECT",stage="$STAGE",service="$SERVICE"}'


@dataclass
class JSONServer:
    """A loopback HTTP server answering GETs with canned JSON, recording what it was sent."""

    url: str
    routes: dict[str, tuple[int, str, float]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def route(self, path: str, body: Any, *, status: int = 200, delay: float = 0.0) -> str:
        self.routes[path] = (status, body if isinstance(body, str) else json.dumps(body), delay)
        return self.url + path


@pytest.fixture
def json_server() -> Iterator[JSONServer]:
    port = free_port()
    state = JSONServer(url=f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            state.requests.append(
                {"path": parts.path, "query": parse_qs(parts.query), "headers": dict(self.headers)}
            )
            status, body, delay = state.routes.get(parts.path, (404, "not found", 0.0))
            time.sleep(delay)
            data = body.encode()
            try:
                self.send_response(status)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (the timeout tests): nobody to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def sockshop(pool):
    await projects.create_project(pool, "sockshop", shipyard())
    await projects.create_service(pool, "sockshop", "carts")
    return pool


def config_for(prometheus, **overrides) -> SLIProviderConfig:
    values: dict[str, Any] = {
        "prometheus_url": prometheus.url,
        "prometheus_user": prometheus.user,
        "prometheus_password": SecretStr(prometheus.password),
    }
    values.update(overrides)
    return SLIProviderConfig(**values)


def get_sli_event(
    indicators, *, filters=None, labels=None, deployment=None, commit=None, end=None, service="carts"
):
    end = end or datetime.now(UTC)
    data: dict[str, Any] = {
        "labels": labels or {},
        "get-sli": {
            "sliProvider": "prometheus",
            "start": keptn_time(end - timedelta(minutes=5)),
            "end": keptn_time(end),
            "indicators": indicators,
            "customFilters": [{"key": k, "value": v} for k, v in (filters or {}).items()],
        },
    }
    if deployment is not None:
        data["deployment"] = deployment
    event = wire("sh.keptn.event.get-sli.triggered", service=service, **data)
    if commit is not None:
        event["gitcommitid"] = commit
    return event


async def fetch(pool, http, config, event, provider="prometheus") -> FetchSLIsResult:
    activities = SLIProviderActivities(pool, http, config)
    return await ActivityEnvironment().run(
        activities.fetch_slis, FetchSLIsInput(provider=provider, event=event)
    )


async def write_sli(pool, scope, indicators: dict[str, Any], provider="prometheus") -> str:
    content = json.dumps({"spec_version": "1.0", "indicators": indicators})  # JSON is YAML
    return await resources.write_resources(pool, scope, [(f"{provider}/sli.yaml", content.encode())])


def values_of(result: FetchSLIsResult) -> dict[str, Any]:
    return {v["metric"]: v["value"] if v["success"] else v["message"] for v in result.indicator_values}


# --- Prometheus, for real --------------------------------------------------------------------------


async def test_prometheus_values_with_placeholders(sockshop, http, prometheus):
    await write_sli(
        sockshop,
        CARTS,
        {
            "response_time": RT,
            "windowed": f"max_over_time({RT}[$DURATION_SECONDS])",
            "requests": 'sum(capstan_test_requests_total{service="$SERVICE"})',
            "by_filter": RT.replace("$SERVICE", "$svc"),
            "by_label": RT.replace("$STAGE", "$LABEL.env"),
            "scalar": 'scalar(sum(capstan_test_requests_total{service=~"carts|orders"}))',
        },
    )
    indicators = ["response_time", "windowed", "requests", "by_filter", "by_label", "scalar"]
    event = get_sli_event(indicators, filters={"svc": "orders"}, labels={"env": "staging"})
    result = await fetch(sockshop, http, config_for(prometheus), event)
    assert result == FetchSLIsResult(
        result="pass",
        status="succeeded",
        message="",
        indicator_values=[
            {"metric": "response_time", "value": 0.25, "success": True, "message": ""},
            {"metric": "windowed", "value": 0.25, "success": True, "message": ""},
            {"metric": "requests", "value": 1200.0, "success": True, "message": ""},
            {"metric": "by_filter", "value": 1.5, "success": True, "message": ""},
            {"metric": "by_label", "value": 0.75, "success": True, "message": ""},
            {"metric": "scalar", "value": 1230.0, "success": True, "message": ""},
        ],
    )


async def test_failing_queries_fail_alone(sockshop, http, prometheus):
    await write_sli(
        sockshop,
        CARTS,
        {
            "ok": RT,
            "bad_promql": "sum(rate(",
            "no_data": 'capstan_test_response_time_seconds{service="nope"}',
            "several": "capstan_test_response_time_seconds",
            "nan": "capstan_test_broken",
            "range": f"{RT}[1m]",
            "not_a_query": {"url": "http://x"},
        },
    )
    indicators = ["ok", "bad_promql", "no_data", "several", "nan", "range", "not_a_query", "undefined"]
    result = await fetch(sockshop, http, config_for(prometheus), get_sli_event(indicators))
    assert (result.result, result.status) == ("warning", "succeeded")
    assert result.message.startswith("unable to retrieve 7 of 8 SLIs, e.g. bad_promql: unable to query")
    values = values_of(result)
    assert values["ok"] == 0.25
    assert values["bad_promql"].startswith("unable to query Prometheus: bad_data: ")
    assert "parse error" in values["bad_promql"]  # Prometheus's own words
    assert values["no_data"] == "query did not return any values"
    assert values["several"] == "query did return multiple values (3 series); aggregate them, e.g. with sum()"
    assert values["nan"] == "query did not return valid values (NaN)"
    assert values["range"] == "query returned a matrix, not an instant vector or a scalar"
    assert values["not_a_query"] == "SLI not_a_query: the query must be a string, not an object"
    assert values["undefined"] == "SLI undefined is not defined in prometheus/sli.yaml"
    assert all(v["value"] == 0 for v in result.indicator_values if not v["success"])


async def test_all_failing_is_fail(sockshop, http, prometheus):
    await write_sli(sockshop, CARTS, {"no_data": 'capstan_test_response_time_seconds{service="nope"}'})
    result = await fetch(sockshop, http, config_for(prometheus), get_sli_event(["no_data", "missing"]))
    assert (result.result, result.status) == ("fail", "succeeded")
    assert result.message == "unable to retrieve metrics: no_data: query did not return any values"


async def test_unreachable_prometheus_fails_every_sli(sockshop, http, prometheus):
    await write_sli(sockshop, CARTS, {"a": "vector(1)", "b": "vector(2)"})
    dead = f"http://127.0.0.1:{free_port()}"
    result = await fetch(
        sockshop, http, config_for(prometheus, prometheus_url=dead), get_sli_event(["a", "b"])
    )
    assert (result.result, result.status) == ("fail", "succeeded")
    expected = f"unable to query Prometheus at {dead}: ConnectError: All connection attempts failed"
    assert values_of(result) == {"a": expected, "b": expected}
    assert result.message == f"unable to retrieve metrics: {expected}"


async def test_wrong_password_is_reported(sockshop, http, prometheus):
    await write_sli(sockshop, CARTS, {"a": "vector(1)"})
    config = config_for(prometheus, prometheus_password=SecretStr("wrong"))
    result = await fetch(sockshop, http, config, get_sli_event(["a"]))
    assert values_of(result)["a"].startswith(
        f"Prometheus at {prometheus.url} answered HTTP 401: Unauthorized"
    )


async def test_project_endpoint_overrides_the_default(sockshop, http, prometheus):
    await write_sli(sockshop, CARTS, {"a": "vector(7)"})
    endpoint = PrometheusEndpoint(url=prometheus.url, user=prometheus.user, password=prometheus.password)
    config = SLIProviderConfig(
        prometheus_url=f"http://127.0.0.1:{free_port()}", prometheus_endpoints={"sockshop": endpoint}
    )
    result = await fetch(sockshop, http, config, get_sli_event(["a"]))
    assert values_of(result) == {"a": 7.0}


async def test_many_slis_are_queried_concurrently_and_keep_their_order(sockshop, http, prometheus):
    names = [f"sli_{n:02d}" for n in range(90)]
    await write_sli(sockshop, CARTS, {name: f"vector({n})" for n, name in enumerate(names)})
    result = await fetch(sockshop, http, config_for(prometheus), get_sli_event(list(reversed(names))))
    assert result.result == "pass"
    assert [(v["metric"], v["value"]) for v in result.indicator_values] == [
        (name, float(names.index(name))) for name in reversed(names)
    ]


# --- what Prometheus is sent, seen by a loopback server ------------------------------------------------


async def test_request_seen_by_prometheus(sockshop, http, json_server):
    json_server.route(
        "/prom/api/v1/query",
        {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "3.5"]}]},
        },
    )
    await write_sli(sockshop, CARTS, {"a": 'x{d="$DEPLOYMENT",s="$SERVICE"}[$DURATION_SECONDS]'})
    end = datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=UTC)
    config = SLIProviderConfig(
        prometheus_url=json_server.url + "/prom/",
        prometheus_user="keptn",
        prometheus_password=SecretStr("p@ss"),
    )
    result = await fetch(sockshop, http, config, get_sli_event(["a"], end=end))
    assert values_of(result) == {"a": 3.5}
    (request,) = json_server.requests
    assert request["query"] == {
        "query": ['x{d="primary",s="carts"}[300s]'],
        "time": [f"{end.timestamp():.3f}"],
    }
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"keptn:p@ss").decode()


@pytest.mark.parametrize(
    ("labels", "deployment", "expected"),
    [({}, None, "primary"), ({}, "canary", "canary"), ({"deployment": "blue"}, "canary", "blue")],
)
async def test_deployment_placeholder(sockshop, http, json_server, labels, deployment, expected):
    json_server.route(
        "/api/v1/query", {"status": "success", "data": {"resultType": "scalar", "result": [1, "1"]}}
    )
    await write_sli(sockshop, CARTS, {"a": "$DEPLOYMENT"})
    config = SLIProviderConfig(prometheus_url=json_server.url)
    await fetch(sockshop, http, config, get_sli_event(["a"], labels=labels, deployment=deployment))
    assert json_server.requests[0]["query"]["query"] == [expected]
    assert "Authorization" not in json_server.requests[0]["headers"]


async def test_non_json_answer_and_timeout(sockshop, http, json_server):
    json_server.route("/api/v1/query", "<html>bad gateway</html>", status=502)
    await write_sli(sockshop, CARTS, {"a": "up"})
    result = await fetch(
        sockshop, http, SLIProviderConfig(prometheus_url=json_server.url), get_sli_event(["a"])
    )
    assert values_of(result) == {
        "a": f"Prometheus at {json_server.url} answered HTTP 502: <html>bad gateway</html>"
    }

    json_server.route("/api/v1/query", {"status": "success"}, delay=1.0)
    config = SLIProviderConfig(prometheus_url=json_server.url, query_timeout=timedelta(seconds=0.2))
    result = await fetch(sockshop, http, config, get_sli_event(["a"]))
    assert values_of(result) == {
        "a": f"unable to query Prometheus at {json_server.url}: no answer within 0.2 s"
    }


# --- sli.yaml: levels, commits, errors ----------------------------------------------------------------


async def test_service_overrides_stage_overrides_project(sockshop, http, prometheus):
    await write_sli(sockshop, PROJECT, {"a": "vector(1)", "b": "vector(1)", "c": "vector(1)"})
    await write_sli(sockshop, DEV, {"b": "vector(2)", "c": "vector(2)"})
    await write_sli(sockshop, CARTS, {"c": "vector(3)"})
    result = await fetch(sockshop, http, config_for(prometheus), get_sli_event(["a", "b", "c"]))
    assert values_of(result) == {"a": 1.0, "b": 2.0, "c": 3.0}


async def test_stage_file_alone_is_enough(sockshop, http, prometheus):
    await write_sli(sockshop, DEV, {"a": "vector(2)"})
    result = await fetch(sockshop, http, config_for(prometheus), get_sli_event(["a"]))
    assert values_of(result) == {"a": 2.0}


async def test_files_are_read_at_the_events_commit(sockshop, http, prometheus):
    first = await write_sli(sockshop, CARTS, {"a": "vector(1)"})
    await write_sli(sockshop, CARTS, {"a": "vector(2)"})
    config = config_for(prometheus)
    assert values_of(await fetch(sockshop, http, config, get_sli_event(["a"], commit=first))) == {"a": 1.0}
    assert values_of(await fetch(sockshop, http, config, get_sli_event(["a"]))) == {"a": 2.0}


async def test_no_sli_file_is_errored(sockshop, http, prometheus):
    await write_sli(sockshop, CARTS, {"a": "vector(1)"}, provider="web")
    result = await fetch(sockshop, http, config_for(prometheus), get_sli_event(["a"]))
    message = (
        "no SLI file prometheus/sli.yaml found for service carts in stage dev of project sockshop,"
        " nor for the stage or the project"
    )
    assert result == FetchSLIsResult(
        result="fail",
        status="errored",
        message=message,
        indicator_values=[{"metric": "a", "value": 0, "success": False, "message": message}],
    )


async def test_invalid_sli_file_is_errored(sockshop, http, prometheus):
    await resources.write_resources(sockshop, DEV, [("prometheus/sli.yaml", b"indicators: [a]")])
    result = await fetch(sockshop, http, config_for(prometheus), get_sli_event(["a"]))
    assert (result.result, result.status) == ("fail", "errored")
    assert result.message == (
        "unable to retrieve SLI queries for project sockshop: prometheus/sli.yaml of stage level:"
        " indicators must be a mapping of SLI name to query, not a list"
    )


async def test_unknown_service_or_commit_is_errored(sockshop, http, prometheus):
    await write_sli(sockshop, PROJECT, {"a": "vector(1)"})
    config = config_for(prometheus)
    result = await fetch(sockshop, http, config, get_sli_event(["a"], service="orders"))
    assert (result.status, result.message) == (
        "errored",
        "unable to retrieve SLI queries for project sockshop:"
        " service 'orders' not found in stage 'dev' of project 'sockshop'",
    )
    result = await fetch(sockshop, http, config, get_sli_event(["a"], commit="0" * 40))
    assert result.status == "errored"
    assert "is not a commit of project 'sockshop'" in result.message


async def test_no_prometheus_configured_is_errored(sockshop, http):
    await write_sli(sockshop, CARTS, {"a": "vector(1)"})
    result = await fetch(sockshop, http, SLIProviderConfig(), get_sli_event(["a"]))
    assert (result.result, result.status) == ("fail", "errored")
    assert result.message.startswith("no Prometheus configured for project sockshop")


async def test_no_indicators_passes_without_reading_anything(sockshop, http):
    result = await fetch(sockshop, http, SLIProviderConfig(), get_sli_event([]))
    assert result == FetchSLIsResult(result="pass", status="succeeded", message="", indicator_values=[])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e["data"].pop("stage"), "data.stage must be a non-empty string"),
        (lambda e: e["data"].pop("get-sli"), "data.get-sli must be an object"),
        (lambda e: e["data"]["get-sli"].update(indicators="a"), "data.get-sli.indicators must be a list"),
        (lambda e: e["data"]["get-sli"].update(end="soon"), "data.get-sli.end: 'soon' is not an RFC 3339"),
        (
            lambda e: e["data"]["get-sli"].update(customFilters=[1]),
            "customFilters must be a list of {key, value}",
        ),
    ],
)
async def test_unusable_event_is_not_retried(sockshop, http, change, message):
    event = get_sli_event(["a"])
    change(event)
    with pytest.raises(ApplicationError) as caught:
        await fetch(sockshop, http, SLIProviderConfig(), event)
    assert caught.value.non_retryable
    assert caught.value.type == "InvalidInputError"
    assert message in str(caught.value)


async def test_unknown_provider_is_not_retried(sockshop, http):
    with pytest.raises(ApplicationError, match="no built-in SLI provider 'dynatrace'") as caught:
        await fetch(sockshop, http, SLIProviderConfig(), get_sli_event(["a"]), provider="dynatrace")
    assert caught.value.non_retryable


def test_config_from_settings():
    settings = Settings(
        prometheus_url="http://p:9090",
        prometheus_user="u",
        prometheus_password="s",
        prometheus_endpoints={"other": {"url": "http://o:9090"}},
        sli_query_timeout="5s",
    )
    config = sli_provider_config(settings)
    assert config.query_timeout == timedelta(seconds=5)
    assert config.prometheus_for("sockshop") == PrometheusEndpoint(
        url="http://p:9090", user="u", password="s"
    )
    assert config.prometheus_for("other") == PrometheusEndpoint(url="http://o:9090")


def test_config_accepts_other_endpoint_objects():
    class Setting:  # e.g. capstan.settings.PrometheusEndpoint, which activities do not import
        url = "http://p:9090"
        user = "u"
        password = SecretStr("s")

    config = SLIProviderConfig(prometheus_endpoints={"sockshop": Setting()})
    assert config.prometheus_for("sockshop") == PrometheusEndpoint(
        url="http://p:9090", user="u", password="s"
    )
    assert config.prometheus_for("other") is None


# --- web provider ------------------------------------------------------------------------------------


async def test_web_provider(sockshop, http, json_server):
    json_server.route("/api/sockshop/carts", {"data": {"score": "97.5", "items": [{"n": 3}]}})
    json_server.route("/plain", "42")
    base = json_server.url
    await write_sli(
        sockshop,
        CARTS,
        {
            "score": {
                "url": base + "/api/$PROJECT/$SERVICE",
                "path": "$.data.score",
                "headers": {"X-Stage": "$STAGE"},
            },
            "items": {"url": base + "/api/$PROJECT/$SERVICE", "path": "data.items[-1]['n']"},
            "plain": base + "/plain",
        },
        provider="web",
    )
    result = await fetch(
        sockshop, http, SLIProviderConfig(), get_sli_event(["score", "items", "plain"]), "web"
    )
    assert result.result == "pass"
    assert values_of(result) == {"score": 97.5, "items": 3.0, "plain": 42.0}
    stage_headers = [
        r["headers"].get("X-Stage") for r in json_server.requests if r["path"] == "/api/sockshop/carts"
    ]
    assert "dev" in stage_headers


async def test_web_provider_errors(sockshop, http, json_server):
    json_server.route("/doc", {"data": {"name": "carts", "n": None}})
    json_server.route("/html", "<html></html>")
    base = json_server.url
    dead = f"http://127.0.0.1:{free_port()}/x"
    await write_sli(
        sockshop,
        CARTS,
        {
            "missing_key": {"url": base + "/doc", "path": "$.data.score"},
            "not_a_number": {"url": base + "/doc", "path": "$.data.name"},
            "null": {"url": base + "/doc", "path": "$.data.n"},
            "bad_path": {"url": base + "/doc", "path": "$..name"},
            "not_found": base + "/nothing",
            "not_json": base + "/html",
            "unreachable": dead,
            "bad_url": "ftp://example/x",
        },
        provider="web",
    )
    names = [
        "missing_key",
        "not_a_number",
        "null",
        "bad_path",
        "not_found",
        "not_json",
        "unreachable",
        "bad_url",
    ]
    result = await fetch(sockshop, http, SLIProviderConfig(), get_sli_event(names), "web")
    assert (result.result, result.status) == ("fail", "succeeded")
    assert values_of(result) == {
        "missing_key": "JSONPath '$.data.score': no key 'score' at $.data (keys: n, name)",
        "not_a_number": f"the value at $.data.name of GET {base}/doc is a string 'carts', not a number",
        "null": f"the value at $.data.n of GET {base}/doc is null, not a number",
        "bad_path": "JSONPath '$..name': expected a key after '.' at position 1",
        "not_found": f"GET {base}/nothing answered HTTP 404: not found",
        "not_json": f"GET {base}/html did not answer JSON: <html></html>",
        "unreachable": f"unable to GET {dead}: ConnectError: All connection attempts failed",
        "bad_url": "unable to GET ftp://example/x: invalid URL: Request URL has an unsupported protocol 'ftp://'.",
    }
