"""Running the tasks of one matched action: directories, files, environment, allow-list, results.

Each task gets a fresh temporary directory holding its ``files`` at their resource paths, an
environment made only of the base variables (``PATH``, ``HOME``, ``TMPDIR``, ``LANG`` and the
``KEPTN_*`` scope variables) and the variables it declares, and runs with its timeout. Tasks run
one after the other; the first that fails ends the action (Keptn's job executor did the same).
What the executor may do is the operator's allow-list (:class:`Policy`); a config asking for more
is refused with a message naming the feature, before anything runs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keptn.errors import KeptnError
from keptn.job_config import (
    Action,
    JobTask,
    JsonPathError,
    command_allowed,
    expand_args,
    jsonpath_get,
    render_value,
)

from .process import CONTAINER_MOUNT, ProcessResult, container_argv, find_runtime, run_process
from .resources import EXECUTOR_SECRET_SCOPE, ResourceReader, Scope

__all__ = ["FEATURES", "JobRefused", "Policy", "TaskReport", "run_action"]

FEATURES = ("process", "files", "env-event", "env-secret", "container")
"""Every feature of the allow-list; all but ``container`` are allowed by default."""
DEFAULT_FEATURES = frozenset(FEATURES) - {"container"}


class JobRefused(KeptnError):
    """The action cannot run: the allow-list forbids something it asks for, or its input is missing.

    Attributes:
        reports: the tasks of the action that ran before this one was refused.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reports: list[TaskReport] = []


@dataclass(frozen=True)
class Policy:
    """What the operator allows the executor to do, and its limits.

    Attributes:
        features: allowed features (see :data:`FEATURES`). Default: all but ``container``.
        commands: glob patterns ``cmd[0]`` must match. Default ``*`` (any command).
        output_limit: bytes of stdout and of stderr kept per task (the last ones). Default 16 KiB.
        max_timeout: longest task timeout in seconds; longer ones are cut to it. Default 1 hour.
        path: ``PATH`` of the tasks. Default: the executor's own ``PATH``.
        work_root: where task directories are made. Default: the system's temp directory.
        runtime: ``docker`` or ``podman`` (or a path); default: whichever is installed.
    """

    features: frozenset[str] = DEFAULT_FEATURES
    commands: tuple[str, ...] = ("*",)
    output_limit: int = 16384
    max_timeout: float = 3600.0
    path: str = field(default_factory=lambda: os.environ.get("PATH", os.defpath))
    work_root: str | None = None
    runtime: str | None = None

    def require(self, feature: str, why: str) -> None:
        """Raise :class:`JobRefused` unless ``feature`` is allowed."""
        if feature not in self.features:
            allowed = ", ".join(sorted(self.features)) or "nothing"
            raise JobRefused(
                f"{why} needs the executor feature '{feature}', which this executor does not allow "
                f"(allowed: {allowed}; start it with --allow {feature} to permit it)"
            )


@dataclass
class TaskReport:
    """One task's outcome as it goes into the ``.finished`` data."""

    name: str
    result: ProcessResult
    message: str

    @property
    def ok(self) -> bool:
        """Whether the task exited 0 in time."""
        return self.result.exit_code == 0 and not self.result.timed_out

    def to_json(self) -> dict[str, Any]:
        """The task's entry in ``data.jobExecutor.tasks``."""
        r = self.result
        return {
            "name": self.name,
            "exitCode": r.exit_code,
            "timedOut": r.timed_out,
            "durationSeconds": round(r.duration_seconds, 3),
            "stdout": r.stdout,
            "stderr": r.stderr,
            "stdoutTruncated": r.stdout_truncated,
            "stderrTruncated": r.stderr_truncated,
        }


def check_policy(action: Action, policy: Policy) -> None:
    """Refuse an action that asks for a feature or command the policy does not allow."""
    for task in action.tasks:
        where = f"task '{task.name}'"
        if task.image:
            policy.require("container", f"{where} (image: {task.image})")
        else:
            policy.require("process", where)
        if task.files:
            policy.require("files", f"{where} (files)")
        for var in task.env:
            if var.value_from == "event":
                policy.require("env-event", f"{where} (env {var.name} from the event)")
            elif var.value_from == "secret":
                policy.require("env-secret", f"{where} (env from secret {var.name})")
        if "$(" in task.cmd[0]:
            raise JobRefused(f"{where}: cmd[0] must be a fixed program, not {task.cmd[0]!r}")
        if not command_allowed(task.cmd[0], policy.commands):
            raise JobRefused(
                f"{where}: the command {task.cmd[0]!r} is not in this executor's allowed commands "
                f"({', '.join(policy.commands)}; see --allow-command)"
            )
        if not task.image and task.working_dir.startswith("/") and not _under_mount(task.working_dir):
            raise JobRefused(
                f"{where}: workingDir {task.working_dir!r} is outside the task's directory "
                f"(use a relative path or {CONTAINER_MOUNT}/...)"
            )


def _under_mount(path: str) -> bool:
    return path == CONTAINER_MOUNT or path.startswith(CONTAINER_MOUNT + "/")


def _relative_working_dir(working_dir: str) -> str:
    if _under_mount(working_dir):
        return working_dir[len(CONTAINER_MOUNT) :].lstrip("/")
    return working_dir.lstrip("/")


async def _environment(
    task: JobTask, event: Mapping[str, Any], reader: ResourceReader
) -> tuple[dict[str, str], list[str]]:
    """The task's declared variables, and the secret values among them (to mask)."""
    env: dict[str, str] = {}
    secrets: list[str] = []
    for var in task.env:
        if var.value_from == "string":
            env[var.name] = var.value
        elif var.value_from == "event":
            try:
                value = jsonpath_get(event, var.value)
            except JsonPathError as exc:
                raise JobRefused(f"task '{task.name}': env {var.name}: {exc.message}") from None
            env[var.name] = render_value(value, as_json=var.format_as == "json")
        else:
            values = await reader.secret(var.name)
            if values is None:
                raise JobRefused(
                    f"task '{task.name}': secret '{var.name}' not found in scope '{EXECUTOR_SECRET_SCOPE}'"
                )
            env.update(values)
            secrets.extend(values.values())
    return env, secrets


async def _write_files(task: JobTask, scope: Scope, reader: ResourceReader, root: Path) -> None:
    for uri in task.files:
        found = await reader.read(scope, uri)
        files = {uri: found[0]} if found is not None else await reader.read_folder(scope, uri)
        if not files:
            raise JobRefused(f"task '{task.name}': file '{uri}' not found in the project's resources")
        _store(task, root, files)


def _store(task: JobTask, root: Path, files: Mapping[str, bytes]) -> None:
    # Plain file writes into a local temporary directory: quick enough to do on the loop.
    for name, content in files.items():
        target = (root / name).resolve()
        if not target.is_relative_to(root):
            raise JobRefused(f"task '{task.name}': file '{name}' would be written outside its directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _new_dir(parent: str | None) -> Path:
    # Resolved, so that a file's resolved path can be checked against it (symlinked /tmp).
    return Path(os.path.realpath(tempfile.mkdtemp(prefix="capstan-job-", dir=parent)))


def _make_dir(root: Path, relative: str) -> Path:
    path = root / relative
    path.mkdir(parents=True, exist_ok=True)
    return path


def _base_env(policy: Policy, home: Path, scope: Scope, event: Mapping[str, Any]) -> dict[str, str]:
    return {
        "PATH": policy.path,
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "KEPTN_PROJECT": scope.project,
        "KEPTN_STAGE": scope.stage,
        "KEPTN_SERVICE": scope.service,
        "KEPTN_CONTEXT": str(event.get("shkeptncontext", "")),
        "KEPTN_TRIGGERED_ID": str(event.get("id", "")),
        "KEPTN_EVENT_TYPE": str(event.get("type", "")),
    }


async def _run_task(
    task: JobTask, event: Mapping[str, Any], scope: Scope, reader: ResourceReader, policy: Policy
) -> TaskReport:
    root = _new_dir(policy.work_root)
    try:
        await _write_files(task, scope, reader, root)
        declared, secrets = await _environment(task, event, reader)
        env = {**_base_env(policy, root, scope, event), **declared}
        argv = expand_args([*task.cmd, *task.args], env)
        limit = min(task.timeout_seconds, policy.max_timeout)
        if task.image:
            result = await _run_container(task, argv, env, root, limit, policy, secrets)
        else:
            cwd = _make_dir(root, _relative_working_dir(task.working_dir))
            result = await run_process(
                argv, cwd=str(cwd), env=env, time_limit=limit, limit=policy.output_limit, secrets=secrets
            )
        return TaskReport(task.name, result, _describe(task, result, limit))
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _run_container(
    task: JobTask,
    argv: list[str],
    env: dict[str, str],
    root: Path,
    time_limit: float,
    policy: Policy,
    secrets: list[str],
) -> ProcessResult:
    runtime = find_runtime(policy.runtime, path=policy.path)
    if runtime is None:
        wanted = policy.runtime or "podman or docker"
        raise JobRefused(
            f"task '{task.name}' runs in a container (image: {task.image}), but {wanted} is not "
            "installed on the executor's machine; install one, or remove image: to run the command here"
        )
    assert task.image is not None
    name = f"capstan-job-{uuid.uuid4().hex[:12]}"
    working_dir = (
        task.working_dir if task.working_dir.startswith("/") else f"{CONTAINER_MOUNT}/{task.working_dir}"
    )
    command = container_argv(
        runtime,
        image=task.image,
        cmd=argv[: len(task.cmd)],
        args=argv[len(task.cmd) :],
        env_names=[key for key in env if key not in ("PATH", "HOME", "TMPDIR")],
        host_dir=str(root),
        working_dir=working_dir.rstrip("/") or CONTAINER_MOUNT,
        name=name,
    )
    result = await run_process(
        command, cwd=str(root), env=env, time_limit=time_limit, limit=policy.output_limit, secrets=secrets
    )
    if result.timed_out:
        # Killing the client does not stop a container the daemon runs.
        remover = await asyncio.create_subprocess_exec(
            runtime, "rm", "-f", name, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        await remover.wait()
    return result


def _describe(task: JobTask, result: ProcessResult, timeout: float) -> str:
    if result.timed_out:
        return f"task '{task.name}' timed out after {timeout:g} s and was killed"
    if result.exit_code is None:
        return f"task '{task.name}' could not start: {result.stderr}"
    if result.exit_code < 0:
        return f"task '{task.name}' was killed by signal {-result.exit_code}"
    if result.exit_code != 0:
        last = next((line for line in reversed(result.stderr.splitlines()) if line.strip()), "")
        return f"task '{task.name}' exited with code {result.exit_code}" + (f": {last[:300]}" if last else "")
    return f"task '{task.name}' succeeded"


async def run_action(
    action: Action, event: Mapping[str, Any], scope: Scope, reader: ResourceReader, policy: Policy
) -> list[TaskReport]:
    """Run the action's tasks in order, stopping after the first that fails.

    Raises:
        JobRefused: the policy forbids the action, or a task's input (env, file, runtime) is
            missing; reports of tasks that already ran are attached as ``reports``.
    """
    check_policy(action, policy)
    reports: list[TaskReport] = []
    for task in action.tasks:
        try:
            report = await _run_task(task, event, scope, reader, policy)
        except JobRefused as exc:
            exc.reports = reports
            raise
        reports.append(report)
        if not report.ok:
            break
    return reports
