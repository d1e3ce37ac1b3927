"""The Bridge: Capstan's web UI, served by the gateway under ``/``.

Server-rendered Jinja2 pages with htmx for partial updates and server-sent events for live ones;
no JavaScript build step (htmx and its SSE extension are vendored under ``static/``). Pages read
the event store directly, through the same ``store`` functions the API uses, and change things
(approve, pause, abort) through the same routing helpers the API routes call, so the Bridge can
do nothing the API could not.

A page module holds an ``APIRouter`` named ``router``; :data:`PAGE_MODULES` lists them.
"""

from __future__ import annotations

import importlib

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from api.bridge.templating import STATIC_DIR

PAGE_MODULES = (
    "api.bridge.login",
    "api.bridge.projects",
    "api.bridge.sequences",
    "api.bridge.sequence_actions",
    "api.bridge.evaluations",
    "api.bridge.dora",
    "api.bridge.integrations",
)
"""Modules of Bridge pages, each with a ``router``."""

STATIC_PATH = "/bridge/static"
"""Where the Bridge's CSS and vendored JavaScript are served."""


def build_bridge_router() -> APIRouter:
    """Every Bridge page; none of them appears in the OpenAPI schema."""
    router = APIRouter(include_in_schema=False)
    for name in PAGE_MODULES:
        router.include_router(importlib.import_module(name).router)
    return router


def install_bridge(app: FastAPI) -> None:
    """Serve the Bridge's pages and static files from ``app``."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="bridge-static")
    app.include_router(build_bridge_router())
