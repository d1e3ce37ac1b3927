"""Pydantic models of the request and response bodies of the Keptn-compatible API, one module per area."""
