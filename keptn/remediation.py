"""Remediation (self-healing): ``remediation.yaml`` and the ``get-action`` task (spec §6).

:func:`parse_remediation` reads the file (YAML 1.2, :mod:`keptn.yaml_loader`), :func:`choose_action`
is Keptn's ``GetNextAction`` with its messages, :func:`get_action_finished_data` builds the answer
whose ``get-action.actionIndex`` (n+1) the merged payload hands to the next run of the remediation
sequence, so that each failed post-action evaluation escalates to the next action. Pure functions.

Deliberate differences from Keptn's parsing (ghodss/yaml into go-utils' ``v0_1_4.Remediation``,
which checked only ``apiVersion``), so that a broken file fails with a message naming the
problem instead of silently choosing another action:

* ``kind`` must be ``Remediation`` and ``spec.remediations`` must be a list;
* every remediation needs a non-empty ``problemType`` and an ``actionsOnOpen`` list (Keptn's
  specification requires both; Keptn itself skipped a remediation without actions and matched an
  empty ``problemType`` against an empty root cause);
* every action needs a non-empty ``name`` and ``action`` (also required by the specification);
  ``description`` defaults to ``""`` and ``value`` to ``null``;
* YAML 1.2 scalars: ``value: {EnablePromotion: off}`` gives the string ``"off"`` (the feature
  flag state action providers expect), where Keptn's YAML 1.1 parser made it ``false``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field

from keptn._fields import describe, scalar_text
from keptn.errors import InvalidInputError
from keptn.evaluation_payload import scope_data
from keptn.yaml_loader import load_yaml

__all__ = [
    "DECODE_FAILED",
    "PARSE_FAILED",
    "REMEDIATION_API_VERSION",
    "REMEDIATION_FILE",
    "REMEDIATION_SOURCE",
    "GetActionOutcome",
    "InvalidRemediationError",
    "Remediation",
    "RemediationAction",
    "RemediationFile",
    "choose_action",
    "get_action_finished_data",
    "get_action_index",
    "parse_remediation",
    "remediation_missing_message",
]

REMEDIATION_SOURCE = "remediation-service"
"""The source of the events the built-in remediation service emits (Keptn's service name)."""
REMEDIATION_FILE = "remediation.yaml"
"""The resource the remediation service reads (per service and stage)."""
REMEDIATION_API_VERSION = "spec.keptn.sh/0.1.4"
"""The only ``apiVersion`` Keptn's remediation-service accepted."""
REMEDIATION_KIND = "Remediation"
PARSE_FAILED = "Could not parse remediation.yaml file. Please validate it against the specification."
"""Keptn's message for an unusable ``remediation.yaml`` (``get-action.finished``, status errored)."""
DECODE_FAILED = "Could not decode input event data"
"""Keptn's message for a ``get-action.triggered`` whose data it could not read (status errored)."""
_DEFAULT_PROBLEM_TYPE = "default"


class InvalidRemediationError(InvalidInputError):
    """A ``remediation.yaml`` cannot be used.

    The message is Keptn's :data:`PARSE_FAILED` followed by :attr:`detail`; :attr:`field` is
    the path of the bad value (e.g. ``spec.remediations[1].actionsOnOpen[0].action``).

    Attributes:
        detail: what is wrong, e.g. ``spec.remediations[0].problemType: missing``.
    """

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(f"{PARSE_FAILED} {detail}", field=field)
        self.detail = detail


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


class RemediationAction(_Model):
    """One step of an escalation list (``actionsOnOpen`` entry)."""

    name: str
    """Display name, e.g. ``Scaling ReplicaSet by 1``."""
    action: str
    """The key action providers subscribe to, e.g. ``scaling``."""
    description: str = ""
    value: Any = None
    """Free-form parameter of the action: a string, a number, a mapping, a list or ``None``."""


class Remediation(_Model):
    """The escalation list for one problem type."""

    problem_type: str = Field(alias="problemType")
    """Matched exactly against the problem's ``rootCause``, then ``problemTitle``; or ``default``."""
    actions_on_open: list[RemediationAction] = Field(alias="actionsOnOpen")


class RemediationFile(_Model):
    """A parsed ``remediation.yaml``."""

    api_version: str = Field(alias="apiVersion")
    kind: str
    name: str = ""
    """``metadata.name``; empty when not given."""
    remediations: list[Remediation]


def _fail(path: str, reason: str) -> NoReturn:
    raise InvalidRemediationError(f"{path}: {reason}", field=path)


def _mapping(value: Any, path: str, *, required: bool) -> dict[str, Any]:
    if value is None:
        if required:
            _fail(path, "missing")
        return {}
    if not isinstance(value, dict):
        _fail(path, f"expected a mapping, found {describe(value)}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        _fail(path, "missing (expected a list)")
    if not isinstance(value, list):
        _fail(path, f"expected a list, found {describe(value)}")
    return value


def _string(value: Any, path: str, *, required: bool) -> str:
    """A string field; like ghodss/yaml, any scalar stands for its text (``name: 1`` is ``"1"``)."""
    text = scalar_text(value)
    if text is None:
        _fail(path, f"expected a string, found {describe(value)}")
    if required and not text:
        _fail(path, "missing" if value is None else "must not be empty")
    return text


def _action(item: Any, path: str) -> RemediationAction:
    fields = _mapping(item, path, required=True)
    return RemediationAction(
        name=_string(fields.get("name"), f"{path}.name", required=True),
        action=_string(fields.get("action"), f"{path}.action", required=True),
        description=_string(fields.get("description"), f"{path}.description", required=False),
        value=fields.get("value"),
    )


def _remediation(item: Any, path: str) -> Remediation:
    fields = _mapping(item, path, required=True)
    problem_type = _string(fields.get("problemType"), f"{path}.problemType", required=True)
    actions_path = f"{path}.actionsOnOpen"
    actions = [
        _action(action, f"{actions_path}[{index}]")
        for index, action in enumerate(_list(fields.get("actionsOnOpen"), actions_path))
    ]
    return Remediation(problem_type=problem_type, actions_on_open=actions)


def parse_remediation(content: str | bytes) -> RemediationFile:
    """Parse a ``remediation.yaml`` (spec §6.1).

    ``apiVersion`` must be exactly ``spec.keptn.sh/0.1.4``, as Keptn required. See the module
    docstring for the other checks, which Keptn did not make. Unknown keys are ignored, as Keptn
    ignored them. Several remediations may share a ``problemType``; the first one is used.

    Args:
        content: the file content.

    Returns:
        The remediation file.

    Raises:
        InvalidRemediationError: ``Could not parse remediation.yaml file. Please validate it
            against the specification. <path>: <what is wrong>`` with ``field`` set to the path;
            for the version: ``apiVersion: remediation.yaml file does not conform to
            remediation spec spec.keptn.sh/0.1.4 (found '<value>')``.
    """
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError:
            _fail(REMEDIATION_FILE, "the file is not UTF-8 text")
    try:
        document = load_yaml(content, what=REMEDIATION_FILE, field=REMEDIATION_FILE)
    except InvalidInputError as exc:
        raise InvalidRemediationError(exc.message, field=REMEDIATION_FILE) from None
    if document is None:
        _fail(REMEDIATION_FILE, "the file is empty")
    top = _mapping(document, REMEDIATION_FILE, required=True)

    api_version = top.get("apiVersion")
    if api_version != REMEDIATION_API_VERSION:
        found = "nothing" if api_version is None else describe(api_version)
        _fail(
            "apiVersion",
            f"remediation.yaml file does not conform to remediation spec {REMEDIATION_API_VERSION} "
            f"(found {found})",
        )
    kind = top.get("kind")
    if kind != REMEDIATION_KIND:
        _fail("kind", f"expected {REMEDIATION_KIND!r}, found {'nothing' if kind is None else describe(kind)}")
    metadata = _mapping(top.get("metadata"), "metadata", required=False)
    name = _string(metadata.get("name"), "metadata.name", required=False)
    spec = _mapping(top.get("spec"), "spec", required=True)
    items = _list(spec.get("remediations"), "spec.remediations")
    remediations = [_remediation(item, f"spec.remediations[{index}]") for index, item in enumerate(items)]
    return RemediationFile(api_version=api_version, kind=kind, name=name, remediations=remediations)


def remediation_missing_message(triggered_data: Mapping[str, Any]) -> str:
    """Keptn's message when ``remediation.yaml`` could not be read (``get-action.finished``, errored).

    ``Could not get remediation.yaml file for services <service> in stage <stage>.`` (sic).
    """
    return (
        f"Could not get remediation.yaml file for services {triggered_data.get('service', '')} "
        f"in stage {triggered_data.get('stage', '')}."
    )


class GetActionOutcome(BaseModel):
    """What the remediation service answers a ``get-action.triggered`` with."""

    model_config = ConfigDict(frozen=True)

    result: Literal["pass", "fail"]
    status: Literal["succeeded", "errored"]
    message: str
    action: dict[str, Any] | None = None
    """The chosen action as sent (``name``, ``action``, ``description``, ``value``), on success."""
    next_index: int | None = None
    """``get-action.actionIndex`` for the next run of the sequence, on success."""

    @classmethod
    def errored(cls, message: str) -> GetActionOutcome:
        """An outcome for a file or event that could not be used (``errored``, ``fail``)."""
        return cls(result="fail", status="errored", message=message)


def _problem_text(problem: Mapping[str, Any], key: str) -> str:
    value = problem.get(key)
    if value is None or isinstance(value, str):
        return value or ""
    raise InvalidInputError(
        f"{DECODE_FAILED}: problem.{key} must be a string, found {describe(value)}", field=f"problem.{key}"
    )


def _action_payload(action: RemediationAction) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": action.name,
        "action": action.action,
        "description": action.description,
    }
    if action.value is not None:  # go-utils' ActionInfo: `json:"value,omitempty"`
        payload["value"] = action.value
    return payload


def choose_action(
    remediation: RemediationFile, problem: Mapping[str, Any] | None, action_index: int
) -> GetActionOutcome:
    """Choose the next remediation action, as Keptn's ``GetNextAction`` (§6.3 step 2).

    The escalation list is the first remediation whose ``problemType`` equals the problem's
    ``rootCause``; else the first equal to its ``problemTitle``; else the first ``default``.
    Matching is exact (case and spaces count). In messages the problem is named as Keptn named
    it: ``root cause <rootCause>`` when there is one, else ``problem title <problemTitle>``, else
    ``problem type default`` — also when the list was found by the next fallback.

    Args:
        remediation: the parsed ``remediation.yaml``.
        problem: ``data.problem`` of the ``get-action.triggered`` (``rootCause``,
            ``problemTitle``; other keys ignored); ``None`` for none.
        action_index: the position in the escalation list (:func:`get_action_index`).

    Returns:
        ``succeeded``/``pass`` with the action and ``next_index = action_index + 1``; or
        ``succeeded``/``fail`` with ``unable to find action for <problem>`` (no list matches) or
        ``there is no action with index <n> for <problem>`` (the list is exhausted: the end of
        the escalation). Data Keptn could not decode (``problem`` not a mapping, a ``rootCause`` or
        ``problemTitle`` that is not a string, a negative index) gives ``errored``/``fail`` with
        ``Could not decode input event data: <what is wrong>``; nothing is raised.
    """
    if problem is None:
        problem = {}
    try:
        if not isinstance(problem, Mapping):
            raise InvalidInputError(f"{DECODE_FAILED}: problem must be a mapping, found {describe(problem)}")
        if action_index < 0:
            raise InvalidInputError(
                f"{DECODE_FAILED}: get-action.actionIndex must be at least 0, found {action_index}"
            )
        root_cause = _problem_text(problem, "rootCause")
        problem_title = _problem_text(problem, "problemTitle")
    except InvalidInputError as exc:
        return GetActionOutcome.errored(exc.message)
    if root_cause:
        named = f"root cause {root_cause}"
    elif problem_title:
        named = f"problem title {problem_title}"
    else:
        named = f"problem type {_DEFAULT_PROBLEM_TYPE}"

    chosen: Remediation | None = None
    for wanted in (root_cause, problem_title, _DEFAULT_PROBLEM_TYPE):
        if not wanted:
            continue  # an empty root cause or title matches nothing (Keptn matched problemType "")
        chosen = next((item for item in remediation.remediations if item.problem_type == wanted), None)
        if chosen is not None:
            break
    if chosen is None:
        return GetActionOutcome(
            result="fail", status="succeeded", message=f"unable to find action for {named}"
        )
    actions = chosen.actions_on_open
    if action_index >= len(actions):
        return GetActionOutcome(
            result="fail",
            status="succeeded",
            message=f"there is no action with index {action_index} for {named}",
        )
    action = actions[action_index]
    return GetActionOutcome(
        result="pass",
        status="succeeded",
        message=f"action {action_index + 1} of {len(actions)} for {named}: {action.name}",
        action=_action_payload(action),
        next_index=action_index + 1,
    )


def get_action_index(data: Mapping[str, Any]) -> int:
    """``data["get-action"]["actionIndex"]`` of a ``get-action.triggered``; 0 when absent or ``null``.

    The first run of a remediation sequence has no index; each ``get-action.finished`` sets the
    next one, which the merged payload carries into the next run.

    Args:
        data: ``data`` of the ``get-action.triggered`` event.

    Returns:
        The index, at least 0. A whole-number float (``1.0``) is accepted, as Go's decoder did.

    Raises:
        InvalidInputError: ``Could not decode input event data: ...`` naming
            ``get-action.actionIndex`` (or ``get-action``) and the bad value, for a
            ``get-action`` that is not a mapping or an index that is not a whole number >= 0.
    """
    block = data.get("get-action")
    if block is None:
        return 0
    if not isinstance(block, Mapping):
        raise InvalidInputError(
            f"{DECODE_FAILED}: get-action must be a mapping, found {describe(block)}", field="get-action"
        )
    value = block.get("actionIndex")
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(
            f"{DECODE_FAILED}: get-action.actionIndex must be a whole number of at least 0, "
            f"found {describe(value)}",
            field="get-action.actionIndex",
        )
    return value


def get_action_finished_data(triggered_data: Mapping[str, Any], outcome: GetActionOutcome) -> dict[str, Any]:
    """The data of ``get-action.finished``.

    ``project``, ``stage``, ``service`` and ``labels`` copied, then ``result``, ``status`` and
    ``message``; on success also ``action`` (``name``, ``action``, ``description``, and ``value``
    unless it is ``null`` — go-utils omits an empty value) and ``get-action: {actionIndex: n+1}``.

    Args:
        triggered_data: ``data`` of the ``get-action.triggered`` event.
        outcome: :func:`choose_action`'s answer, or :meth:`GetActionOutcome.errored`.
    """
    data = scope_data(triggered_data)
    data.update(result=outcome.result, status=outcome.status, message=outcome.message)
    if outcome.action is not None:
        data["action"] = dict(outcome.action)
    if outcome.next_index is not None:
        data["get-action"] = {"actionIndex": outcome.next_index}
    return data
