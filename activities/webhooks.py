"""The built-in webhook service: run the webhook a subscription points at (Keptn's webhook-service, §7).

For an event delivered to a subscription of the built-in ``webhook-service`` integration, the
webhook with that ``subscriptionID`` is looked up in ``webhook/webhook.yaml`` (service, then stage,
then project level, at the event's ``gitcommitid``), its secrets are read (``envFrom``, scope
``keptn-webhook-service``), and its requests are rendered and sent one after the other through the
outbound safety layer (``activities/outbound.py``). For a ``.triggered`` event the activity returns
the ``.started``/``.finished`` answers Keptn's webhook-service sent, for the workflow to emit; for
any other event a failure is only logged, so a broken notification never fails a sequence.

Every message that can reach an event or a log line is masked: secret values become ``***``.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import structlog
from temporalio import activity

from activities.outbound import OutboundPolicy, outbound_client, send
from activities.webhook_models import RUN_WEBHOOK_ACTIVITY, RunWebhookInput, WebhookAnswer, WebhookOutcome
from capstan.secret_box import SecretBox
from capstan.settings import Settings
from capstan.telemetry import client_span, traceparent_headers
from keptn.errors import KeptnError, NotFoundError
from keptn.evaluation_payload import scope_data
from keptn.event_types import EventKind, TaskEventType, maybe_parse_event_type, task_event_type
from keptn.secrets import mask
from keptn.webhook import WEBHOOK_FILE, Webhook, find_webhook, parse_webhook_config, render_request
from keptn.webhook_template import template_context as webhook_template_context
from store.resources import ResourceScope, get_resource
from store.secrets import read_secret_values

WEBHOOK_SECRET_SCOPE = "keptn-webhook-service"
"""The secret scope webhooks read ``envFrom`` secrets from (Keptn's)."""
RESPONSE_SNIPPET = 500
"""Characters of a failed response's body quoted in the failure message."""

_log = structlog.get_logger(__name__)


class WebhookFailure(Exception):
    """A webhook could not run or one of its requests failed; the message is already masked."""


class WebhookActivities:
    """Runs webhooks of the built-in webhook service.

    Args:
        pool: the resource and secret store.
        settings: timeouts, size limit, deny/allow lists, the secret key.
    """

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
        self._policy: OutboundPolicy | None = None

    @activity.defn(name=RUN_WEBHOOK_ACTIVITY)
    async def run_webhook(self, input: RunWebhookInput) -> WebhookOutcome:
        """Run the subscription's webhook for the event; return the answers to a ``.triggered``."""
        event = input.event
        data: dict[str, Any] = event.get("data") or {}
        parsed = maybe_parse_event_type(str(event.get("type", "")))
        task = (
            parsed.task if isinstance(parsed, TaskEventType) and parsed.kind is EventKind.TRIGGERED else None
        )
        secrets: list[str] = []
        webhook: Webhook | None = None
        try:
            webhook = await self._webhook(data, event.get("gitcommitid"), input.subscription_id)
            env = await self._env(webhook)
            secrets = list(env.values())
        except (KeptnError, WebhookFailure) as err:
            return self._failed(event, task, webhook, 0, mask(_message(err), secrets))
        answers = []
        if task is not None and webhook.send_started:
            started = 1 if webhook.send_finished else len(webhook.requests)
            answers += [self._started(task, data) for _ in range(started)]
        context = webhook_template_context(event, env)
        responses: list[Any] = []
        for index, request in enumerate(webhook.requests):
            activity.heartbeat(index)
            try:
                responses.append(await self._send(request, context, index))
            except (KeptnError, WebhookFailure) as err:
                outcome = self._failed(event, task, webhook, index, mask(_message(err), secrets))
                return WebhookOutcome(answers=answers + outcome.answers)
        if task is not None and webhook.send_finished:
            finished = {
                **scope_data(data),
                "result": "pass",
                "status": "succeeded",
                task: {"responses": responses},
            }
            answers.append(WebhookAnswer(type=task_event_type(task, EventKind.FINISHED), data=finished))
        _log.info("webhook sent", subscription_id=input.subscription_id, event_id=event.get("id"))
        return WebhookOutcome(answers=answers)

    async def _webhook(self, data: dict[str, Any], commit: str | None, subscription_id: str) -> Webhook:
        """The subscription's webhook from the most specific ``webhook/webhook.yaml``."""
        project, stage, service = (str(data.get(key) or "") for key in ("project", "stage", "service"))
        if not (project and stage and service):
            raise WebhookFailure("the event has no project, stage and service, so no webhook.yaml applies")
        for scope in (
            ResourceScope(project, stage, service),
            ResourceScope(project, stage),
            ResourceScope(project),
        ):
            try:
                resource = await get_resource(self._pool, scope, WEBHOOK_FILE, commit_id=commit)
            except NotFoundError:
                continue
            webhook = find_webhook(parse_webhook_config(resource.content), subscription_id)
            if webhook is None:
                raise WebhookFailure(
                    f"{WEBHOOK_FILE} of {scope.describe()} has no webhook with subscriptionID"
                    f" '{subscription_id}'"
                )
            return webhook
        raise WebhookFailure(
            f"no {WEBHOOK_FILE} found for service {service} in stage {stage} of project {project}"
        )

    async def _env(self, webhook: Webhook) -> dict[str, str]:
        """``.env`` of the templates: every ``envFrom`` secret value by its name."""
        if not webhook.env_from:
            return {}
        box = self._box()
        env: dict[str, str] = {}
        for entry in webhook.env_from:
            values = await read_secret_values(self._pool, box, entry.secret_name, WEBHOOK_SECRET_SCOPE)
            if entry.secret_key not in values:
                raise WebhookFailure(
                    f"secret '{entry.secret_name}' in scope '{WEBHOOK_SECRET_SCOPE}' has no key"
                    f" '{entry.secret_key}'"
                )
            env[entry.name] = values[entry.secret_key]
        return env

    def _box(self) -> SecretBox:
        from capstan.secret_box import load_secret_box

        return load_secret_box(self._settings)

    async def _send(self, request: Any, context: dict[str, Any], index: int) -> Any:
        """Render and send one request; its response (JSON if it is JSON); ≥ 400 fails."""
        rendered = render_request(request, context, path=f"requests[{index}]")
        if self._policy is None:
            self._policy = OutboundPolicy.from_settings(self._settings)
        attributes = {"http.request.method": rendered.method, "url.full": rendered.url}
        async with outbound_client() as http:
            with client_span(f"webhook {rendered.method}", attributes):
                # the request joins the context's trace, unless the webhook sets traceparent itself
                named = {name.lower() for name, _ in rendered.headers}
                tracing = [(k, v) for k, v in traceparent_headers().items() if k not in named]
                response = await send(
                    http,
                    self._policy,
                    rendered.method,
                    rendered.url,
                    [*rendered.headers, *tracing],
                    rendered.body,
                    timeout=self._settings.webhook_timeout,
                    max_bytes=self._settings.webhook_max_response_bytes,
                )
        if response.status >= 400:
            raise WebhookFailure(
                f"request {index + 1} ({rendered.method}) answered HTTP {response.status}:"
                f" {response.body_text[:RESPONSE_SNIPPET]}"
            )
        try:
            return json.loads(response.body_text)
        except ValueError:
            return response.body_text

    def _started(self, task: str, data: dict[str, Any]) -> WebhookAnswer:
        return WebhookAnswer(
            type=task_event_type(task, EventKind.STARTED), data={**scope_data(data), "status": "succeeded"}
        )

    def _failed(
        self, event: dict[str, Any], task: str | None, webhook: Webhook | None, done: int, message: str
    ) -> WebhookOutcome:
        """Keptn's failure answers (§7.3): errored ``.finished`` events for a ``.triggered``, else a log line.

        One ``.finished`` if the webhook sends its own, otherwise one per request not yet executed
        (so that the counts of ``.started`` and ``.finished`` match). When the webhook sends no
        ``.started`` itself (``sendStarted: false``, or no webhook found) the matching ``.started``
        events go first, so the task completes errored instead of waiting for its timeout.
        """
        _log.warning(
            "webhook failed", event_id=event.get("id"), event_type=event.get("type"), message=message
        )
        if task is None:
            return WebhookOutcome()
        data: dict[str, Any] = event.get("data") or {}
        count = 1 if webhook is None or webhook.send_finished else max(1, len(webhook.requests) - done)
        answers = []
        if webhook is None or not webhook.send_started:
            answers += [self._started(task, data) for _ in range(count)]
        finished = {**scope_data(data), "result": "fail", "status": "errored", "message": message}
        finished_type = task_event_type(task, EventKind.FINISHED)
        answers += [WebhookAnswer(type=finished_type, data=finished) for _ in range(count)]
        return WebhookOutcome(answers=answers)


def _message(err: Exception) -> str:
    return err.message if isinstance(err, KeptnError) else str(err)
