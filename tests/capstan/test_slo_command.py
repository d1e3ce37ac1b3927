"""``capstan slo evaluate``: offline scoring with the server's rules, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from capstan.cli import app

ROOT = Path(__file__).resolve().parents[2]

SLO = """\
comparison:
  compare_with: several_results
  number_of_comparison_results: 2
  include_result_with_score: pass
objectives:
  - sli: response_time
    displayName: Response time
    pass: [{criteria: ["<=+10%", "<600"]}]
    warning: [{criteria: ["<=800"]}]
  - sli: error_rate
    weight: 2
    pass: [{criteria: ["=0"]}]
  - sli: throughput
total_score:
  pass: "90%"
  warning: "75%"
"""


def previous(id: str, result: str, response_time: float) -> dict[str, Any]:
    return {
        "id": id,
        "result": result,
        "evaluation": {
            "result": result,
            "indicatorResults": [
                {"value": {"metric": "response_time", "value": response_time, "success": True}}
            ],
        },
    }


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("slo.yaml", "values.json", "previous.json")}
    paths["slo.yaml"].write_text(SLO)
    values = [
        {"metric": "response_time", "value": 210, "success": True, "message": ""},
        {"metric": "error_rate", "value": 0, "success": True},
        {"metric": "throughput", "value": 1234.5, "success": True},
    ]
    paths["values.json"].write_text(json.dumps(values))
    history = [
        previous("e4", "fail", 1000),
        previous("e3", "pass", 200),
        previous("e2", "pass", 180),
        previous("e1", "pass", 1),
    ]
    paths["previous.json"].write_text(json.dumps(history))
    return paths


def run(*args: str | Path) -> Any:
    return CliRunner().invoke(app, ["slo", "evaluate", *map(str, args)])


def test_prints_the_evaluation_finished_data(files):
    result = run(
        "--slo", files["slo.yaml"], "--sli", files["values.json"], "--previous", files["previous.json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"result", "status", "message", "evaluation"}
    # Only passed evaluations count, at most two: e3 and e2, baseline avg(200, 180) = 190, target 209.
    assert data["evaluation"]["comparedEvents"] == ["e3", "e2"]
    response_time = data["evaluation"]["indicatorResults"][0]
    assert response_time["value"]["comparedValue"] == 190
    assert response_time["passTargets"][0] == {"criteria": "<=+10%", "targetValue": 209, "violated": True}
    assert response_time["status"] == "warning"
    assert data["evaluation"]["score"] == 100.0 * (2.5 / 3) == 83.33333333333334
    assert (data["result"], data["status"]) == ("warning", "succeeded")
    assert data["message"] == (
        "Evaluation returned a warning: the calculated score of 83.33333333333334"
        " is close to the warning target value of 75"
    )
    # Whole numbers are printed as Go printed them.
    assert '"score": 2,' in result.stdout and '"score": 2.0' not in result.stdout
    assert result.stderr == ""


def test_first_evaluation_without_previous_passes_relative_criteria(files):
    result = run("--slo", files["slo.yaml"], "--sli", files["values.json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["result"] == "pass" and data["evaluation"]["score"] == 100
    assert data["evaluation"]["comparedEvents"] is None


def test_a_failed_gate_still_exits_0(files):
    files["values.json"].write_text(json.dumps([{"metric": "error_rate", "value": 3, "success": True}]))
    result = run("--slo", files["slo.yaml"], "--sli", files["values.json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["result"] == "fail"
    assert (
        data["message"]
        == "Evaluation failed since the calculated score of 0 is below the warning value of 75"
    )


def test_an_errored_evaluation_is_printed_too(files):
    files["slo.yaml"].write_text("objectives: [{sli: a, pass: [{criteria: ['<1']}]}]\n")
    result = run("--slo", files["slo.yaml"], "--sli", files["values.json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["status"] == "errored"


def test_invalid_criteria_are_warned_about_and_fail_the_evaluation(files):
    files["slo.yaml"].write_text("objectives: [{sli: error_rate, pass: [{criteria: ['zero']}]}]\n")
    result = run("--slo", files["slo.yaml"], "--sli", files["values.json"])
    assert result.exit_code == 0
    assert result.stderr == "warning: objective 'error_rate': invalid criteria string 'zero'\n"
    data = json.loads(result.stdout)
    assert (data["result"], data["message"]) == ("fail", "error with error_rate: invalid criteria string")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "slo.yaml",
            "objectives: [\n",
            "slo.yaml: slo.yaml is not valid YAML: while parsing a flow node",
        ),
        ("slo.yaml", "objectives: [{sli: a, weight: x}]\n", "objectives[0].weight (objective 'a'): expected"),
        ("slo.yaml", b"\xff\xfe", "cannot read"),
        ("values.json", "{", "values.json is not valid JSON"),
        ("values.json", '{"metric": "a"}', "values.json must contain a JSON list, found dict"),
        ("values.json", "[1]", "values.json[0] must be an object {metric, value, success, message}"),
        (
            "values.json",
            '[{"metric": "a", "value": "5"}]',
            "values.json[0].value: Input should be a valid number",
        ),
        ("values.json", '[{"value": 5}]', "values.json[0].metric: Field required"),
        ("previous.json", '[{"result": "pass"}, "x"]', "previous.json[1] must be the data object"),
        ("previous.json", "null", "previous.json must contain a JSON list, found NoneType"),
    ],
)
def test_unusable_input_exits_2_with_one_line(files, name, content, message):
    path = files[name]
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    result = run(
        "--slo", files["slo.yaml"], "--sli", files["values.json"], "--previous", files["previous.json"]
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_exits_2(files, tmp_path):
    result = run("--slo", tmp_path / "nope.yaml", "--sli", files["values.json"])
    assert result.exit_code == 2
    assert result.stderr == f"error: cannot read {tmp_path / 'nope.yaml'}: No such file or directory\n"


def test_missing_option_is_a_usage_error(files):
    result = run("--slo", files["slo.yaml"])
    assert result.exit_code == 2
    assert "--sli" in result.stderr


def test_real_process(files):
    env = {key: value for key, value in os.environ.items() if not key.startswith("CAPSTAN_")}
    env["PYTHONPATH"] = str(ROOT)
    argv = [sys.executable, "-m", "capstan", "slo", "evaluate", "--slo", str(files["slo.yaml"])]
    argv += ["--sli", str(files["values.json"]), "--previous", str(files["previous.json"])]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["evaluation"]["comparedEvents"] == ["e3", "e2"]
    missing = subprocess.run(
        [*argv[:6], "/nonexistent/slo.yaml", *argv[7:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2
    assert missing.stderr == "error: cannot read /nonexistent/slo.yaml: No such file or directory\n"
    assert missing.stdout == ""
