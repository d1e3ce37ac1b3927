"""Run the gateway: ``python -m api`` (what ``capstan up`` starts)."""

from __future__ import annotations

import uvicorn

from capstan.logs import configure_logging
from capstan.settings import Settings


def main() -> None:
    """Serve the gateway on the configured host and port until SIGINT/SIGTERM."""
    settings = Settings()
    configure_logging(settings, process="gateway")
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # our structlog configuration renders uvicorn's records too
        access_log=False,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
