"""What the executor reads from the control plane: ``job/config.yaml``, task files and secrets.

Resources are read through Keptn's resource API at the version the event names
(``gitcommitid``), at service level, then stage level, then project level: the first level that
has the file wins, as for webhooks. A folder in ``files`` is every resource under it (listed at
the same level order). Secret values come from ``GET /api/secrets/v1/secret/values`` (scope
``keptn-job-executor-service``, token scope ``secrets:use``). Transient failures (no answer,
429, 5xx, e.g. while the gateway restarts) are retried with the SDK's backoff.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from capstan.sdk import Backoff, ControlPlaneError

__all__ = ["EXECUTOR_SECRET_SCOPE", "ResourceReader", "Scope"]

EXECUTOR_SECRET_SCOPE = "keptn-job-executor-service"
"""The secret scope the executor reads (``env: [{name: <secret>, valueFrom: secret}]``)."""
_LIST_PAGE = 100


@dataclass(frozen=True, slots=True)
class Scope:
    """Where an event's resources are: project, stage, service, and the version."""

    project: str
    stage: str
    service: str
    commit: str | None = None

    def levels(self) -> list[str]:
        """The resource API paths of the three levels, most specific first."""
        project = f"project/{quote(self.project, safe='')}"
        stage = f"{project}/stage/{quote(self.stage, safe='')}"
        return [f"{stage}/service/{quote(self.service, safe='')}", stage, project]


class ResourceReader:
    """Reads resources and secret values from the control plane.

    Args:
        api_url: the API's base URL, ending in ``/api``.
        token: the API token.
        backoff: retries of transient failures.
        timeout: seconds per request.
    """

    def __init__(self, api_url: str, token: str, *, backoff: Backoff, timeout: float = 30.0) -> None:
        self._backoff = backoff
        self._http = httpx.AsyncClient(
            base_url=api_url.rstrip("/") + "/",
            headers={"x-token": token, "user-agent": "capstan-executor"},
            timeout=timeout,
        )

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any] | None:
        """GET a JSON object; None for a 404; retries transient failures."""
        for attempt in range(1, self._backoff.attempts + 1):
            try:
                response = await self._http.get(path, params=params)
            except httpx.TransportError as exc:
                error = ControlPlaneError(f"GET {path}: {exc or type(exc).__name__}")
            else:
                if response.status_code == 404:
                    return None
                if response.status_code < 400:
                    body = response.json()
                    if not isinstance(body, dict):
                        raise ControlPlaneError(f"GET {path}: the answer is not a JSON object")
                    return body
                error = ControlPlaneError(
                    f"GET {path}: HTTP {response.status_code}: {response.text[:200]}",
                    status_code=response.status_code,
                )
            if not error.retryable or attempt == self._backoff.attempts:
                raise error
            await asyncio.sleep(self._backoff.delay(attempt))
        raise AssertionError("unreachable")  # the loop returns or raises

    def _version(self, scope: Scope) -> dict[str, str]:
        return {"gitCommitID": scope.commit} if scope.commit else {}

    async def read(self, scope: Scope, uri: str) -> tuple[bytes, str] | None:
        """The content of a resource at the first level that has it, and that level's path.

        Raises:
            ControlPlaneError: the control plane failed (other than "not found").
        """
        for level in scope.levels():
            body = await self._get(
                f"resource-service/v1/{level}/resource/{quote(uri, safe='/')}", self._version(scope)
            )
            if body is not None:
                content = body.get("resourceContent")
                return base64.b64decode(content if isinstance(content, str) else ""), level
        return None

    async def read_folder(self, scope: Scope, folder: str) -> dict[str, bytes]:
        """Every resource under ``folder/``, from the first level that has any.

        Raises:
            ControlPlaneError: the control plane failed.
        """
        prefix = folder.rstrip("/") + "/"
        for level in scope.levels():
            uris: list[str] = []
            params = {**self._version(scope), "pageSize": str(_LIST_PAGE)}
            while True:
                page = await self._get(f"resource-service/v1/{level}/resource", params)
                if page is None:
                    break
                uris += [
                    str(item["resourceURI"]).lstrip("/")
                    for item in page.get("resources") or []
                    if isinstance(item, dict)
                    and str(item.get("resourceURI", "")).lstrip("/").startswith(prefix)
                ]
                following = page.get("nextPageKey")
                if not following or following == "0":
                    break
                params["nextPageKey"] = str(following)
            if uris:
                files: dict[str, bytes] = {}
                for uri in uris:
                    found = await self._get(
                        f"resource-service/v1/{level}/resource/{quote(uri, safe='/')}", self._version(scope)
                    )
                    if found is not None:
                        files[uri] = base64.b64decode(str(found.get("resourceContent") or ""))
                return files
        return {}

    async def secret(self, name: str) -> dict[str, str] | None:
        """The values of a secret of scope ``keptn-job-executor-service``; None if it does not exist.

        The caller must not log or send what this returns (mask it in output).

        Raises:
            ControlPlaneError: the control plane failed or refused (e.g. 403 without ``secrets:use``).
        """
        body = await self._get("secrets/v1/secret/values", {"name": name, "scope": EXECUTOR_SECRET_SCOPE})
        if body is None:
            return None
        data = body.get("data")
        if not isinstance(data, dict):
            raise ControlPlaneError("GET secrets/v1/secret/values: the answer has no data")
        return {str(key): str(value) for key, value in data.items()}
