"""job/config.yaml parsing, event matching, the JSONPath subset and $(VAR) expansion (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from keptn.job_config import (
    DEFAULT_TIMEOUT_SECONDS,
    EnvVar,
    InvalidJobConfigError,
    JsonPathError,
    command_allowed,
    expand_args,
    find_action,
    jsonpath_get,
    parse_job_config,
    render_value,
)

KEPTN_EXAMPLE = """\
apiVersion: v2
actions:
  - name: "Run locust"
    events:
      - name: "sh.keptn.event.test.triggered"
        jsonpath:
          property: "$.data.test.teststrategy"
          match: "locust"
    tasks:
      - name: "Run locust smoke tests"
        files:
          - locust/basic.py
          - locust/locust.conf
        image: "locustio/locust"
        cmd: ["locust"]
        args: ["--config", "/keptn/locust/locust.conf", "--host", "$(HOST)"]
        env:
          - name: HOST
            value: "$.data.deployment.deploymentURIsLocal[0]"
            valueFrom: event
          - name: locust-secret
            valueFrom: secret
        workingDir: /keptn
        maxPollDuration: 1000
  - name: "Deploy"
    events:
      - name: "sh.keptn.event.deployment.triggered"
    silent: true
    tasks:
      - name: helm
        cmd: [helm, upgrade]
        timeout: 2m30s
"""


def test_keptns_example_parses_with_every_field():
    config = parse_job_config(KEPTN_EXAMPLE)
    locust, deploy = config.actions
    assert locust.events[0].property == "$.data.test.teststrategy"
    assert locust.events[0].match == "locust"
    task = locust.tasks[0]
    assert task.image == "locustio/locust"
    assert task.files == ("locust/basic.py", "locust/locust.conf")
    assert task.cmd == ("locust",)
    assert task.args[-1] == "$(HOST)"
    assert task.env == (
        EnvVar(name="HOST", value="$.data.deployment.deploymentURIsLocal[0]", value_from="event"),
        EnvVar(name="locust-secret", value_from="secret"),
    )
    assert task.working_dir == "/keptn"
    assert task.timeout_seconds == 1000
    assert deploy.silent is True
    assert deploy.tasks[0].timeout_seconds == 150
    assert deploy.tasks[0].image is None
    assert deploy.tasks[0].env == ()


def test_a_task_without_a_timeout_gets_keptns_default():
    config = parse_job_config(
        "apiVersion: v2\nactions: [{name: a, events: [{name: x}], tasks: [{name: t, cmd: [ls]}]}]"
    )
    assert config.actions[0].tasks[0].timeout_seconds == DEFAULT_TIMEOUT_SECONDS


def _task(fields: str) -> str:
    """A config with one action whose one task has these (flow-style) fields."""
    return f"apiVersion: v2\nactions: [{{name: a, events: [{{name: x}}], tasks: [{{name: t, {fields}}}]}}]"


T = "actions[0].tasks[0]"


@pytest.mark.parametrize(
    ("yaml_text", "field", "says"),
    [
        ("apiVersion: v1\nactions: []", "apiVersion", "'v1' is not supported"),
        ("apiVersion: v2", "actions", "non-empty list"),
        ("", "job/config.yaml", "empty"),
        (_task("cmd: ls -l"), f"{T}.cmd", "list of strings"),
        (_task("cmd: []"), f"{T}.cmd", "non-empty list"),
        (_task("cmd: [x], resources: {limits: {cpu: 1}}"), f"{T}.resources", "Kubernetes setting"),
        (_task("cmd: [x], shell: true"), f"{T}.shell", "unknown field"),
        (_task("cmd: [x], env: [{name: A, valueFrom: file}]"), f"{T}.env[0].valueFrom", "not one of"),
        (_task("cmd: [x], env: [{name: 'A B', value: v}]"), f"{T}.env[0].name", "not an environment"),
        (_task("cmd: [x], env: [{name: A, value: d, valueFrom: event}]"), f"{T}.env[0].value", "with $"),
        (_task("cmd: [x], files: [../etc/passwd]"), f"{T}.files[0]", "not a resource path"),
        (_task("cmd: [x], workingDir: ../up"), f"{T}.workingDir", "'..'"),
        (_task("cmd: [x], timeout: 1m, maxPollDuration: 3"), f"{T}.timeout", "not both"),
        (_task("cmd: [x], maxPollDuration: '3'"), f"{T}.maxPollDuration", "whole seconds"),
        (_task("cmd: [x], timeout: 0s"), T, "positive"),
        ("apiVersion: v2\nactions: [{name: a, events: [{name: x, jsonpath: {property: '$..x', match: y}}], "
         "tasks: [{name: t, cmd: [x]}]}]", "actions[0].events[0].jsonpath.property", "unsupported syntax"),
        ("apiVersion: v2\nactions: [{name: a, events: [{name: x}], silent: yes, "
         "tasks: [{name: t, cmd: [y]}]}]",
         "actions[0].silent", "true or false"),
        ("apiVersion: v2\napiVersion: v2\nactions: []", "job/config.yaml", "duplicate"),
    ],
)  # fmt: skip
def test_invalid_configs_name_the_field(yaml_text: str, field: str, says: str):
    with pytest.raises(InvalidJobConfigError) as caught:
        parse_job_config(yaml_text)
    assert caught.value.field == field
    assert says in caught.value.message
    assert caught.value.message.startswith("Job configuration invalid:")


def test_non_utf8_bytes_are_refused():
    with pytest.raises(InvalidJobConfigError, match="not UTF-8"):
        parse_job_config(b"\xff\xfe")


EVENT: dict[str, Any] = {
    "type": "sh.keptn.event.test.triggered",
    "data": {
        "project": "p",
        "test": {"teststrategy": "locust", "users": 3, "smoke": True},
        "deployment": {"deploymentURIsLocal": ["http://carts.dev:80", "http://b"]},
        "labels": {"my.label": "x"},
    },
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", EVENT),
        ("$.type", "sh.keptn.event.test.triggered"),
        ("$.data.test.teststrategy", "locust"),
        ("$.data.deployment.deploymentURIsLocal[0]", "http://carts.dev:80"),
        ("$.data.deployment.deploymentURIsLocal[-1]", "http://b"),
        ("$['data']['labels']['my.label']", "x"),
        ('$.data["test"].users', 3),
    ],
)
def test_jsonpath_subset(path: str, value: Any):
    assert jsonpath_get(EVENT, path) == value


@pytest.mark.parametrize(
    "path",
    [
        "$.data.nope",
        "$.data.deployment.deploymentURIsLocal[2]",
        "$.data.test.users.x",
        "data",
        "$.a[*]",
        "$..a",
    ],
)
def test_jsonpath_errors(path: str):
    with pytest.raises(JsonPathError):
        jsonpath_get(EVENT, path)


def test_values_render_as_text_or_json():
    assert render_value("a b") == "a b"
    assert render_value("a b", as_json=True) == '"a b"'
    assert render_value(True) == "true"
    assert render_value(3) == "3"
    assert render_value({"a": [1, "é"]}) == '{"a":[1,"é"]}'


def _config(events: str) -> str:
    return (
        "apiVersion: v2\nactions:\n"
        f"  - {{name: first, events: [{events}], tasks: [{{name: t, cmd: [a]}}]}}\n"
        f"  - {{name: fallback, events: [{{name: {TEST}}}], tasks: [{{name: t, cmd: [b]}}]}}\n"
    )


TEST = "sh.keptn.event.test.triggered"


def _on(prop: str, match: str) -> str:
    return f"{{name: {TEST}, jsonpath: {{property: {prop}, match: {match}}}}}"


@pytest.mark.parametrize(
    ("events", "chosen"),
    [
        (f"{{name: {TEST}}}", "first"),
        ("{name: sh.keptn.event.*.triggered}", "first"),
        ("{name: sh.keptn.event.*}", "fallback"),
        ("{name: sh.keptn.event.deployment.triggered}", "fallback"),
        (_on("$.data.test.teststrategy", "locust"), "first"),
        (_on("$.data.test.teststrategy", "jmeter"), "fallback"),
        (_on("$.data.test.smoke", "'true'"), "first"),
        (_on("$.data.missing", "''"), "fallback"),
        (f"{{name: sh.keptn.event.deployment.triggered}}, {{name: {TEST}}}", "first"),
    ],
)
def test_the_first_matching_action_wins(events: str, chosen: str):
    action = find_action(parse_job_config(_config(events)), EVENT)
    assert action is not None
    assert action.name == chosen


def test_no_action_matches_another_task():
    config = parse_job_config(_config("{name: sh.keptn.event.test.triggered}"))
    assert find_action(config, {**EVENT, "type": "sh.keptn.event.release.triggered"}) is None


def test_args_expand_declared_variables_only_and_stay_separate_arguments():
    env = {"HOST": "http://x; rm -rf /", "N": "3"}
    assert expand_args(["--host", "$(HOST)", "n=$(N)$(N)", "$(OTHER)", "$$(HOST)", "$HOST"], env) == [
        "--host",
        "http://x; rm -rf /",
        "n=33",
        "$(OTHER)",
        "$(HOST)",
        "$HOST",
    ]


def test_command_allow_list_matches_the_name_or_its_path():
    assert command_allowed("python3", ("*",))
    assert command_allowed("/usr/bin/python3", ("python*",))
    assert command_allowed("python3", ("python3", "helm"))
    assert not command_allowed("bash", ("python3", "helm"))
    assert not command_allowed("/bin/sh", ("python3",))
