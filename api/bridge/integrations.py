"""The integrations page (``/integrations``): registered integrations, their subscriptions and heartbeat.

It reads what ``GET /api/controlPlane/v1/uniform/registration`` reads and needs the same access:
``integrations:read`` on a token not restricted to a project (integrations belong to no project).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.bridge.session import BridgeUserDep
from api.bridge.templating import templates
from api.deps import ServicesDep
from capstan.scopes import Scope
from store import uniform as uniform_store
from store.uniform import Integration

router = APIRouter()


@dataclass(frozen=True)
class IntegrationRow:
    """One integration as the page shows it."""

    integration: Integration
    version: str
    location: str
    hostname: str
    seconds_ago: float
    alive: bool


def ago(seconds: float) -> str:
    """``5 s ago``, ``3 min ago``, ``2 h ago``, ``4 d ago``."""
    if seconds < 60:
        return f"{max(0, int(seconds))} s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def _text(metadata: dict[str, object], key: str) -> str:
    value = metadata.get(key)
    return value if isinstance(value, str) else ""


@router.get("/integrations", response_class=HTMLResponse)
async def integrations(request: Request, services: ServicesDep, user: BridgeUserDep) -> HTMLResponse:
    """Every live integration: name, version, location, subscriptions, last heartbeat."""
    user.principal.require(Scope.INTEGRATIONS_READ, action="viewing integrations")
    user.principal.require_all_projects("viewing integrations")
    now = datetime.now(UTC)
    ttl = services.settings.uniform_integration_ttl.total_seconds()
    rows = []
    for item in await uniform_store.list_integrations(services.pool):
        seconds = (now - item.last_seen).total_seconds()
        rows.append(
            IntegrationRow(
                integration=item,
                version=_text(item.metadata, "integrationversion"),
                location=_text(item.metadata, "location"),
                hostname=_text(item.metadata, "hostname"),
                seconds_ago=seconds,
                alive=seconds < ttl,
            )
        )
    context = {"user": user, "nav": "integrations", "rows": rows, "ttl": ttl, "ago": ago}
    return templates.TemplateResponse(request, "integrations.html", context)
