"""Outbound HTTP for webhooks: where a request may go, pinned to the checked address, with limits.

A webhook URL comes from a project's files, so anyone who can push to a project's repository
chooses where the control plane sends requests (and which secrets go with them). :func:`send`
therefore refuses, before any byte is sent (:class:`OutboundPolicy`):

* schemes other than ``http`` and ``https``;
* built-in names: ``localhost`` (and ``*.localhost``), ``kubernetes``, ``kubernetes.default*``,
  ``*.svc``, ``*.cluster.local``, ``metadata``, ``metadata.google.internal``;
* every address the host resolves to (all of them, not just the first) that is loopback,
  link-local (including the cloud metadata address 169.254.169.254), unspecified (``0.0.0.0/8``,
  ``::``), multicast or reserved, also when embedded in IPv6 (``::ffff:127.0.0.1``, 6to4,
  Teredo, NAT64 ``64:ff9b::/96``);
* the control plane itself: its API port on the address it listens on (``CAPSTAN_API_HOST``;
  for ``0.0.0.0``/``::`` any address of this machine);
* the operator's ``CAPSTAN_WEBHOOK_DENY_LIST``: host names, ``.domains`` (the domain and its
  subdomains) and networks (CIDR, or single addresses), and ``$KUBERNETES_SERVICE_HOST``.

``CAPSTAN_WEBHOOK_ALLOW_LIST`` entries ``host:port`` (the host as written in the URL, the port
explicit or the scheme's default) are exempt from all of these.

No DNS rebinding: the name is resolved once, checked, and the connection is made to the checked
address (the URL's host is replaced by it), with ``Host`` set to the original host and, for
https, the original name sent as SNI and verified against the certificate. Redirects are not
followed: a 3xx is the answer (as ``curl`` without ``-L`` in Keptn), so a redirect cannot lead to
a denied address. The whole exchange (resolution included) has one deadline; the response body is
read as a stream and cut at ``max_bytes`` (after gzip/deflate decoding, which is done here,
bounded, instead of by httpx).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

import httpx

from activities.outbound_policy import DeniedURLError, OutboundError, OutboundPolicy, Resolver, url_origin
from keptn.errors import InvalidInputError
from keptn.webhook import RESERVED_HEADERS

# The policy's names are re-exported: callers import everything outbound from here.
__all__ = [
    "DeniedURLError",
    "OutboundError",
    "OutboundPolicy",
    "OutboundResponse",
    "Resolver",
    "outbound_client",
    "send",
]

USER_AGENT = "capstan-webhook"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class OutboundResponse:
    """What came back."""

    status: int
    body_text: str
    """The body decoded with the response's charset (UTF-8 by default; bad bytes replaced)."""
    truncated: bool
    """Whether the body was longer than ``max_bytes`` and was cut."""


def _request_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    for name, value in pairs:
        if not _TOKEN.fullmatch(name):
            raise InvalidInputError(f"header {name!r}: not a valid header name", field="headers")
        if name.lower() in RESERVED_HEADERS:
            raise InvalidInputError(f"header {name}: set by the HTTP client, cannot be set", field="headers")
        if any(char in value for char in "\r\n\0"):
            raise InvalidInputError(f"header {name}: the value contains a line break or NUL", field="headers")
    return pairs


async def _read(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """At most ``max_bytes`` of the (decoded) body, and whether there was more."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    decoder = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding in ("gzip", "x-gzip", "deflate") else None
    body = bytearray()
    async for raw in response.aiter_raw():
        pending = raw
        while pending:
            if decoder is None:
                data, pending = pending, b""
            else:
                try:
                    data = decoder.decompress(pending, max_bytes - len(body) + 1)
                except zlib.error as exc:
                    raise OutboundError(f"could not decode the {encoding} response: {exc}") from None
                pending = decoder.unconsumed_tail
            body += data
            if len(body) > max_bytes:
                return bytes(body[:max_bytes]), True
    return bytes(body), False


def _text(response: httpx.Response, body: bytes) -> str:
    try:
        return body.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:  # an unknown charset
        return body.decode("utf-8", errors="replace")


async def send(
    http: httpx.AsyncClient,
    policy: OutboundPolicy,
    method: str,
    url: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: str | bytes | None,
    *,
    timeout: timedelta | float,  # noqa: ASYNC109  # the contract names it; applied with asyncio.timeout
    max_bytes: int,
) -> OutboundResponse:
    """Send one webhook request, if ``policy`` allows its URL (see the module docstring).

    Any status is returned, 3xx and ≥ 400 included: deciding what fails is the caller's. Like
    ``curl --data``, a body without a ``Content-Type`` header is sent as
    ``application/x-www-form-urlencoded``.

    Args:
        http: the client; it must not use a proxy (see :func:`outbound_client`). Its cookies,
            default headers and base URL are not used.
        policy: where requests may go.
        method: the HTTP method.
        url: the rendered URL.
        headers: request headers; ``Host``, ``Content-Length``, ``Transfer-Encoding`` and
            ``Connection`` are refused.
        body: the body (text is sent as UTF-8), or None.
        timeout: deadline of the whole exchange, name resolution included (seconds or timedelta).
        max_bytes: most body bytes read; the rest is left unread and ``truncated`` set.

    Raises:
        DeniedURLError: the policy refuses the URL.
        InvalidInputError: the URL or a header is malformed.
        OutboundError: resolution, connection, TLS or the deadline failed.
    """
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidInputError(f"webhook URL is not a valid URL: {exc}", field="url") from None
    pairs = _request_headers(headers)
    names = {name.lower() for name, _ in pairs}
    content = body.encode() if isinstance(body, str) else body
    extra = [("Host", target.netloc.decode("ascii")), ("Connection", "close")]
    if "user-agent" not in names:
        extra.append(("User-Agent", USER_AGENT))
    if "accept-encoding" not in names:
        extra.append(("Accept-Encoding", "identity"))
    if content and "content-type" not in names:
        extra.append(("Content-Type", "application/x-www-form-urlencoded"))
    origin = url_origin(target)
    extensions = {
        "timeout": httpx.Timeout(seconds).as_dict(),
        "sni_hostname": target.raw_host.decode("ascii").rstrip("."),
    }
    try:
        async with asyncio.timeout(seconds):
            failures: list[str] = []
            for address in await policy.check(target):
                request = httpx.Request(
                    method.upper(),
                    target.copy_with(host=str(address)),
                    headers=extra + pairs,
                    content=content,
                    extensions=extensions,
                )
                try:
                    response = await http.send(request, stream=True, follow_redirects=False)
                except httpx.ConnectError as exc:  # nothing sent yet: try the next address
                    failures.append(f"{address}: {exc}")
                    continue
                try:
                    data, truncated = await _read(response, max_bytes)
                finally:
                    await response.aclose()
                return OutboundResponse(response.status_code, _text(response, data), truncated)
            raise OutboundError(f"could not connect to {origin} ({'; '.join(failures)})")
    except (TimeoutError, httpx.TimeoutException):
        raise OutboundError(f"request to {origin} timed out after {seconds:g}s") from None
    except httpx.HTTPError as exc:
        raise OutboundError(f"request to {origin} failed: {type(exc).__name__}: {exc}") from None


def outbound_client(*, verify: ssl.SSLContext | str | bool = True) -> httpx.AsyncClient:
    """A client for :func:`send`: no proxies from the environment, no redirects.

    A proxy would defeat the address pinning (and httpx's HTTP proxy tunnel does not pass the
    SNI name), so environment proxies are ignored.

    Args:
        verify: TLS verification as httpx takes it (an ``ssl.SSLContext`` to trust a private CA).
    """
    return httpx.AsyncClient(follow_redirects=False, trust_env=False, verify=verify)
