from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
import typer
from pydantic import ValidationError

from capstan.commands.common import load_settings
from capstan.settings import Settings, resolve_api_token


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("CAPSTAN_") or name == "TASK_STARTED_WAIT_DURATION":
            monkeypatch.delenv(name)


def test_defaults():
    s = Settings()
    assert (s.api_port, s.temporal_port, s.temporal_ui_port) == (8080, 7233, 8233)
    assert s.data_dir == Path(".capstan")
    assert s.temporal_address is None and s.database_url is None and s.api_token is None
    assert s.temporal_target == "127.0.0.1:7233"
    assert s.task_started_wait_duration == timedelta(minutes=10)


def test_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CAPSTAN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CAPSTAN_API_PORT", "9090")
    monkeypatch.setenv("CAPSTAN_TEMPORAL_PORT", "7300")
    monkeypatch.setenv("CAPSTAN_TEMPORAL_UI_PORT", "8300")
    monkeypatch.setenv("CAPSTAN_DATABASE_URL", "postgresql://u:p@db:5432/capstan")
    monkeypatch.setenv("CAPSTAN_API_TOKEN", "t0ken-value-x9")
    s = Settings()
    assert s.data_dir == tmp_path
    assert (s.api_port, s.temporal_port, s.temporal_ui_port) == (9090, 7300, 8300)
    assert s.temporal_target == "127.0.0.1:7300"
    assert (
        s.database_url is not None and s.database_url.get_secret_value() == "postgresql://u:p@db:5432/capstan"
    )
    assert s.api_token is not None and s.api_token.get_secret_value() == "t0ken-value-x9"
    assert "t0ken-value-x9" not in repr(s)


def test_temporal_address_wins(monkeypatch):
    monkeypatch.setenv("CAPSTAN_TEMPORAL_ADDRESS", "temporal:7233")
    assert Settings(temporal_port=1234).temporal_target == "temporal:7233"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TASK_STARTED_WAIT_DURATION", "15m", timedelta(minutes=15)),  # Keptn's own variable
        ("CAPSTAN_TASK_STARTED_WAIT_DURATION", "1h30m", timedelta(hours=1, minutes=30)),
        ("CAPSTAN_TASK_STARTED_WAIT_DURATION", "PT5M", timedelta(minutes=5)),  # ISO 8601
        ("CAPSTAN_TASK_STARTED_WAIT_DURATION", "90", timedelta(seconds=90)),  # plain seconds
    ],
)
def test_task_started_wait_duration(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    assert Settings().task_started_wait_duration == expected


def test_invalid_port_is_rejected(monkeypatch):
    monkeypatch.setenv("CAPSTAN_API_PORT", "70000")
    with pytest.raises(ValidationError):
        Settings()


def test_options_override_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CAPSTAN_API_PORT", "9090")
    monkeypatch.setenv("CAPSTAN_DATA_DIR", "/nowhere")
    s = load_settings(api_port=9191, data_dir=tmp_path, temporal_port=None)
    assert s.api_port == 9191 and s.data_dir == tmp_path and s.temporal_port == 7233


def test_invalid_setting_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("CAPSTAN_TEMPORAL_PORT", "abc")
    with pytest.raises(typer.Exit) as caught:
        load_settings()
    assert caught.value.exit_code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: invalid setting CAPSTAN_TEMPORAL_PORT: ")


def test_invalid_option_names_the_option(capsys):
    with pytest.raises(typer.Exit):
        load_settings(api_port=0)
    assert "CAPSTAN_API_PORT (--api-port)" in capsys.readouterr().err


def test_token_generated_once_and_private(tmp_path):
    s = Settings(data_dir=tmp_path / "data")
    token = resolve_api_token(s)
    assert len(token) >= 32
    assert s.token_file.read_text().strip() == token
    assert stat.S_IMODE(s.token_file.stat().st_mode) == 0o600
    assert resolve_api_token(s) == token  # reused on the next start
    assert resolve_api_token(Settings(data_dir=tmp_path / "data"), create=False) == token


def test_token_from_env_is_not_written(monkeypatch, tmp_path):
    monkeypatch.setenv("CAPSTAN_API_TOKEN", "from-env")
    s = Settings(data_dir=tmp_path)
    assert resolve_api_token(s) == "from-env"
    assert not s.token_file.exists()


def test_missing_token_without_create(tmp_path):
    with pytest.raises(FileNotFoundError, match="CAPSTAN_API_TOKEN"):
        resolve_api_token(Settings(data_dir=tmp_path), create=False)


def test_invalid_aliased_setting_names_its_variable(monkeypatch, capsys):
    monkeypatch.setenv("TASK_STARTED_WAIT_DURATION", "soon")
    with pytest.raises(typer.Exit):
        load_settings()
    assert "error: invalid setting CAPSTAN_TASK_STARTED_WAIT_DURATION: " in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-5", "nan", "soon"])
def test_unusable_wait_durations_are_rejected(monkeypatch, value):
    monkeypatch.setenv("TASK_STARTED_WAIT_DURATION", value)
    with pytest.raises(ValidationError, match="TASK_STARTED_WAIT_DURATION"):
        Settings()
