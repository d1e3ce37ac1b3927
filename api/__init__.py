"""The FastAPI gateway: Keptn's REST API under ``/api``."""
