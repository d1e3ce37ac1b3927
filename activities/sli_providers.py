"""The built-in SLI providers: answer a ``get-sli.triggered`` from Prometheus or from web JSON APIs.

Keptn ran these as separate integrations (``prometheus-service``, and e.g. the generic web
providers of the community); Capstan answers them in one activity, ``fetch_slis``, whose result
the lighthouse workflow turns into ``get-sli.finished``. It behaves as Keptn's prometheus-service
0.9 did, except where noted:

- ``<provider>/sli.yaml`` is read at project, stage and service level and merged per indicator,
  the most specific level winning (Keptn's ``GetSLIConfiguration``). Unlike Keptn, it is read at
  the event's ``gitcommitid``, so that an evaluation sees the files of the deployment it judges.
- Every indicator is queried concurrently (Keptn queried one after the other; gates with ~90
  SLIs were slow); one that fails gets ``success: false`` and a message, the others are kept.
- The result is ``pass`` if every SLI was fetched, ``warning`` if some failed and ``fail`` if all
  failed (message ``unable to retrieve metrics: ...``), with status ``succeeded``, as in Keptn.
- Prometheus: an instant query at the window's end, with basic auth if a user is configured;
  the answer must hold exactly one finite value (:func:`keptn.sli.prometheus_value`: no data is
  a failed SLI, as in prometheus-service ≥ 0.8, not the silent 0 of older versions).
- Web (Capstan's own): GET the indicator's URL (placeholders substituted in URL, headers and path) and
  take the number, or numeric string, at its JSONPath (:func:`keptn.sli.json_path`).
- Differences: no sli.yaml at any level is ``errored`` (Keptn fell back to built-in Istio queries
  that no Capstan user has); an unknown SLI is "SLI <name> is not defined in <provider>/sli.yaml";
  no Prometheus configured for the project is ``errored``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.sli_provider_models import (
    FETCH_SLIS_ACTIVITY,
    FetchSLIsInput,
    FetchSLIsResult,
    PrometheusEndpoint,
    SLIProviderConfig,
    sli_provider_config,
)
from keptn.errors import InvalidInputError, KeptnError, NotFoundError
from keptn.sli import (
    DEFAULT_DEPLOYMENT,
    json_path,
    numeric_value,
    parse_sli,
    parse_sli_time,
    prometheus_query,
    prometheus_value,
    substitute_placeholders,
    web_indicator,
)
from store.resources import URI_FIELD, ResourceScope, get_resource

__all__ = [
    "FETCH_SLIS_ACTIVITY",
    "PROVIDERS",
    "FetchSLIsInput",
    "FetchSLIsResult",
    "PrometheusEndpoint",
    "SLIProviderActivities",
    "SLIProviderConfig",
    "sli_provider_config",
]

PROVIDERS = ("prometheus", "web")
"""The SLI providers ``fetch_slis`` implements."""
INVALID_INPUT = "InvalidInputError"
"""Error type of a ``fetch_slis`` call with an unusable event or provider: retrying cannot help."""


class _Request(BaseModel):
    """What ``fetch_slis`` needs from the event, checked."""

    project: str
    stage: str
    service: str
    deployment: str
    labels: dict[str, str]
    custom_filters: dict[str, str]
    start: datetime
    end: datetime
    indicators: list[str]
    commit_id: str | None


class _SLIError(Exception):
    """One SLI could not be fetched; the message goes into its ``SLIResult``."""


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(f"get-sli.triggered: {message}", type=INVALID_INPUT, non_retryable=True)


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(f"{what} must be an object")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _request(event: dict[str, Any]) -> _Request:
    data = event.get("data")
    if not isinstance(data, dict):
        raise _invalid("data must be an object")
    for name in ("project", "stage", "service"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise _invalid(f"data.{name} must be a non-empty string")
    get_sli = data.get("get-sli")
    if not isinstance(get_sli, dict):
        raise _invalid("data.get-sli must be an object")
    indicators = get_sli.get("indicators") or []
    if not isinstance(indicators, list) or not all(isinstance(i, str) and i for i in indicators):
        raise _invalid("data.get-sli.indicators must be a list of SLI names")
    filters: dict[str, str] = {}
    for entry in get_sli.get("customFilters") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise _invalid("data.get-sli.customFilters must be a list of {key, value}")
        filters[entry["key"]] = str(entry.get("value") or "")
    try:
        start = parse_sli_time(get_sli.get("start"), field="data.get-sli.start")
        end = parse_sli_time(get_sli.get("end"), field="data.get-sli.end")
    except InvalidInputError as exc:
        raise _invalid(str(exc)) from None
    labels = _str_map(data.get("labels"), "data.labels")
    # Keptn's prometheus-service: a "deployment" label wins, then data.deployment, then "primary".
    deployment = labels.get("deployment") or str(data.get("deployment") or "") or DEFAULT_DEPLOYMENT
    commit = event.get("gitcommitid")
    return _Request(
        project=data["project"],
        stage=data["stage"],
        service=data["service"],
        deployment=deployment,
        labels=labels,
        custom_filters=filters,
        start=start,
        end=end,
        indicators=list(dict.fromkeys(indicators)),
        commit_id=commit if isinstance(commit, str) and commit else None,
    )


def _sli_result(metric: str, value: float = 0, *, error: str | None = None) -> dict[str, Any]:
    if error is None:
        return {"metric": metric, "value": value, "success": True, "message": ""}
    return {"metric": metric, "value": 0, "success": False, "message": error}


def _errored(request: _Request, message: str) -> FetchSLIsResult:
    return FetchSLIsResult(
        result="fail",
        status="errored",
        message=message,
        indicator_values=[_sli_result(name, error=message) for name in request.indicators],
    )


def _summary(values: list[dict[str, Any]]) -> FetchSLIsResult:
    failed = [v for v in values if not v["success"]]
    if not failed:
        return FetchSLIsResult(result="pass", status="succeeded", indicator_values=values)
    example = f"{failed[0]['metric']}: {failed[0]['message']}"
    if len(failed) < len(values):
        message = f"unable to retrieve {len(failed)} of {len(values)} SLIs, e.g. {example}"
        return FetchSLIsResult(result="warning", status="succeeded", message=message, indicator_values=values)
    # Keptn said only "unable to retrieve metrics"; one shared cause (Prometheus down) is said once
    same = len({v["message"] for v in failed}) == 1
    message = f"unable to retrieve metrics: {failed[0]['message'] if same else example}"
    return FetchSLIsResult(result="fail", status="succeeded", message=message, indicator_values=values)


HEARTBEAT_EVERY = timedelta(seconds=2)
"""How often ``fetch_slis`` heartbeats while its queries run (its heartbeat timeout is 10 s)."""


class SLIProviderActivities:
    """The built-in SLI providers, sharing the worker's pool and HTTP client.

    Args:
        pool: the worker's asyncpg pool (``sli.yaml`` is a resource).
        http: the worker's HTTP client; each query sets its own timeout.
        config: where Prometheus is, and query limits.
    """

    def __init__(self, pool: asyncpg.Pool, http: httpx.AsyncClient, config: SLIProviderConfig) -> None:
        self._pool = pool
        self._http = http
        self._config = config

    @activity.defn(name=FETCH_SLIS_ACTIVITY)
    async def fetch_slis(self, input: FetchSLIsInput) -> FetchSLIsResult:
        """Fetch every requested SLI's value with the provider's queries from ``sli.yaml``.

        Raises:
            ApplicationError: ``InvalidInputError`` (not retried) for an unknown provider or an event
                without project, stage, service, start, end or a valid indicator list. A failing
                store read is raised as is and retried; failing queries are not raised but
                reported per SLI.
        """
        if input.provider not in PROVIDERS:
            raise ApplicationError(
                f"no built-in SLI provider {input.provider!r} (known: {', '.join(PROVIDERS)})",
                type=INVALID_INPUT,
                non_retryable=True,
            )
        request = _request(input.event)
        if not request.indicators:
            return FetchSLIsResult(result="pass", status="succeeded")
        uri = f"{input.provider}/sli.yaml"
        try:
            queries = await self._load_indicators(request, uri)
        except KeptnError as exc:
            return _errored(request, f"unable to retrieve SLI queries for project {request.project}: {exc}")
        if queries is None:
            return _errored(
                request,
                f"no SLI file {uri} found for service {request.service} in stage {request.stage}"
                f" of project {request.project}, nor for the stage or the project",
            )
        endpoint = None
        if input.provider == "prometheus":
            endpoint = self._config.prometheus_for(request.project)
            if endpoint is None:
                return _errored(
                    request,
                    f"no Prometheus configured for project {request.project}: set CAPSTAN_PROMETHEUS_URL"
                    " or an entry in CAPSTAN_PROMETHEUS_ENDPOINTS",
                )

        async def fetch(name: str, query: Any) -> float:
            if endpoint is not None:
                return await self._prometheus(endpoint, request, name, query)
            return await self._web(request, name, query)

        limit = asyncio.Semaphore(max(1, self._config.max_concurrent_queries))

        async def one(name: str) -> dict[str, Any]:
            if name not in queries:
                return _sli_result(name, error=f"SLI {name} is not defined in {uri}")
            async with limit:
                try:
                    return _sli_result(name, await fetch(name, queries[name]))
                except (_SLIError, KeptnError) as exc:
                    return _sli_result(name, error=str(exc))
                except Exception as exc:  # a bug must not cost the other SLIs their values
                    activity.logger.exception("SLI %s of %s failed unexpectedly", name, uri)
                    return _sli_result(name, error=f"unexpected error: {type(exc).__name__}: {exc}")

        gathered = asyncio.ensure_future(asyncio.gather(*(one(name) for name in request.indicators)))
        # Heartbeats let Temporal retry the fetch elsewhere within seconds when this worker dies,
        # instead of after the activity's whole time limit.
        while True:
            done, _ = await asyncio.wait({gathered}, timeout=HEARTBEAT_EVERY.total_seconds())
            if done:
                return _summary(list(gathered.result()))
            if activity.in_activity():
                activity.heartbeat()

    async def _load_indicators(self, request: _Request, uri: str) -> dict[str, Any] | None:
        """Merged indicators of the project, stage and service files; None if there is no file."""
        scopes = (
            ResourceScope(request.project),
            ResourceScope(request.project, request.stage),
            ResourceScope(request.project, request.stage, request.service),
        )
        merged: dict[str, Any] = {}
        found = False
        for scope in scopes:
            try:
                resource = await get_resource(self._pool, scope, uri, commit_id=request.commit_id)
            except NotFoundError as exc:
                if exc.field == URI_FIELD:  # the file is not there; a missing project/commit is an error
                    continue
                raise
            found = True
            level = "service" if scope.service else "stage" if scope.stage else "project"
            parsed = parse_sli(resource.content, what=f"{uri} of {level} level")
            merged.update(parsed.indicators)
        return merged if found else None

    def _timeout(self) -> float:
        return self._config.query_timeout.total_seconds()

    async def _prometheus(
        self, endpoint: PrometheusEndpoint, request: _Request, name: str, value: Any
    ) -> float:
        query = substitute_placeholders(prometheus_query(name, value), **_placeholders(request))
        url = endpoint.url.rstrip("/") + "/api/v1/query"
        auth = None
        if endpoint.user:
            password = endpoint.password.get_secret_value() if endpoint.password else ""
            auth = httpx.BasicAuth(endpoint.user, password)
        response = await self._get(
            url,
            params={"query": query, "time": f"{request.end.timestamp():.3f}"},
            auth=auth,
            what=f"query Prometheus at {endpoint.url}",
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _SLIError(
                f"Prometheus at {endpoint.url} answered HTTP {response.status_code}: {_snippet(response)}"
            )
        if body.get("status") != "success":
            raise _SLIError(f"unable to query Prometheus: {body.get('errorType')}: {body.get('error')}")
        return prometheus_value(body.get("data"))

    async def _web(self, request: _Request, name: str, value: Any) -> float:
        indicator = web_indicator(name, value)
        placeholders = _placeholders(request)
        url = substitute_placeholders(indicator.url, **placeholders)
        headers = {k: substitute_placeholders(v, **placeholders) for k, v in indicator.headers.items()}
        response = await self._get(url, headers=headers, what=f"GET {url}")
        if not response.is_success:
            raise _SLIError(f"GET {url} answered HTTP {response.status_code}: {_snippet(response)}")
        try:
            document = response.json()
        except ValueError:
            raise _SLIError(f"GET {url} did not answer JSON: {_snippet(response)}") from None
        found = json_path(document, substitute_placeholders(indicator.path, **placeholders))
        return numeric_value(found, what=f"the value at {indicator.path} of GET {url}")

    async def _get(
        self,
        url: str,
        *,
        what: str,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        timeout = self._timeout()
        try:
            return await self._http.get(url, params=params, headers=headers, auth=auth, timeout=timeout)
        except httpx.TimeoutException:
            raise _SLIError(f"unable to {what}: no answer within {timeout:g} s") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise _SLIError(f"unable to {what}: invalid URL: {exc}") from None
        except httpx.HTTPError as exc:
            raise _SLIError(f"unable to {what}: {type(exc).__name__}: {exc}") from None


def _placeholders(request: _Request) -> dict[str, Any]:
    return {
        "project": request.project,
        "stage": request.stage,
        "service": request.service,
        "deployment": request.deployment,
        "labels": request.labels,
        "custom_filters": request.custom_filters,
        "start": request.start,
        "end": request.end,
    }


def _snippet(response: httpx.Response) -> str:
    text = response.text.strip()
    return text if len(text) <= 200 else text[:200] + "..."
