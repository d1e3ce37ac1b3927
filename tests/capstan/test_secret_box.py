"""The secret-encryption key: generated once by ``capstan up``, private, reused, passed to children."""

from __future__ import annotations

import stat

import pytest
from rich.console import Console

from capstan.secret_box import (
    SecretBox,
    generate_secret_key,
    load_secret_box,
    prepare_secret_key,
    resolve_secret_key,
)
from capstan.settings import Settings
from capstan.supervisor import Supervisor
from keptn.errors import UnavailableError


def test_key_generated_once_private_and_reused(tmp_path):
    s = Settings(data_dir=tmp_path / "data")
    key = prepare_secret_key(s)  # what `capstan up` does on every start
    assert s.secret_key_file.read_text().strip() == key
    assert stat.S_IMODE(s.secret_key_file.stat().st_mode) == 0o600
    assert prepare_secret_key(s) == key  # reused on the next start
    assert resolve_secret_key(Settings(data_dir=tmp_path / "data")) == key
    SecretBox(key)  # a usable Fernet key


def test_key_from_env_is_not_written(monkeypatch, tmp_path):
    key = generate_secret_key()
    monkeypatch.setenv("CAPSTAN_SECRET_KEY", key)
    s = Settings(data_dir=tmp_path)
    assert prepare_secret_key(s) == key
    assert not s.secret_key_file.exists()


def test_empty_env_key_means_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("CAPSTAN_SECRET_KEY", "")
    s = Settings(data_dir=tmp_path)
    key = prepare_secret_key(s)
    assert s.secret_key_file.read_text().strip() == key


def test_missing_key_without_create(tmp_path):
    with pytest.raises(FileNotFoundError, match="CAPSTAN_SECRET_KEY"):
        resolve_secret_key(Settings(data_dir=tmp_path))
    assert not (tmp_path / "secret-key").exists()


def test_gateway_and_worker_box_needs_a_key_and_says_how(tmp_path):
    with pytest.raises(UnavailableError, match="CAPSTAN_SECRET_KEY is not set .*capstan up"):
        load_secret_box(Settings(data_dir=tmp_path))
    assert not (tmp_path / "secret-key").exists()  # never created outside `capstan up`
    key = prepare_secret_key(Settings(data_dir=tmp_path))
    box = load_secret_box(Settings(data_dir=tmp_path))
    assert SecretBox(key).decrypt(box.encrypt(b"x")) == b"x"


def test_invalid_key_is_refused_naming_its_source(tmp_path):
    with pytest.raises(UnavailableError, match="CAPSTAN_SECRET_KEY is not a valid key"):
        prepare_secret_key(Settings(data_dir=tmp_path, secret_key="short"))
    (tmp_path / "secret-key").write_text("garbage\n")
    with pytest.raises(UnavailableError, match=r"secret-key is not a valid key") as caught:
        load_secret_box(Settings(data_dir=tmp_path))
    assert "garbage" not in str(caught.value)


def test_box_round_trip_and_other_key_refused():
    box = SecretBox(generate_secret_key())
    token = box.encrypt(b"hunter2")
    assert b"hunter2" not in token and box.decrypt(token) == b"hunter2"
    with pytest.raises(UnavailableError, match="cannot be decrypted"):
        SecretBox(generate_secret_key()).decrypt(token)
    with pytest.raises(UnavailableError):
        box.decrypt(token[:-2] + b"AA")  # altered
    assert "key" in repr(box) and generate_secret_key() not in repr(box)


def test_supervisor_passes_the_key_to_its_children(tmp_path):
    settings = Settings(data_dir=tmp_path, database_url="postgresql://u@127.0.0.1:1/db")
    supervisor = Supervisor(settings, console=Console(quiet=True))
    env = supervisor._child_env("the-token", "the-key")
    assert env["CAPSTAN_SECRET_KEY"] == "the-key" and env["CAPSTAN_API_TOKEN"] == "the-token"
