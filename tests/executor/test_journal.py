"""The executor's journal of started and finished triggered ids (a file, no control plane)."""

from __future__ import annotations

from pathlib import Path

import pytest

from capstan.executor import journal as journal_module
from capstan.executor.journal import Journal, JournalLockedError


def test_states_survive_a_reopen_and_a_line_cut_by_a_crash(tmp_path: Path):
    path = tmp_path / "state" / "job-executor-service.journal"
    first = Journal(path)
    first.open()
    first.record("a", "started")
    first.record("a", "finished")
    first.record("b", "started")
    first.close()
    with path.open("a") as handle:
        handle.write('{"id": "c", "sta')  # the process died mid-write
    second = Journal(path)
    second.open()
    try:
        assert (second.state("a"), second.state("b"), second.state("c")) == ("finished", "started", None)
    finally:
        second.close()
    assert path.read_text().splitlines() == [
        '{"id": "a", "state": "finished"}',
        '{"id": "b", "state": "started"}',
    ]


def test_one_executor_per_journal(tmp_path: Path):
    path = tmp_path / "x.journal"
    holder = Journal(path)
    holder.open()
    try:
        with pytest.raises(JournalLockedError, match="give each executor its own --state-dir"):
            Journal(path).open()
    finally:
        holder.close()
    again = Journal(path)
    again.open()  # free once the holder closed it
    again.close()


def test_reopening_keeps_only_the_newest_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(journal_module, "KEEP", 3)
    path = tmp_path / "x.journal"
    journal = Journal(path)
    journal.open()
    for name in "abcde":
        journal.record(name, "finished")
    journal.record("a", "finished")  # seen again: newest
    journal.close()
    journal = Journal(path)
    journal.open()
    journal.close()
    assert [journal.state(name) for name in "abcde"] == ["finished", None, None, "finished", "finished"]
