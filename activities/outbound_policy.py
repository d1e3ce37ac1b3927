"""Where outbound requests may go: the deny-list and allow-list of :mod:`activities.outbound`.

The rules are listed in that module's docstring. :class:`OutboundPolicy` resolves a URL's host
once, checks every address, and returns the addresses the request must then be pinned to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from keptn.errors import InvalidInputError, KeptnError

if TYPE_CHECKING:
    from capstan.settings import Settings

__all__ = ["DeniedURLError", "OutboundError", "OutboundPolicy", "Resolver", "url_origin"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves ``(host, port)`` to addresses; the default is the system's ``getaddrinfo``."""

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
        origin = url_origin(url)
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


def url_origin(url: httpx.URL) -> str:
    """``scheme://host[:port]`` of a URL: what messages name (paths and queries carry secrets)."""
    return f"{url.scheme}://{url.netloc.decode('ascii')}"
