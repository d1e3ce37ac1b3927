"""End to end: ``python -m capstan up`` as a user runs it, then stopped, then started again."""

from __future__ import annotations

import base64
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from capstan.ports import is_port_free
from tests.capstan.conftest import free_port, free_temporal_port, processes_mentioning

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"Capstan is up \((cold|warm) start in ([\d.]+) s\)")
ADDRESSES_END = re.compile(r"^  Logs ")
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 60

SHIPYARD = """\
apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata:
  name: shipyard-e2e
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks:
            - name: deployment
"""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


@dataclass
class Up:
    """A running ``capstan up`` and what it printed."""

    proc: subprocess.Popen[str]
    data_dir: Path
    ports: dict[str, int]
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    output: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}/api"

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            if match := pattern.search(line):
                return match
        pytest.fail(
            f"no line matching {pattern.pattern!r}; output so far:\n{''.join(self.output)}{self.logs()}"
        )

    def wait_ready(self) -> tuple[str, float]:
        """Wait until the ready line and the addresses after it were printed."""
        ready = self.wait_for(READY, START_TIMEOUT_S)
        self.wait_for(ADDRESSES_END, 10)
        return ready.group(1), float(ready.group(2))

    def logs(self) -> str:
        parts = []
        for log in sorted((self.data_dir / "logs").glob("*.log")):
            parts.append(
                f"\n--- {log.name} (tail) ---\n"
                + "".join(log.read_text(errors="replace").splitlines(True)[-30:])
            )
        return "".join(parts)

    def wait(self, timeout: float) -> int:
        """Wait for the exit, then collect the rest of the output and close the pipe."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"capstan up did not exit within {timeout} s:\n{self.text}")
        finally:
            if self.pump is not None:
                self.pump.join(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        return code

    @property
    def text(self) -> str:
        return "".join(self.output)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(STOP_TIMEOUT_S)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSTAN_") and k != "XDG_RUNTIME_DIR"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_up(data_dir: Path, ports: dict[str, int], *extra: str) -> Up:
    argv = [
        sys.executable, "-m", "capstan", "up",
        "--data-dir", str(data_dir),
        "--api-port", str(ports["api"]),
        "--temporal-port", str(ports["temporal"]),
        "--temporal-ui-port", str(ports["ui"]),
        *extra,
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    up = Up(proc, data_dir, ports)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            up.output.append(line)
            up.lines.put(line)
        up.lines.put(None)

    up.pump = threading.Thread(target=pump, daemon=True)
    up.pump.start()
    return up


def all_ports(ports: dict[str, int]) -> list[int]:
    t = ports["temporal"]
    return [ports["api"], ports["ui"], t, t + 10, t + 11]


def assert_nothing_left(data_dir: Path, ports: dict[str, int], *, within: float = 5) -> None:
    deadline = time.monotonic() + within  # reparented processes may take a moment to exit
    while (left := processes_mentioning(str(data_dir))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes left behind: {left}"
    # A listener can close a moment after its process is gone from /proc under load: poll too.
    while (busy := [p for p in all_ports(ports) if not is_port_free("127.0.0.1", p)]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert not busy, f"ports still in use: {busy}"


@pytest.fixture
def ports() -> dict[str, int]:
    return {"api": free_port(), "temporal": free_temporal_port(), "ui": free_port()}


@pytest.fixture
def data_dir(postgres_tmp_path) -> Iterator[Path]:
    path = postgres_tmp_path / "capstan-data"
    yield path
    # Whatever happened, leave nothing running: kill what mentions the data dir, stop postgres.
    for entry in processes_mentioning(str(path)):
        pid = int(entry.split(":", 1)[0])
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    from store.embedded import EmbeddedPostgres

    EmbeddedPostgres(path).stop()


def test_up_serves_events_stops_cleanly_and_keeps_data(data_dir, ports, record_property):
    up = start_up(data_dir, ports)
    try:
        kind, cold_s = up.wait_ready()
        assert kind == "cold"
        printed = "".join(up.output)
        assert f"http://127.0.0.1:{ports['api']}/api" in printed
        assert f"http://127.0.0.1:{ports['ui']}" in printed
        token_file = data_dir.resolve() / "api-token"
        assert str(token_file) in printed
        token = token_file.read_text().strip()
        secret_key = (data_dir / "secret-key").read_text()
        assert (data_dir / "secret-key").stat().st_mode & 0o777 == 0o600
        assert put_secret(up.api, token, httpx.post) == 201  # the gateway got the generated key

        health = httpx.get(f"{up.api}/health", timeout=10)
        assert health.status_code == 200, health.text

        project = f"e2e-{uuid.uuid4().hex[:8]}"
        context = trigger_delivery(up.api, token, project)
        assert find_event(up.api, token, project, context) is not None
    finally:
        code = up.stop()
    assert code == 0, up.text + up.logs()
    assert_nothing_left(data_dir, ports)

    again = start_up(data_dir, ports)
    try:
        kind, warm_s = again.wait_ready()
        assert kind == "warm"
        assert resolve_token(data_dir) == token  # the generated token is reused
        assert (data_dir / "secret-key").read_text() == secret_key  # and so is the secret key
        assert put_secret(again.api, token, httpx.put) == 200
        assert find_event(again.api, token, project, context) is not None
    finally:
        code = again.stop()
    assert code == 0, again.text + again.logs()
    assert_nothing_left(data_dir, ports)
    record_property("cold_start_s", cold_s)
    record_property("warm_start_s", warm_s)


def resolve_token(data_dir: Path) -> str:
    return (data_dir / "api-token").read_text().strip()


def put_secret(api: str, token: str, method: Callable[..., httpx.Response]) -> int:
    secret = {"name": "e2e", "scope": "keptn-webhook-service", "data": {"token": "s3cr3t"}}
    response = method(f"{api}/secrets/v1/secret", json=secret, headers={"x-token": token}, timeout=30)
    assert "s3cr3t" not in response.text
    return response.status_code


def trigger_delivery(api: str, token: str, project: str) -> str:
    headers = {"x-token": token}
    shipyard = base64.b64encode(SHIPYARD.encode()).decode()
    with httpx.Client(base_url=api, headers=headers, timeout=30) as http:
        created = http.post("/controlPlane/v1/project", json={"name": project, "shipyard": shipyard})
        assert created.status_code in (200, 201), created.text
        service = http.post(f"/controlPlane/v1/project/{project}/service", json={"serviceName": "carts"})
        assert service.status_code in (200, 201), service.text
        event = {
            "specversion": "1.0",
            "source": "capstan-e2e-test",
            "type": "sh.keptn.event.dev.delivery.triggered",
            "datacontenttype": "application/json",
            "data": {
                "project": project,
                "stage": "dev",
                "service": "carts",
                "configurationChange": {"values": {"image": "docker.io/keptnexamples/carts:0.13.1"}},
            },
        }
        accepted = http.post("/v1/event", json=event)
        assert accepted.status_code == 200, accepted.text
        context: str = accepted.json()["keptnContext"]
        return context


def find_event(api: str, token: str, project: str, context: str) -> dict[str, Any] | None:
    response = httpx.get(
        f"{api}/mongodb-datastore/event",
        params={"keptnContext": context, "project": project},
        headers={"x-token": token},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    for event in response.json()["events"]:
        if event["type"] == "sh.keptn.event.dev.delivery.triggered" and event["shkeptncontext"] == context:
            found: dict[str, Any] = event
            return found
    return None


def test_port_in_use_is_one_line_and_starts_nothing(data_dir, ports, listening_socket):
    ports = {**ports, "api": listening_socket.getsockname()[1]}
    up = start_up(data_dir, ports)
    code = up.wait(60)
    output = up.text
    assert code == 1
    assert output == f"error: port {ports['api']} (CAPSTAN_API_PORT) is already in use\n"
    assert not processes_mentioning(str(data_dir))


def test_dying_child_is_named_and_everything_stops(data_dir, ports):
    # Nothing listens on port 1: the worker and the gateway cannot reach the database and exit.
    up = start_up(data_dir, ports, "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    code = up.wait(START_TIMEOUT_S)
    output = up.text
    assert code == 1, output
    assert re.search(
        r"error: (worker|gateway) exited unexpectedly with exit code \d+; see .*/logs/(worker|gateway)\.log",
        output,
    ), output
    assert not (data_dir / "postgres").exists()  # an external database URL: no embedded server
    assert_nothing_left(data_dir, ports)


def test_second_up_on_same_data_dir_is_refused(data_dir, ports):
    first = start_up(data_dir, ports)
    try:
        first.wait_for(re.compile(r"temporal\s+ready"), START_TIMEOUT_S)
        other_ports = {"api": free_port(), "temporal": free_temporal_port(), "ui": free_port()}
        second = start_up(data_dir, other_ports)
        assert second.wait(60) == 1
        assert re.fullmatch(
            r"error: data dir .* is in use by another `capstan up` \(pid \d+\)\n", second.text
        )
    finally:
        first.stop()
    assert_nothing_left(data_dir, ports)


def test_killed_supervisor_leaves_nothing(data_dir, ports):
    # SIGKILL: capstan up runs no clean-up; the kernel's parent-death signal stops its children,
    # and the postgres guard (one of them) stops PostgreSQL.
    up = start_up(data_dir, ports)
    up.wait_ready()
    up.proc.kill()
    up.wait(10)
    assert_nothing_left(data_dir, ports, within=30)


def test_external_temporal_starts_no_dev_server(data_dir, ports, temporal_env):
    target = temporal_env.client.service_client.config.target_host
    up = start_up(data_dir, ports, "--temporal-address", target)
    try:
        up.wait_ready()
        assert f"Temporal     {target} (namespace default)" in up.text
        assert "Temporal UI" not in up.text
        assert not (data_dir / "temporal.db").exists()
        assert not any("start-dev" in p for p in processes_mentioning(str(data_dir)))
        assert httpx.get(f"{up.api}/health", timeout=10).status_code == 200
    finally:
        assert up.stop() == 0, up.text + up.logs()
    assert_nothing_left(data_dir, ports)
