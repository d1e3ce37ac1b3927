"""Messages of the queue lock: what requesters, the lock workflow and its activities exchange.

One pydantic model per signal, query, activity and workflow input (style D.6 2). The names of the
signals and activities are constants here so that the workflow, the activities and every requester
agree on them without importing each other.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import AwareDatetime, BaseModel, Field

ACQUIRE_SIGNAL = "acquire"
"""Signal to the lock workflow: queue a :class:`LockRequest`."""
RELEASE_SIGNAL = "release"
"""Signal to the lock workflow: give back (or withdraw) a request, a :class:`LockRelease`."""
GRANTED_SIGNAL = "lock_granted"
"""Signal the lock workflow sends to a requester's workflow: a :class:`LockGranted`."""
LOCK_WORKFLOW_TYPE = "QueueLockWorkflow"
"""Workflow type of the lock, so that activities can start it without importing workflow code."""
STATE_QUERY = "state"
"""Query of the lock workflow: a :class:`LockState`."""

REQUEST_LOCK_ACTIVITY = "request_lock"
"""Activity that signal-with-starts the lock workflow with an ``acquire``."""
RELEASE_LOCK_ACTIVITY = "release_lock"
"""Activity that signals ``release`` to a lock workflow from outside a workflow."""
WATCH_HOLDER_ACTIVITY = "watch_lock_holder"
"""Activity the lock workflow runs while someone holds it: returns when the holder has closed."""


def lock_workflow_id(project: str, stage: str, service: str) -> str:
    """The workflow id of the lock of one (project, stage, service).

    Dots separate the names because Keptn's entity names cannot contain one (``keptn.names``),
    so two different scopes never share a lock; hyphens could (``a-b``/``c`` and ``a``/``b-c``).

    Args:
        project: Keptn project.
        stage: Keptn stage.
        service: Keptn service.

    Returns:
        ``capstan-lock-{project}.{stage}.{service}``.
    """
    return f"capstan-lock-{project}.{stage}.{service}"


class LockRequest(BaseModel):
    """One acquisition of a queue lock (the ``acquire`` signal)."""

    holder: str
    """Workflow id of the requester (the context workflow ``keptn-{project}-{shkeptncontext}``).
    Requests of the same holder never block each other."""
    request_id: str
    """Unique per acquisition and deterministic in the requester (``workflow.uuid4()``): duplicate
    ``acquire``/``release`` signals with the same id are ignored."""
    triggered_at: AwareDatetime
    """When the requesting sequence was triggered: the FIFO key. A sequence that gave the lock up
    (approval, pause) re-acquires with its original time and so keeps its place."""
    label: str = ""
    """What the request is for, shown in the query and the Temporal UI, e.g. ``dev.delivery``.
    Default empty."""


class LockRelease(BaseModel):
    """Give back a granted request, or withdraw a queued one (the ``release`` signal)."""

    holder: str
    """Workflow id of the requester."""
    request_id: str
    """The ``request_id`` of the :class:`LockRequest` being released."""


class LockGranted(BaseModel):
    """Sent to the requester's workflow as the ``lock_granted`` signal when its request is granted."""

    request_id: str
    """The granted request."""
    lock_id: str
    """Workflow id of the lock, where the ``release`` must go."""


class LockState(BaseModel):
    """Who holds the lock and who waits (the ``state`` query)."""

    holder: str | None = None
    """Workflow id holding the lock, or None when it is free."""
    holds: int = 0
    """How many granted, unreleased requests the holder has."""
    held: list[LockRequest] = Field(default_factory=list)
    """Those granted requests (labels say which sequences block the queue)."""
    queue: list[LockRequest] = Field(default_factory=list)
    """Waiting requests, next first (by ``triggered_at``, then arrival)."""


class LockInput(BaseModel):
    """Input of the lock workflow: its scope, and the state carried over a continue-as-new."""

    project: str
    """Keptn project of the lock."""
    stage: str
    """Keptn stage of the lock."""
    service: str
    """Keptn service of the lock."""
    idle_timeout: timedelta = timedelta(minutes=1)
    """How long the lock workflow stays open once free and without waiters, so that a burst of
    sequences shares one run. Default one minute."""
    holder: str | None = None
    """Carried over: the holder. Default None."""
    held: list[LockRequest] = Field(default_factory=list)
    """Carried over: the holder's granted requests. Default empty."""
    queue: list[LockRequest] = Field(default_factory=list)
    """Carried over: the waiting requests, in queue order. Default empty."""
    settled: list[str] = Field(default_factory=list)
    """Carried over: recently released or dropped request ids, so that a late duplicate ``acquire``
    is not granted again. Default empty."""
    granted: int = 0
    """Carried over: requests granted by earlier runs of this chain. Default 0."""
    dropped: int = 0
    """Carried over: requests dropped because their holder closed. Default 0."""


class LockOutcome(BaseModel):
    """Result of a lock workflow that ended because it was idle."""

    granted: int
    """Requests granted over the whole continue-as-new chain."""
    dropped: int
    """Requests dropped because their requester's workflow had closed."""


class LockAcquire(BaseModel):
    """Input of the ``request_lock`` activity."""

    project: str
    """Keptn project of the lock."""
    stage: str
    """Keptn stage of the lock."""
    service: str
    """Keptn service of the lock."""
    request: LockRequest
    """The request to queue."""


class LockReleaseRequest(BaseModel):
    """Input of the ``release_lock`` activity."""

    lock_id: str
    """Workflow id of the lock."""
    release: LockRelease
    """What to release."""


class HolderWatch(BaseModel):
    """Input of the ``watch_lock_holder`` activity."""

    workflow_id: str
    """The holder's workflow id; its runs are followed across continue-as-new."""


class HolderClosed(BaseModel):
    """Result of the ``watch_lock_holder`` activity."""

    workflow_id: str
    """The holder's workflow id."""
    status: str
    """How it closed: ``completed``, ``failed``, ``canceled``, ``terminated``, ``timed_out`` or
    ``not_found``."""
