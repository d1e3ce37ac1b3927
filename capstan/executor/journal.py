"""The executor's journal: which triggered ids it started and finished, kept across restarts.

The SDK takes each event id once per process. An executor that is killed while a task runs
forgets that; the ``.triggered`` event is still open after the restart and would run again. The
journal (one JSON line per change, in ``--state-dir``) remembers: an id started but never
finished is answered with ``.finished`` ``fail``/``errored`` instead of running a second time,
an id already finished is skipped. One executor per journal: the file is locked while it runs.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import IO, Literal

__all__ = ["Journal", "JournalLockedError"]

KEEP = 10_000
"""Ids kept when the journal is compacted at start (the newest)."""

State = Literal["started", "finished"]


class JournalLockedError(Exception):
    """Another executor process uses this journal."""


class Journal:
    """An append-only record of triggered ids and how far each got.

    Args:
        path: the journal file (created with its directory if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._states: OrderedDict[str, State] = OrderedDict()
        self._file: IO[str] | None = None

    def open(self) -> None:
        """Lock the file, read it, and compact it to the newest :data:`KEEP` ids.

        Raises:
            JournalLockedError: another process holds the lock.
            OSError: the file cannot be created or read.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise JournalLockedError(
                f"another executor uses {self.path}; give each executor its own --state-dir"
            ) from None
        handle.seek(0)
        for line in handle:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if isinstance(entry, dict) and entry.get("state") in ("started", "finished"):
                self._states[str(entry.get("id"))] = entry["state"]
                self._states.move_to_end(str(entry.get("id")))
        while len(self._states) > KEEP:
            self._states.popitem(last=False)
        handle.seek(0)
        handle.truncate()
        for event_id, state in self._states.items():
            handle.write(json.dumps({"id": event_id, "state": state}) + "\n")
        handle.flush()
        self._file = handle

    def close(self) -> None:
        """Release the lock."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def state(self, triggered_id: str) -> State | None:
        """How far the id got: ``started``, ``finished``, or None if never seen."""
        return self._states.get(triggered_id)

    def record(self, triggered_id: str, state: State) -> None:
        """Write the id's new state to disk (flushed and synced before returning)."""
        self._states[triggered_id] = state
        self._states.move_to_end(triggered_id)
        if self._file is None:
            return
        self._file.write(json.dumps({"id": triggered_id, "state": state}) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
