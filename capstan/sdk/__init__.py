"""Write a Capstan (or Keptn v1) integration in a few lines: the Python integration SDK.

An integration answers task events: for every ``sh.keptn.event.<task>.triggered`` event that
matches its subscriptions it sends ``.started``, runs the handler, and sends ``.finished`` with
the handler's data, as Keptn's go-utils SDK does. It registers itself with the control plane,
keeps a heartbeat, and receives events by polling (``mode="pull"``, a remote execution plane) or
over HTTP (``mode="push"``).

Example::

    from capstan.sdk import Integration, TaskContext, TaskFailed

    integration = Integration("helm-service", api_url="http://127.0.0.1:8080/api", token="…")

    @integration.task("deployment", projects=["sockshop"])
    async def deploy(ctx: TaskContext) -> dict[str, object]:
        if ctx.stage == "prod" and not ctx.labels.get("approved-by"):
            raise TaskFailed("production deployments need an approved-by label")
        return {"deployment": {"deploymentURIsLocal": [f"http://{ctx.service}.{ctx.stage}"]}}

    integration.run()   # or: async with integration.running(): ...

Logs go through the standard ``logging`` module (logger ``capstan.sdk``); each record carries
``extra`` fields such as ``event_id``, ``task``, ``triggered_id`` and ``keptn_context``.
"""

from ._client import Backoff, ControlPlaneError
from ._context import TaskContext, TaskFailed, TaskHandler, TryAgainLater
from ._integration import Integration
from ._subscriptions import Subscription

__all__ = [
    "Backoff",
    "ControlPlaneError",
    "Integration",
    "Subscription",
    "TaskContext",
    "TaskFailed",
    "TaskHandler",
    "TryAgainLater",
]
