"""The shared budget of the fuzz tests, and what every error they provoke must look like.

In the test run every fuzz test is deterministic (``derandomize=True``) with a small, fixed number
of examples, so that the whole directory stays within about a minute and a half and a failure in
CI is the same failure on a laptop. For a long fuzz session set ``CAPSTAN_FUZZ_EXAMPLES``::

    CAPSTAN_FUZZ_EXAMPLES=5000 .venv/bin/pytest tests/fuzz -p no:randomly --timeout 0

which runs that many examples per test, with random (not derandomized) generation; a failure is
printed with the ``@reproduce_failure`` blob that replays it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

from keptn.errors import InvalidInputError

T = TypeVar("T")

FUZZ_EXAMPLES_ENV = "CAPSTAN_FUZZ_EXAMPLES"
_LONG_SESSION = int(os.environ.get(FUZZ_EXAMPLES_ENV, "0") or "0")

PER_EXAMPLE_SECONDS = 5.0
"""Longest a single parse may take. Generous on purpose: the machine is shared and loaded, and a
real hang (an alias bomb expanded, a quadratic loop) takes minutes, not seconds."""


def fuzz_settings(examples: int, **overrides: Any) -> settings:
    """Hypothesis settings for one fuzz test: ``examples`` in CI, the env knob's count otherwise."""
    base: dict[str, Any] = {
        "max_examples": _LONG_SESSION or examples,
        "derandomize": not _LONG_SESSION,
        "database": None,
        "print_blob": True,
        # The deadline catches a slow parse on the example that caused it; PER_EXAMPLE_SECONDS
        # (timed_call) is the hard bound, also when hypothesis replays without deadline.
        "deadline": timedelta(seconds=PER_EXAMPLE_SECONDS),
        # The gateway fixture is shared by the examples of a test on purpose: each example is one
        # request to a running app, which must cope with whatever the earlier ones left behind.
        "suppress_health_check": [
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    }
    base.update(overrides)
    return settings(**base)


def timed_call(function: Callable[[], T]) -> T:
    """Call ``function`` and fail if it took longer than :data:`PER_EXAMPLE_SECONDS`."""
    started = time.perf_counter()
    try:
        return function()
    finally:
        elapsed = time.perf_counter() - started
        assert elapsed < PER_EXAMPLE_SECONDS, f"took {elapsed:.1f} s (limit {PER_EXAMPLE_SECONDS} s)"


def last_segment(field: str) -> str:
    """``spec.stages[1].name`` → ``name``; ``objectives[0]`` → ``objectives``."""
    return field.rsplit(".", 1)[-1].split("[", 1)[0]


def assert_names_field(error: InvalidInputError, *, fallback: str | None = None) -> None:
    """The error names the input it concerns: ``field`` is set and the message mentions it.

    Args:
        error: the error a parser raised.
        fallback: the file's own field (e.g. ``slo.yaml``) that may stand in the message for a
            problem of the whole document.
    """
    assert error.field, f"error without a field: {error.message!r}"
    error.message.encode("utf-8")  # it goes into a JSON answer: no lone surrogates
    names = {error.field, last_segment(error.field)} | ({fallback} if fallback else set())
    assert any(name and name in error.message for name in names), (
        f"message does not name the field {error.field!r}: {error.message!r}"
    )
