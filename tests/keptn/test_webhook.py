"""webhook.yaml parsing, the template subset, JSON escaping and secret masking."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keptn.errors import InvalidInputError
from keptn.secrets import mask
from keptn.webhook import (
    EnvFrom,
    Header,
    InvalidWebhookConfigError,
    RenderedRequest,
    WebhookRequest,
    find_webhook,
    is_json_payload,
    parse_webhook_config,
    render_request,
)
from keptn.webhook_template import TemplateError, check_template, render, template_context

SPEC_EXAMPLE = """\
apiVersion: webhookconfig.keptn.sh/v1beta1
kind: WebhookConfig
metadata: {name: webhook-configuration}
spec:
  webhooks:
    - type: sh.keptn.event.evaluation.finished
      subscriptionID: "0123456987"
      sendStarted: true
      sendFinished: true
      envFrom:
        - name: secretKey
          secretRef: {name: my-webhook-secret, key: my-key}
      requests:
        - url: https://hooks.slack.com/services/{{.env.secretKey}}
          method: POST
          headers: [{key: Content-type, value: application/json}]
          payload: '{"text": "Evaluation {{.data.evaluation.result}} with score {{.data.evaluation.score}}"}'
    - type: sh.keptn.event.deployment.triggered
      subscriptionID: 42
      requests:
        - url: http://jenkins.example/job/{{.data.service}}/build
          method: get
          options: ""
"""


def config_with(request: str = "", webhook: str = "") -> str:
    """A valid file whose single webhook gets extra lines (``webhook``) and one request (``request``)."""
    request = request or "url: http://x.example/\n          method: POST"
    return f"""\
apiVersion: webhookconfig.keptn.sh/v1beta1
kind: WebhookConfig
spec:
  webhooks:
    - type: sh.keptn.event.x.triggered
      subscriptionID: sub
{webhook}      requests:
        - {request}
"""


def invalid(content: str | bytes) -> InvalidWebhookConfigError:
    with pytest.raises(InvalidWebhookConfigError) as caught:
        parse_webhook_config(content)
    assert caught.value.message.startswith("Webhook configuration invalid: ")
    return caught.value


# --- parsing -----------------------------------------------------------------------------------


def test_the_spec_example_parses_with_keptns_defaults():
    config = parse_webhook_config(SPEC_EXAMPLE)
    assert config.name == "webhook-configuration" and config.kind == "WebhookConfig"
    first, second = config.webhooks
    assert first.type == "sh.keptn.event.evaluation.finished"
    assert first.subscription_id == "0123456987"
    assert (first.send_started, first.send_finished) == (True, True)
    assert first.env_from == (
        EnvFrom(name="secretKey", secret_name="my-webhook-secret", secret_key="my-key"),
    )
    [request] = first.requests
    assert request.method == "POST"
    assert request.headers == (Header(key="Content-type", value="application/json"),)
    assert request.payload.startswith('{"text": "Evaluation {{.data.evaluation.result}}')
    assert second.subscription_id == "42"  # any scalar stands for its text
    assert (second.send_started, second.send_finished) == (True, False)  # Keptn's defaults
    assert second.requests[0].method == "GET" and second.requests[0].payload == ""
    assert second.env_from == () and second.requests[0].headers == ()


def test_find_webhook_returns_the_first_webhook_of_the_subscription():
    config = parse_webhook_config(SPEC_EXAMPLE)
    assert find_webhook(config, "42") is config.webhooks[1]
    assert find_webhook(config, "0123456987") is config.webhooks[0]
    assert find_webhook(config, "unknown") is None


def test_bytes_are_read_as_utf8_and_models_round_trip_by_alias():
    config = parse_webhook_config(SPEC_EXAMPLE.encode())
    dumped = config.model_dump(by_alias=True)
    assert dumped["webhooks"][0]["subscriptionID"] == "0123456987"
    assert type(config).model_validate(dumped) == config


@pytest.mark.parametrize("method", ["PATCH", "DELETE", "put", "Head"])
def test_methods_beyond_keptns_four_and_any_case_are_accepted(method):
    config = parse_webhook_config(config_with(f"url: http://x.example/\n          method: {method}"))
    assert config.webhooks[0].requests[0].method == method.upper()


def test_v1alpha1_is_rejected_with_a_message_to_convert():
    error = invalid(config_with().replace("v1beta1", "v1alpha1"))
    assert error.field == "apiVersion"
    assert "webhookconfig.keptn.sh/v1alpha1 (requests as curl commands) is not supported" in error.message
    assert "convert the file to webhookconfig.keptn.sh/v1beta1" in error.message


@pytest.mark.parametrize(
    ("content", "field", "detail"),
    [
        ("", "webhook/webhook.yaml", "the file is empty"),
        (b"\xff\xfe", "webhook/webhook.yaml", "not UTF-8"),
        ("a: [", "webhook/webhook.yaml", "is not valid YAML"),
        ("- a", "webhook/webhook.yaml", "expected a mapping, found a list"),
        (
            config_with().replace("apiVersion: webhookconfig.keptn.sh/v1beta1\n", ""),
            "apiVersion",
            "found nothing",
        ),
        (config_with().replace("v1beta1", "v2"), "apiVersion", "expected 'webhookconfig.keptn.sh/v1beta1'"),
        (config_with().replace("kind: WebhookConfig", "kind: Shipyard"), "kind", "expected 'WebhookConfig'"),
        (config_with().split("spec:")[0], "spec", "missing"),
        (config_with().split("  webhooks:")[0] + "  webhooks: []\n", "spec.webhooks", "missing"),
        (
            config_with().replace("      subscriptionID: sub\n", ""),
            "spec.webhooks[0].subscriptionID",
            "missing",
        ),
        (
            config_with().replace("sh.keptn.event.x.triggered", '""'),
            "spec.webhooks[0].type",
            "must not be empty",
        ),
        (config_with().split("      requests:")[0], "spec.webhooks[0].requests", "missing"),
        (
            config_with(webhook="      sendStarted: yes\n"),
            "spec.webhooks[0].sendStarted",
            "expected true or false",
        ),
        (config_with(webhook="      sendFinished: 1\n"), "spec.webhooks[0].sendFinished", "expected true"),
        (
            config_with(webhook="      envFrom: [{name: a}]\n"),
            "spec.webhooks[0].envFrom[0].secretRef",
            "missing",
        ),
        (
            config_with(webhook="      envFrom: [{name: a, secretRef: {name: s}}]\n"),
            "spec.webhooks[0].envFrom[0].secretRef.key",
            "missing",
        ),
        (
            config_with(
                webhook="      envFrom: [{name: a, secretRef: {name: s, key: k}},\n"
                "                {name: a, secretRef: {name: t, key: k}}]\n"
            ),
            "spec.webhooks[0].envFrom",
            "the name 'a' is used more than once",
        ),
        (
            config_with('"curl http://x.example"'),
            "spec.webhooks[0].requests[0]",
            "a curl command is a v1alpha1",
        ),
        (config_with("url: http://x.example/"), "spec.webhooks[0].requests[0].method", "missing"),
        (config_with("method: POST"), "spec.webhooks[0].requests[0].url", "missing"),
        (
            config_with("url: http://x.example/\n          method: TRACE"),
            "spec.webhooks[0].requests[0].method",
            "unsupported webhook request method 'TRACE' (use POST, PUT, GET, HEAD, PATCH, DELETE)",
        ),
        (
            config_with(
                "url: http://x.example/\n          method: POST\n          headers: [{key: X-A, value: ''}]"
            ),
            "spec.webhooks[0].requests[0].headers[0].value",
            "must not be empty",
        ),
        (
            config_with("url: http://x.example/\n          method: POST\n          headers: [{value: v}]"),
            "spec.webhooks[0].requests[0].headers[0].key",
            "missing",
        ),
        (
            config_with(
                "url: http://x.example/\n          method: POST\n          headers: [{key: 'a b', value: v}]"
            ),
            "spec.webhooks[0].requests[0].headers[0].key",
            "'a b' is not a valid header name",
        ),
        (
            config_with(
                "url: http://x.example/\n          method: POST\n          headers: [{key: Host, value: v}]"
            ),
            "spec.webhooks[0].requests[0].headers[0].key",
            "Host is set by the HTTP client",
        ),
        (
            config_with("url: http://x.example/\n          method: POST\n          payload: {a: 1}"),
            "spec.webhooks[0].requests[0].payload",
            "expected a string, found a mapping",
        ),
        (
            config_with("url: http://x.example/\n          method: POST\n          options: --insecure"),
            "spec.webhooks[0].requests[0].options",
            "curl options are not supported (found '--insecure')",
        ),
        (
            config_with("url: http://x.example/{{ .data.project | urlquery }}\n          method: POST"),
            "spec.webhooks[0].requests[0].url",
            "unsupported template expression {{ .data.project | urlquery }}",
        ),
        (
            config_with("url: http://x.example/\n          method: POST\n          payload: '{{.data'"),
            "spec.webhooks[0].requests[0].payload",
            "unclosed action",
        ),
    ],
)
def test_an_unusable_file_names_the_path_of_the_problem(content, field, detail):
    error = invalid(content)
    assert error.field == field
    assert detail in error.message
    assert isinstance(error, InvalidInputError)


def test_kind_webhook_from_keptns_docs_and_missing_metadata_are_accepted():
    config = parse_webhook_config(config_with().replace("kind: WebhookConfig", "kind: Webhook"))
    assert config.kind == "Webhook" and config.name == ""


def test_unknown_keys_are_ignored_as_keptn_ignored_them():
    config = parse_webhook_config(config_with(webhook="      description: hello\n"))
    assert config.webhooks[0].subscription_id == "sub"


# --- templates ---------------------------------------------------------------------------------

MESSAGE = 'line "one"\nline \\two\t'
EVENT: dict[str, Any] = {
    "id": "e-1",
    "type": "sh.keptn.event.evaluation.finished",
    "shkeptncontext": "ctx",
    "data": {
        "project": "sockshop",
        "labels": {"build-id": "7", "owner": "ops"},
        "evaluation": {"result": "pass", "score": 95.0, "ratio": 0.5, "passed": True, "none": None},
        "list": ["a", {"b": 1}],
        "message": MESSAGE,
    },
}
CONTEXT = template_context(EVENT, {"secretKey": "T000/B000/XXXX"})


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.data.project}}", "sockshop"),
        ("{{ .data.project }}", "sockshop"),
        ("{{$.env.secretKey}}", "T000/B000/XXXX"),
        ("{{.id}}/{{.type}}/{{.shkeptncontext}}", "e-1/sh.keptn.event.evaluation.finished/ctx"),
        ('{{index .data.labels "build-id"}}', "7"),
        ("{{index .data.labels `owner`}}", "ops"),
        ("{{index .data.list 1}}", '{"b":1}'),
        ('{{index . "data" "project"}}', "sockshop"),
        ("{{.data.evaluation.score}} {{.data.evaluation.ratio}}", "95 0.5"),
        ("{{.data.evaluation.passed}} {{.data.evaluation.none}}", "true null"),
        ("{{.data.labels}}", '{"build-id":"7","owner":"ops"}'),
        ("{{.data.list}}", '["a",{"b":1}]'),
        ("a {{/* a comment */}}b", "a b"),
        ("a   {{- .data.project -}}   b", "asockshopb"),
        ("a {{- /* trimmed */ -}} b", "ab"),
        ('{{index .data.labels "build-id" }}{{index .data.list 0}}', "7a"),
        ("no actions }} here", "no actions }} here"),
        ("", ""),
    ],
)
def test_the_supported_subset_renders_as_go_did(template, expected):
    assert render(template, CONTEXT, json_escape=False) == expected


def test_a_value_that_looks_like_a_template_is_not_rendered_again():
    context = template_context({"data": {"message": "{{.env.secretKey}}"}}, {"secretKey": "s"})
    assert render("{{.data.message}}", context, json_escape=False) == "{{.env.secretKey}}"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{.data.nope}}", 'payload: {{.data.nope}}: map has no entry for key "nope"'),
        ("{{.env.other}}", 'map has no entry for key "other"'),
        ("{{.data.project.name}}", "data.project is a string, so it has no entry 'name'"),
        ("{{.data.evaluation.none.x}}", "data.evaluation.none is null, so it has no entry 'x'"),
        ("{{index .data.list 5}}", "index 5 out of range (data.list has 2)"),
        ('{{index .data.labels "missing"}}', 'map has no entry for key "missing"'),
    ],
)
def test_a_missing_key_is_an_error_naming_the_action(template, message):
    with pytest.raises(TemplateError, match="^payload: ") as caught:
        render(template, CONTEXT, json_escape=False, field="payload")
    assert message in caught.value.message
    assert caught.value.field == "payload"
    assert "sockshop" not in caught.value.message


@pytest.mark.parametrize(
    "template",
    [
        "{{.data.project | printf}}",
        '{{printf "%s" .data.project}}',
        "{{range .data.list}}x{{end}}",
        "{{if .data.project}}x{{end}}",
        "{{$x := 1}}",
        '{{template "other"}}',
        "{{call .data.f}}",
        "{{ js .data.message }}",
        "{{.data.project.}}",
        '{{index .data "unterminated}}',
        "{{}}",
        "{{ }}",
    ],
)
def test_anything_else_is_an_unsupported_template_expression(template):
    with pytest.raises(TemplateError, match="unsupported template expression"):
        check_template(template)
    with pytest.raises(TemplateError, match="unsupported template expression"):
        render(template, CONTEXT, json_escape=False)


def test_an_unclosed_action_is_an_error_with_its_line():
    with pytest.raises(TemplateError, match=r"unclosed action '\{\{.data.project' \(line 2\)"):
        check_template("first\n{{.data.project")


# --- JSON payloads -----------------------------------------------------------------------------


def test_values_inside_json_strings_are_escaped_and_values_outside_are_written_as_json():
    payload = (
        '{"text": "{{.data.message}} ({{.data.project}})", '
        '"labels": {{.data.labels}}, "score": {{.data.evaluation.score}}}'
    )
    assert is_json_payload(payload, [])
    rendered = render(payload, CONTEXT, json_escape=True)
    assert json.loads(rendered) == {
        "text": f"{MESSAGE} (sockshop)",
        "labels": {"build-id": "7", "owner": "ops"},
        "score": 95,
    }
    raw = render(payload, CONTEXT, json_escape=False)
    with pytest.raises(ValueError):
        json.loads(raw)


def test_an_escaped_quote_in_the_template_does_not_end_the_string():
    payload = '{"text": "say \\"{{.data.message}}\\" now"}'
    assert json.loads(render(payload, CONTEXT, json_escape=True)) == {"text": f'say "{MESSAGE}" now'}


@given(st.text())
def test_any_text_survives_json_escaping(value):
    context = template_context({"data": {"v": value}}, {})
    rendered = render('{"a": "{{.data.v}}", "b": "-{{.data.v}}-"}', context, json_escape=True)
    assert json.loads(rendered) == {"a": value, "b": f"-{value}-"}


@pytest.mark.parametrize(
    ("payload", "headers", "expected"),
    [
        ('{"a": "{{.x}}"}', [], True),
        ("{{.data}}", [], True),
        ('[{{.x}}, "{{.y}}"]', [], True),
        ("text {{.x}}", [], False),
        ("a={{.x}}&b=2", [("Content-Type", "application/x-www-form-urlencoded")], False),
        ("text {{.x}}", [("content-type", "application/json; charset=utf-8")], True),
        ("{}", [Header(key="Content-Type", value="application/vnd.api+json")], True),
        ('{"a": 1}', [("Content-Type", "text/plain")], False),
        ('{"a": 1}', [("Content-Type", "{{.env.type}}")], True),
        ("{{range .x}}", [], False),
    ],
)
def test_is_json_payload_follows_the_content_type_else_the_shape(payload, headers, expected):
    assert is_json_payload(payload, headers) is expected


def test_render_request_fills_in_url_headers_and_payload():
    request = WebhookRequest(
        url="https://hooks.slack.com/services/{{.env.secretKey}} ",
        method="POST",
        headers=(Header(key="X-Project", value="{{.data.project}}"),),
        payload='{"text": "{{.data.message}}"}',
    )
    rendered = render_request(request, CONTEXT, path="requests[0]")
    assert rendered == RenderedRequest(
        method="POST",
        url="https://hooks.slack.com/services/T000/B000/XXXX",
        headers=(("X-Project", "sockshop"),),
        body='{"text": "' + json.dumps(MESSAGE)[1:-1] + '"}',
    )
    assert json.loads(rendered.body or "") == {"text": MESSAGE}
    assert render_request(WebhookRequest(url="http://x/", method="GET"), CONTEXT).body is None


def test_render_request_refuses_a_header_value_with_a_line_break_without_showing_it():
    request = WebhookRequest(
        url="http://x/", method="GET", headers=(Header(key="X-M", value="{{.data.message}}"),)
    )
    with pytest.raises(TemplateError, match=r"^requests\[1\]\.headers\[0\]\.value: .*line break") as caught:
        render_request(request, CONTEXT, path="requests[1]")
    assert '"one"' not in caught.value.message


def test_render_request_errors_name_the_template():
    request = WebhookRequest(url="http://x/{{.data.nope}}", method="GET")
    with pytest.raises(TemplateError, match=r"^requests\[0\]\.url: \{\{\.data\.nope\}\}: map has no entry"):
        render_request(request, CONTEXT, path="requests[0]")


# --- masking -----------------------------------------------------------------------------------


def test_mask_replaces_every_form_of_every_secret():
    secret = 'p@ss "w/rd"'
    text = (
        f"raw {secret}; json {json.dumps(secret)[1:-1]}; url p%40ss%20%22w%2Frd%22 and p@ss%20%22w/rd%22; "
        "lower p%40ss%20%22w%2frd%22; again " + secret
    )
    masked = mask(text, [secret, ""])
    assert masked == "raw ***; json ***; url *** and ***; lower ***; again ***"


def test_mask_prefers_the_longest_secret_and_leaves_other_text_alone():
    assert mask("token abcdef and abc", ["abc", "abcdef"]) == "token *** and ***"
    assert mask("nothing here", []) == "nothing here"
    assert mask("nothing here", [""]) == "nothing here"
