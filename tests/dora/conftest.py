"""The DORA tests drive the gateway app as the API tests do."""

from tests.api.conftest import api

__all__ = ["api"]  # a fixture, imported so that pytest finds it here
