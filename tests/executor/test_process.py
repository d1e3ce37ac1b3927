"""Running one task's process: clean environment, timeout of the whole group, capture, masking.

Real processes (python3 from this virtualenv), no control plane. The container runtime is not
installed here: its command line is checked as a pure function, and its absence as the error.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest

from capstan.executor.job import JobRefused, Policy, check_policy, run_action
from capstan.executor.process import (
    OutputTail,
    container_argv,
    find_runtime,
    mask_output,
    run_process,
)
from capstan.executor.resources import ResourceReader, Scope
from capstan.sdk import Backoff
from keptn.job_config import parse_job_config

PY = sys.executable
PATH = os.environ["PATH"]

pytestmark = pytest.mark.timeout(30)


def test_output_tail_keeps_the_last_bytes():
    tail = OutputTail(5)
    for chunk in (b"abc", b"defg", b"h"):
        tail.write(chunk)
    assert (tail.text(), tail.truncated, tail.total) == ("defgh", True, 8)
    short = OutputTail(10)
    short.write(b"ok")
    assert (short.text(), short.truncated) == ("ok", False)


def test_a_multibyte_character_cut_at_the_start_is_replaced_not_an_error():
    tail = OutputTail(3)
    tail.write("aé€".encode())  # a, 2 bytes, 3 bytes: the last 3 bytes are exactly €
    assert tail.text() == "€"
    tail.write(b"x")
    assert tail.text() == "\ufffd\ufffdx"


def test_masking_hides_secrets_and_a_secret_cut_at_the_start():
    assert (
        mask_output("token=hunter22 and hunter22", ["hunter22", ""], cut_at_start=False)
        == "token=*** and ***"
    )
    # The kept tail begins inside the secret: its remainder is masked too.
    assert mask_output("er22 tail hunter22", ["hunter22"], cut_at_start=True) == "*** tail ***"
    # Not cut: the same prefix is ordinary text.
    assert mask_output("er22 tail", ["hunter22"], cut_at_start=False) == "er22 tail"
    assert mask_output("x", [], cut_at_start=True) == "x"


async def test_exit_code_output_and_a_clean_environment(tmp_path: Path):
    os.environ["CAPSTAN_EXECUTOR_TEST_LEAK"] = "leaked"
    try:
        script = "import json,os,sys; print(json.dumps(sorted(os.environ))); sys.exit('err')"
        result = await run_process(
            [PY, "-c", script], cwd=str(tmp_path), env={"PATH": PATH, "MINE": "1"}, time_limit=10, limit=1000
        )
    finally:
        del os.environ["CAPSTAN_EXECUTOR_TEST_LEAK"]
    assert result.exit_code == 1
    assert not result.timed_out
    names = json.loads(result.stdout)
    assert "MINE" in names and "CAPSTAN_EXECUTOR_TEST_LEAK" not in names
    assert result.stderr == "err\n"


async def test_arguments_never_go_through_a_shell(tmp_path: Path):
    marker = tmp_path / "pwned"
    hostile = f"x; touch {marker}; $(touch {marker}) `touch {marker}`"
    result = await run_process(
        [PY, "-c", "import sys; print(sys.argv[1])", hostile],
        cwd=str(tmp_path),
        env={"PATH": PATH},
        time_limit=10,
        limit=1000,
    )
    assert result.stdout.strip() == hostile
    assert not marker.exists()


async def test_timeout_kills_the_whole_process_group(tmp_path: Path):
    pid_file = tmp_path / "child.pid"
    # The task forks a grandchild that would outlive a kill of the task's own process.
    script = (
        "import subprocess,sys,time;"
        f"c=subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']);"
        f"open({str(pid_file)!r},'w').write(str(c.pid)); print('started', flush=True); time.sleep(60)"
    )
    begun = time.monotonic()
    result = await run_process(
        [PY, "-c", script], cwd=str(tmp_path), env={"PATH": PATH}, time_limit=1.5, limit=100
    )
    assert result.timed_out
    assert result.exit_code == -9
    assert result.stdout == "started\n"
    assert time.monotonic() - begun < 10
    grandchild = int(await asyncio.to_thread(pid_file.read_text))
    for _ in range(100):  # the kernel reaps the killed grandchild soon after
        if not _alive(grandchild):
            break
        await asyncio.sleep(0.05)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_large_output_is_truncated_to_its_tail_and_masked(tmp_path: Path):
    secret = "s3cr3t-value"
    script = f"print('x' * 100000); print({secret!r}); print('end')"
    result = await run_process(
        [PY, "-c", script], cwd=str(tmp_path), env={"PATH": PATH}, time_limit=10, limit=64, secrets=[secret]
    )
    assert result.stdout_truncated and not result.stderr_truncated
    assert result.stdout.endswith("***\nend\n")
    assert secret not in result.stdout
    assert len(result.stdout.encode()) <= 64


async def test_a_missing_program_is_a_result_not_an_exception(tmp_path: Path):
    result = await run_process(
        ["no-such-program-4711"], cwd=str(tmp_path), env={"PATH": PATH}, time_limit=5, limit=10
    )
    assert result.exit_code is None
    assert "cannot start 'no-such-program-4711'" in result.stderr


def test_container_command_line_passes_values_by_name_only():
    argv = container_argv(
        "/usr/bin/podman",
        image="locustio/locust:2.0",
        cmd=["locust", "-f"],
        args=["basic.py", "--host", "http://x; rm -rf /"],
        env_names=["TOKEN", "HOST", "TOKEN"],
        host_dir="/tmp/capstan-job-1",
        working_dir="/keptn/locust",
        name="capstan-job-abc",
    )
    assert argv == [
        "/usr/bin/podman", "run", "--rm", "--name", "capstan-job-abc", "--network", "host",
        "--volume", "/tmp/capstan-job-1:/keptn", "--workdir", "/keptn/locust",
        "--env", "HOST", "--env", "TOKEN",
        "--entrypoint", "locust", "locustio/locust:2.0", "-f", "basic.py", "--host", "http://x; rm -rf /",
    ]  # fmt: skip


def test_no_runtime_is_found_on_a_path_without_one(tmp_path: Path):
    assert find_runtime(path=str(tmp_path)) is None
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_runtime(path=str(tmp_path)) == str(fake)
    assert find_runtime("podman", path=str(tmp_path)) is None


IMAGE_CONFIG = """\
apiVersion: v2
actions:
  - name: in a container
    events: [{name: sh.keptn.event.test.triggered}]
    tasks: [{name: k6, image: grafana/k6, cmd: [k6, run, script.js]}]
"""


async def test_an_image_without_a_runtime_is_a_clear_refusal(tmp_path: Path):
    action = parse_job_config(IMAGE_CONFIG).actions[0]
    with pytest.raises(JobRefused, match="needs the executor feature 'container'"):
        check_policy(action, Policy())
    policy = Policy(features=frozenset({"container"}), path=str(tmp_path), work_root=str(tmp_path))
    reader = ResourceReader("http://127.0.0.1:9/api", "t", backoff=Backoff(attempts=1))
    try:
        with pytest.raises(JobRefused, match="podman or docker is not installed on the executor's machine"):
            await run_action(
                action, {"type": "sh.keptn.event.test.triggered"}, Scope("p", "s", "v"), reader, policy
            )
    finally:
        await reader.aclose()
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []  # its directory is removed


@pytest.mark.parametrize(
    ("task", "refusal"),
    [
        ("{name: t, cmd: [bash, -c, x]}", "'bash' is not in this executor's allowed commands"),
        ("{name: t, cmd: ['$(PROG)']}", "must be a fixed program"),
        ("{name: t, cmd: [python3], workingDir: /etc}", "outside the task's directory"),
        ("{name: t, cmd: [python3], files: [a.py]}", "feature 'files'"),
        ("{name: t, cmd: [python3], env: [{name: s, valueFrom: secret}]}", "feature 'env-secret'"),
    ],
)
def test_the_allow_list_refuses_what_it_does_not_allow(task: str, refusal: str):
    config = parse_job_config(
        f"apiVersion: v2\nactions: [{{name: a, events: [{{name: x}}], tasks: [{task}]}}]"
    )
    policy = Policy(features=frozenset({"process", "env-event"}), commands=("python3", "helm"))
    with pytest.raises(JobRefused, match=refusal.replace("(", r"\(").replace("$", r"\$")):
        check_policy(config.actions[0], policy)
