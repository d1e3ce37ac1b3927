"""Input and output of the built-in webhook service's activity, ``run_webhook``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

RUN_WEBHOOK_ACTIVITY = "run_webhook"


class RunWebhookInput(BaseModel):
    """Input of ``run_webhook``."""

    event: dict[str, Any]
    """The stored wire event the subscription matched."""
    subscription_id: str
    """The built-in webhook integration's subscription that matched it."""


class WebhookAnswer(BaseModel):
    """An event the webhook service answers a ``.triggered`` event with."""

    type: str
    """``sh.keptn.event.<task>.started`` or ``.finished``."""
    data: dict[str, Any]


class WebhookOutcome(BaseModel):
    """Output of ``run_webhook``: the answers to emit, in order (none for other event kinds)."""

    answers: list[WebhookAnswer] = []
