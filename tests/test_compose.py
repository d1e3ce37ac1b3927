"""The production-shaped docker-compose.yml, checked without Docker: structure and settings names."""

from __future__ import annotations

import re
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

from capstan.settings import Settings
from capstan.temporal import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {"postgresql", "temporal-schema", "temporal", "temporal-init", "temporal-ui", "gateway", "worker"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def _settings_env_names() -> set[str]:
    names = set()
    for name, info in Settings.model_fields.items():
        names.add(f"CAPSTAN_{name.upper()}")
        alias = info.validation_alias
        if alias is not None and hasattr(alias, "choices"):
            names.update(str(choice) for choice in alias.choices)
    return names


def test_expected_services(services):
    assert set(services) == SERVICES


@pytest.mark.parametrize("name", ["postgresql", "temporal", "gateway", "worker"])
def test_long_running_services_have_health_checks(services, name):
    check = services[name]["healthcheck"]
    assert check["test"] and check["interval"] and check["retries"]


@pytest.mark.parametrize(
    ("service", "dependency", "condition"),
    [
        ("temporal-schema", "postgresql", "service_healthy"),
        ("temporal", "temporal-schema", "service_completed_successfully"),
        ("temporal-init", "temporal", "service_healthy"),
        ("temporal-ui", "temporal", "service_healthy"),
        ("gateway", "postgresql", "service_healthy"),
        ("gateway", "temporal-init", "service_completed_successfully"),
        ("worker", "postgresql", "service_healthy"),
        ("worker", "temporal-init", "service_completed_successfully"),
    ],
)
def test_start_order(services, service, dependency, condition):
    assert services[service]["depends_on"][dependency]["condition"] == condition


def test_gateway_and_worker_share_one_image(services):
    gateway, worker = services["gateway"], services["worker"]
    assert gateway["build"] == worker["build"] == "."
    assert gateway["image"] == worker["image"]
    assert gateway["command"] == ["python", "-m", "api"]
    assert worker["command"] == ["python", "-m", "worker"]
    assert worker["deploy"]["replicas"] == 2
    assert "ports" not in worker  # replicas cannot share a host port
    assert (ROOT / "Dockerfile").is_file()


def test_capstan_env_names_are_settings(services):
    known = _settings_env_names()
    used = {
        name
        for service in services.values()
        for name in (service.get("environment") or {})
        if name.startswith("CAPSTAN_")
    }
    used |= set(re.findall(r"\bCAPSTAN_[A-Z_]+", (ROOT / "Dockerfile").read_text()))
    assert used, "no CAPSTAN_* variables found"
    assert used <= known, f"not Settings fields: {sorted(used - known)}"


def test_capstan_services_point_at_compose_services(services):
    for name in ("gateway", "worker"):
        env = services[name]["environment"]
        assert env["CAPSTAN_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert "@postgresql:5432/capstan" in env["CAPSTAN_DATABASE_URL"]
        assert env["CAPSTAN_API_TOKEN"].startswith("${CAPSTAN_API_TOKEN:?")  # no default secret


def test_search_attributes_are_registered(services):
    command = " ".join(services["temporal-init"]["command"])
    assert "--type Keyword" in command
    for name in SEARCH_ATTRIBUTES:
        assert f"--name {name}" in command


def test_temporal_versions_match_the_dev_server(services):
    binary = Path(sysconfig.get_path("scripts")) / "temporal"
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout
    server = re.search(r"Server (\d+\.\d+\.\d+)", version)
    ui = re.search(r"UI (\d+\.\d+\.\d+)", version)
    assert server and ui, version
    assert services["temporal"]["image"] == f"temporalio/server:{server.group(1)}"
    assert services["temporal-schema"]["image"] == f"temporalio/admin-tools:{server.group(1)}"
    assert services["temporal-init"]["image"] == f"temporalio/admin-tools:{server.group(1)}"
    assert services["temporal-ui"]["image"] == f"temporalio/ui:{ui.group(1)}"
