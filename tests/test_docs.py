"""Documentation that must not drift from the code."""

from __future__ import annotations

from pathlib import Path

from capstan.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented():
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [
        f"CAPSTAN_{name.upper()}" for name in Settings.model_fields if f"`CAPSTAN_{name.upper()}`" not in text
    ]
    assert not missing, f"docs/configuration.md lacks {missing}"


def test_readme_names_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "scripts/up" in readme and "scripts/test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "exec scripts/test" in ci
