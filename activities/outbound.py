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
import ipaddress
import os
import re
import socket
import ssl
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx

from keptn.errors import InvalidInputError, KeptnError
from keptn.webhook import RESERVED_HEADERS

if TYPE_CHECKING:
    from capstan.settings import Settings

__all__ = [
    "DeniedURLError",
    "OutboundError",
    "OutboundPolicy",
    "OutboundResponse",
    "Resolver",
    "outbound_client",
    "send",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves ``(host, port)`` to addresses; the default is the system's ``getaddrinfo``."""

USER_AGENT = "capstan-webhook"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?")
_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "*")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA_IP = ipaddress.ip_address("169.254.169.254")


class DeniedURLError(InvalidInputError):
    """A webhook URL the policy refuses: ``webhook URL <origin> is denied: <rule>``.

    Only the origin (``scheme://host:port``) is named: paths and queries often carry secrets.

    Attributes:
        origin: ``scheme://host[:port]`` of the URL.
        reason: the rule, e.g. ``resolves to 127.0.0.1, a loopback address``.
    """

    def __init__(self, origin: str, reason: str) -> None:
        super().__init__(f"webhook URL {origin} is denied: {reason}", field="url")
        self.origin = origin
        self.reason = reason


class OutboundError(KeptnError):
    """A permitted request failed: the name did not resolve, no connection, TLS, or the deadline."""


@dataclass(frozen=True)
class OutboundResponse:
    """What came back."""

    status: int
    body_text: str
    """The body decoded with the response's charset (UTF-8 by default; bad bytes replaced)."""
    truncated: bool
    """Whether the body was longer than ``max_bytes`` and was cut."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _address_rule(ip: IPAddress) -> str | None:
    """Why an address is denied by the built-in rules, or None."""
    if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_ipv4(ip)) is not None:
        rule = _address_rule(inner)
        if rule is not None:
            return f"{rule[: rule.index(' address')]} address embedded in IPv6 ({inner})"
    if ip.is_loopback:
        return "a loopback address"
    if ip == _METADATA_IP:
        return "a link-local address (the cloud metadata service)"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified or ip in _THIS_NETWORK:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local):
        return "a reserved address"
    return None


def _name_rule(host: str) -> str | None:
    """Why a host name is denied by the built-in rules, or None."""
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is a loopback name"
    if host == "kubernetes" or host.startswith("kubernetes.default"):
        return f"{host} is the Kubernetes API"
    if host.endswith((".svc", ".cluster.local")) or host == "cluster.local":
        return f"{host} is a Kubernetes cluster-internal name"
    if host in ("metadata", "metadata.google.internal"):
        return f"{host} is the cloud metadata service"
    return None


def _is_local(ip: IPAddress) -> bool:
    """Whether ``ip`` is an address of this machine: only those can be bound to."""
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((str(ip), 0))
    except OSError:
        return False
    return True


def _split(text: str) -> list[str]:
    return [entry for entry in re.split(r"[\s,]+", text.strip().lower()) if entry]


def _host_port(url: httpx.URL) -> tuple[str, int]:
    """The URL's host (IDNA, lower-case, no trailing dot, IPv6 unbracketed) and effective port."""
    host = url.raw_host.decode("ascii").lower().rstrip(".")
    port = url.port or (443 if url.scheme == "https" else 80)
    return host, port


def _allow_key(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class OutboundPolicy:
    """Where webhook requests may go (see the module docstring); the defaults are the built-in rules."""

    deny_hosts: frozenset[str] = frozenset()
    deny_domains: tuple[str, ...] = ()
    """Suffixes with their dot (``.example.com``); the bare domain matches too."""
    deny_networks: tuple[Network, ...] = ()
    allow: frozenset[str] = frozenset()
    """``host:port`` keys (lower-case, IPv6 in brackets) exempt from every rule."""
    control_plane: tuple[str, int] | None = None
    """``(api_host, api_port)`` of this control plane."""
    resolver: Resolver | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_lists(
        cls,
        deny: str = "",
        allow: str = "",
        *,
        control_plane: tuple[str, int] | None = None,
        resolver: Resolver | None = None,
    ) -> OutboundPolicy:
        """A policy from deny- and allow-list texts (comma- or space-separated).

        Raises:
            InvalidInputError: an entry is not a host, ``.domain`` or network (deny) or not a
                ``host:port`` (allow); ``field`` names the setting.
        """
        hosts: set[str] = set()
        domains: list[str] = []
        networks: list[Network] = []
        for entry in _split(deny):
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = entry.removeprefix("*").rstrip(".")
            if not _NAME.fullmatch(name.lstrip(".")):
                raise InvalidInputError(
                    f"webhook_deny_list: {entry!r} is not a host name, .domain or network (CIDR)",
                    field="webhook_deny_list",
                )
            if name.startswith("."):
                domains.append(name)
            else:
                hosts.add(name)
        allowed: set[str] = set()
        for entry in _split(allow):
            try:
                url = httpx.URL(f"http://{entry}")
                if not re.search(r":\d+$", entry) or not url.host:
                    raise ValueError(entry)
            except (httpx.InvalidURL, ValueError):
                raise InvalidInputError(
                    f"webhook_allow_list: {entry!r} is not host:port", field="webhook_allow_list"
                ) from None
            allowed.add(_allow_key(*_host_port(url)))
        return cls(
            deny_hosts=frozenset(hosts),
            deny_domains=tuple(domains),
            deny_networks=tuple(networks),
            allow=frozenset(allowed),
            control_plane=control_plane,
            resolver=resolver,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        environ: Mapping[str, str] | None = None,
        resolver: Resolver | None = None,
    ) -> OutboundPolicy:
        """The policy of a control plane: its deny- and allow-lists, its own API, and Kubernetes' API.

        Args:
            settings: ``webhook_deny_list``, ``webhook_allow_list``, ``api_host``, ``api_port``.
            environ: where ``KUBERNETES_SERVICE_HOST`` is read (default ``os.environ``), denied
                as Keptn denied it.
            resolver: for tests; default ``getaddrinfo``.
        """
        env = os.environ if environ is None else environ
        deny = f"{settings.webhook_deny_list} {env.get('KUBERNETES_SERVICE_HOST', '')}"
        return cls.from_lists(
            deny,
            settings.webhook_allow_list,
            control_plane=(settings.api_host, settings.api_port),
            resolver=resolver,
        )

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The addresses of ``host`` (an IP literal is its own), in the resolver's order.

        Raises:
            OutboundError: the name does not resolve.
        """
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            if self.resolver is not None:
                found = await self.resolver(host, port)
            else:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
                found = [str(info[4][0]) for info in infos]
        except OSError as exc:
            raise OutboundError(f"could not resolve {host}: {exc.strerror or exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(address) for address in found))
        if not addresses:
            raise OutboundError(f"could not resolve {host}: no addresses")
        return addresses

    async def check(self, url: httpx.URL) -> list[IPAddress]:
        """The addresses a request to ``url`` may connect to: all of the host's, once checked.

        Raises:
            DeniedURLError: a rule refuses the URL (the first that does is named).
            InvalidInputError: the URL has no host or a port out of range.
            OutboundError: the name does not resolve.
        """
        origin = _origin(url)
        if url.scheme not in ("http", "https"):
            raise DeniedURLError(origin, f"the scheme {url.scheme!r} is not allowed (only http and https)")
        if not url.host:
            raise InvalidInputError("webhook URL has no host (expected http(s)://host/...)", field="url")
        host, port = _host_port(url)
        if not 0 < port < 65536:
            raise InvalidInputError(f"webhook URL {origin}: the port must be 1-65535", field="url")
        if _allow_key(host, port) in self.allow:
            return await self.resolve(host, port)
        rule = _name_rule(host)
        if rule is None and (host in self.deny_hosts or any(
            host.endswith(domain) or host == domain[1:] for domain in self.deny_domains
        )):  # fmt: skip
            rule = f"{host} is on the deny-list (CAPSTAN_WEBHOOK_DENY_LIST)"
        if rule is not None:
            raise DeniedURLError(origin, rule)
        addresses = await self.resolve(host, port)
        for ip in addresses:
            reason = _address_rule(ip)
            if reason is None:
                network = next((net for net in self.deny_networks if ip in net), None)
                if network is not None:
                    reason = f"in the denied network {network} (CAPSTAN_WEBHOOK_DENY_LIST)"
                elif await self._is_control_plane(ip, port):
                    reason = f"the control plane's own API (port {port})"
            if reason is not None:
                where = f"{ip} is {reason}" if str(ip) == host else f"resolves to {ip}, {reason}"
                raise DeniedURLError(origin, where)
        return addresses

    async def _is_control_plane(self, ip: IPAddress, port: int) -> bool:
        if self.control_plane is None or port != self.control_plane[1]:
            return False
        api_host = self.control_plane[0].strip("[]")
        if api_host in _WILDCARD_HOSTS:
            return _is_local(ip)
        try:
            return ip in await self.resolve(api_host, port)
        except OutboundError:
            return False


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


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
    origin = _origin(target)
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
