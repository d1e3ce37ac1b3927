"""Safe outbound HTTP for webhooks, against real loopback servers (allow-listed where they must answer)."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from activities.outbound import (
    DeniedURLError,
    OutboundError,
    OutboundPolicy,
    outbound_client,
    send,
)
from capstan.settings import Settings
from keptn.errors import InvalidInputError
from tests.fixtures.ports import free_port

BIG = b"x" * 10_000


@dataclass
class Server:
    """A loopback HTTP(S) server that records every request; paths choose the answer."""

    port: int
    scheme: str = "http"
    requests: list[dict[str, Any]] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"


def _handler(state: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            state.requests.append(
                {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
            )
            status, headers, payload = 200, {"content-type": "text/plain; charset=utf-8"}, b"ok"
            if self.path == "/redirect":
                status, headers["location"] = 302, "/landing"
            elif self.path == "/big":
                payload = BIG
            elif self.path == "/gzip-bomb":
                headers["content-encoding"] = "gzip"
                payload = gzip.compress(b"\0" * 5_000_000)
            elif self.path == "/gzip":
                headers["content-encoding"] = "gzip"
                payload = gzip.compress("grüße".encode())
            elif self.path == "/fail":
                status, payload = 500, b'{"error": "boom"}'
            elif self.path == "/slow":
                time.sleep(1)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                try:
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client stopped reading (size limit, timeout)

        do_GET = do_POST = do_PUT = do_HEAD = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(port=free_port())
    httpd = ThreadingHTTPServer(("127.0.0.1", state.port), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def allowing(*entries: str, **kwargs: Any) -> OutboundPolicy:
    return OutboundPolicy.from_lists("", " ".join(entries), **kwargs)


def fake_resolver(table: dict[str, list[str]], calls: list[str] | None = None):
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


async def no_resolution(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} must be refused before it is resolved")


async def call(policy: OutboundPolicy, url: str, method: str = "GET", **kwargs: Any):
    headers = kwargs.pop("headers", {})
    body = kwargs.pop("body", None)
    kwargs.setdefault("timeout", 5)
    kwargs.setdefault("max_bytes", 1024 * 1024)
    async with outbound_client(verify=kwargs.pop("verify", True)) as http:
        return await send(http, policy, method, url, headers, body, **kwargs)


# --- requests that are allowed -----------------------------------------------------------------


async def test_an_allow_listed_loopback_receiver_gets_the_request(server):
    response = await call(
        allowing(f"127.0.0.1:{server.port}"),
        f"{server.base}/hook?x=1",
        "POST",
        headers=[("X-Token", "t"), ("Content-Type", "application/json")],
        body='{"a": "ü"}',
    )
    assert (response.status, response.body_text, response.truncated) == (200, "ok", False)
    [request] = server.requests
    assert request["method"] == "POST" and request["path"] == "/hook?x=1"
    assert request["body"] == '{"a": "ü"}'.encode()
    assert request["headers"]["Host"] == f"127.0.0.1:{server.port}"
    assert request["headers"]["X-Token"] == "t"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["User-Agent"] == "capstan-webhook"


async def test_a_body_without_content_type_is_sent_as_curl_data_is(server):
    await call(allowing(f"127.0.0.1:{server.port}"), f"{server.base}/", "PUT", body="a=1")
    assert server.requests[0]["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize("method", ["GET", "HEAD", "PATCH", "DELETE"])
async def test_every_method_is_sent_as_given(server, method):
    response = await call(allowing(f"127.0.0.1:{server.port}"), f"{server.base}/m", method)
    assert response.status == 200
    assert server.requests[0]["method"] == method
    assert response.body_text == ("" if method == "HEAD" else "ok")


async def test_an_error_status_is_returned_not_raised(server):
    response = await call(allowing(f"127.0.0.1:{server.port}"), f"{server.base}/fail")
    assert (response.status, response.body_text) == (500, '{"error": "boom"}')


async def test_the_connection_goes_to_the_checked_address_with_the_original_host_header(server):
    """No DNS rebinding: the name is resolved once and the request goes to that address."""
    calls: list[str] = []
    policy = allowing(
        f"hooks.example:{server.port}", resolver=fake_resolver({"hooks.example": ["127.0.0.1"]}, calls)
    )
    response = await call(policy, f"http://hooks.example:{server.port}/x")
    assert response.status == 200
    assert calls == ["hooks.example"]
    assert server.requests[0]["headers"]["Host"] == f"hooks.example:{server.port}"


async def test_the_next_address_is_tried_when_one_refuses_the_connection(server):
    # the server listens on 127.0.0.1 only, so 127.0.0.2 refuses the connection
    policy = OutboundPolicy(
        allow=frozenset({f"two.example:{server.port}"}),
        resolver=fake_resolver({"two.example": ["127.0.0.2", "127.0.0.1"]}),
    )
    response = await call(policy, f"http://two.example:{server.port}/")
    assert response.status == 200 and len(server.requests) == 1


async def test_redirects_are_not_followed(server):
    response = await call(allowing(f"127.0.0.1:{server.port}"), f"{server.base}/redirect")
    assert response.status == 302
    assert [request["path"] for request in server.requests] == ["/redirect"]


# --- limits ------------------------------------------------------------------------------------


async def test_the_body_is_cut_at_max_bytes(server):
    policy = allowing(f"127.0.0.1:{server.port}")
    cut = await call(policy, f"{server.base}/big", max_bytes=100)
    assert (cut.body_text, cut.truncated) == ("x" * 100, True)
    whole = await call(policy, f"{server.base}/big", max_bytes=len(BIG))
    assert (len(whole.body_text), whole.truncated) == (len(BIG), False)


async def test_gzip_is_decoded_and_a_gzip_bomb_is_cut_while_decoding(server):
    policy = allowing(f"127.0.0.1:{server.port}")
    small = await call(policy, f"{server.base}/gzip")
    assert (small.body_text, small.truncated) == ("grüße", False)
    bomb = await call(policy, f"{server.base}/gzip-bomb", max_bytes=1000)
    assert (bomb.body_text, bomb.truncated) == ("\0" * 1000, True)
    assert server.requests[0]["headers"]["Accept-Encoding"] == "identity"


async def test_the_deadline_covers_the_whole_exchange(server):
    with pytest.raises(OutboundError, match=r"timed out after 0\.2s"):
        await call(allowing(f"127.0.0.1:{server.port}"), f"{server.base}/slow", timeout=0.2)


async def test_the_deadline_covers_name_resolution():
    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(5)
        return ["192.0.2.1"]

    with pytest.raises(OutboundError, match="timed out"):
        await call(OutboundPolicy(resolver=slow), "http://slow.example/", timeout=0.1)


async def test_connection_refused_and_unknown_names_are_outbound_errors():
    port = free_port()
    with pytest.raises(OutboundError, match=rf"could not connect to http://127\.0\.0\.1:{port}"):
        await call(allowing(f"127.0.0.1:{port}"), f"http://127.0.0.1:{port}/")
    with pytest.raises(OutboundError, match="could not resolve nowhere.example"):
        await call(OutboundPolicy(resolver=fake_resolver({})), "http://nowhere.example/")


# --- denied URLs -------------------------------------------------------------------------------


async def test_a_loopback_address_is_denied_and_nothing_is_sent(server):
    with pytest.raises(DeniedURLError) as caught:
        await call(OutboundPolicy(), f"{server.base}/services/T0/B0/SECRET?token=abc")
    assert caught.value.message == (
        f"webhook URL http://127.0.0.1:{server.port} is denied: 127.0.0.1 is a loopback address"
    )
    assert "SECRET" not in caught.value.message and "abc" not in caught.value.message
    assert caught.value.field == "url"
    assert server.requests == []


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f000001", "127.0.1", "017700000001"])
async def test_other_spellings_of_127_0_0_1_resolve_to_a_loopback_address(server, host):
    with pytest.raises(DeniedURLError, match=r"resolves to 127\.0\.0\.1, a loopback address"):
        await call(OutboundPolicy(), f"http://{host}:{server.port}/")
    assert server.requests == []


async def test_a_name_resolving_to_127_0_0_1_is_denied():
    policy = OutboundPolicy(resolver=fake_resolver({"rebind.example": ["127.0.0.1"]}))
    with pytest.raises(
        DeniedURLError, match=r"rebind\.example is denied: resolves to 127\.0\.0\.1, a loopback"
    ):
        await call(policy, "http://rebind.example/")


async def test_this_machines_name_is_denied_when_it_resolves_to_loopback():
    name = socket.gethostname().lower()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    except OSError:
        pytest.skip("the host name does not resolve")
    if not all(ipaddress.ip_address(address).is_loopback for address in addresses):
        pytest.skip("the host name does not resolve to loopback here")
    with pytest.raises(DeniedURLError, match=r"resolves to .*, a loopback address"):
        await call(OutboundPolicy(), f"http://{name}:{free_port()}/")


async def test_every_resolved_address_is_checked_not_only_the_first():
    policy = OutboundPolicy(resolver=fake_resolver({"mixed.example": ["93.184.216.34", "127.0.0.1"]}))
    with pytest.raises(DeniedURLError, match=r"resolves to 127\.0\.0\.1"):
        await call(policy, "http://mixed.example/")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[::1]:8080/", "::1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local address (the cloud metadata service)"),
        ("http://169.254.10.1/", "169.254.10.1 is a link-local address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://0.0.0.0:8080/", "0.0.0.0 is an unspecified address"),
        ("http://0.1.2.3/", "an unspecified address"),
        ("http://[::]/", "an unspecified address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://[ff02::1]/", "a multicast address"),
        ("http://240.0.0.1/", "a reserved address"),
        ("http://255.255.255.255/", "a reserved address"),
        ("http://[::ffff:127.0.0.1]/", "a loopback address embedded in IPv6 (127.0.0.1)"),
        ("http://[::ffff:169.254.169.254]/", "a link-local address embedded in IPv6"),
        ("http://[2002:7f00:1::]/", "a loopback address embedded in IPv6 (127.0.0.1)"),
        ("http://[64:ff9b::7f00:1]/", "a loopback address embedded in IPv6 (127.0.0.1)"),
    ],
)
async def test_built_in_denied_addresses(url, reason):
    with pytest.raises(DeniedURLError) as caught:
        await call(OutboundPolicy(resolver=no_resolution), url)
    assert reason in caught.value.message


@pytest.mark.parametrize(
    ("host", "rule"),
    [
        ("localhost", "localhost is a loopback name"),
        ("LOCALHOST.", "localhost is a loopback name"),
        ("api.localhost", "a loopback name"),
        ("kubernetes", "the Kubernetes API"),
        ("kubernetes.default", "the Kubernetes API"),
        ("kubernetes.default.svc.cluster.local", "the Kubernetes API"),
        ("keptn-api.keptn.svc", "a Kubernetes cluster-internal name"),
        ("mongo.keptn.svc.cluster.local", "a Kubernetes cluster-internal name"),
        ("metadata.google.internal", "the cloud metadata service"),
    ],
)
async def test_built_in_denied_names_are_refused_before_resolution(host, rule):
    with pytest.raises(DeniedURLError, match=rule):
        await call(OutboundPolicy(resolver=no_resolution), f"http://{host}:8080/")


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/"])
async def test_only_http_and_https_are_allowed(url):
    with pytest.raises(DeniedURLError, match="is not allowed \\(only http and https\\)"):
        await call(OutboundPolicy(resolver=no_resolution), url)


async def test_malformed_urls_and_headers_are_invalid_input():
    policy = OutboundPolicy(resolver=fake_resolver({"ok.example": ["192.0.2.1"]}))
    with pytest.raises(InvalidInputError, match="no host"):
        await call(policy, "http:///path")
    with pytest.raises(InvalidInputError, match="the port must be 1-65535"):
        await call(policy, "http://ok.example:99999/")
    with pytest.raises(InvalidInputError, match="not a valid URL"):
        await call(policy, "http://ok.example:x/")
    for headers, message in [
        ({"Host": "evil"}, "header Host: set by the HTTP client"),
        ({"Content-Length": "1"}, "header Content-Length"),
        ({"X-A": "a\r\nX-B: b"}, "header X-A: the value contains a line break"),
        ({"bad name": "x"}, "not a valid header name"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            await call(policy, "http://ok.example/", headers=headers)


# --- the policy from settings ------------------------------------------------------------------


async def test_the_deny_list_takes_hosts_domains_and_networks():
    settings = Settings(webhook_deny_list="jenkins.corp.example, .internal.example 10.0.0.0/8,192.0.2.7")
    resolver = fake_resolver(
        {"ci.example": ["10.1.2.3"], "x.example": ["192.0.2.7"], "fine.example": ["192.0.2.8"]}
    )
    policy = OutboundPolicy.from_settings(settings, environ={}, resolver=resolver)
    for url, reason in [
        ("http://jenkins.corp.example/", "jenkins.corp.example is on the deny-list"),
        ("http://a.b.internal.example/", "a.b.internal.example is on the deny-list"),
        ("http://internal.example/", "internal.example is on the deny-list"),
        ("http://ci.example/", r"resolves to 10\.1\.2\.3, in the denied network 10\.0\.0\.0/8"),
        ("http://x.example/", r"resolves to 192\.0\.2\.7, in the denied network 192\.0\.2\.7/32"),
    ]:
        with pytest.raises(DeniedURLError, match=reason):
            await call(policy, url)
    import httpx

    assert await policy.check(httpx.URL("http://fine.example/")) == [ipaddress.ip_address("192.0.2.8")]


async def test_the_kubernetes_service_host_from_the_environment_is_denied():
    policy = OutboundPolicy.from_settings(Settings(), environ={"KUBERNETES_SERVICE_HOST": "10.96.0.1"})
    with pytest.raises(DeniedURLError, match="in the denied network 10.96.0.1/32"):
        await call(policy, "https://10.96.0.1:443/api")


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("webhook_deny_list", "http://x.example/", "is not a host name, .domain or network"),
        ("webhook_deny_list", "bad_host!", "is not a host name"),
        ("webhook_allow_list", "localhost", "is not host:port"),
        ("webhook_allow_list", "localhost:http", "is not host:port"),
    ],
)
def test_malformed_list_entries_name_the_setting(setting, value, message):
    with pytest.raises(InvalidInputError, match=message) as caught:
        OutboundPolicy.from_settings(Settings(**{setting: value}), environ={})
    assert caught.value.field == setting


def test_allow_list_entries_are_normalised():
    policy = OutboundPolicy.from_settings(
        Settings(webhook_allow_list="LocalHost:8080, [::1]:9000 hooks.example.:443 bücher.example:80"),
        environ={},
    )
    assert policy.allow == {"localhost:8080", "[::1]:9000", "hooks.example:443", "xn--bcher-kva.example:80"}


async def test_the_allow_list_matches_the_default_port_and_ipv6(server):
    policy = allowing("allowed.example:443", "[::1]:8080", resolver=fake_resolver({}))
    import httpx

    # allowed, so only resolution remains (which fails here: nothing is sent)
    with pytest.raises(OutboundError, match="could not resolve allowed.example"):
        await policy.check(httpx.URL("https://allowed.example/"))
    assert await policy.check(httpx.URL("http://[::1]:8080/")) == [ipaddress.ip_address("::1")]
    with pytest.raises(DeniedURLError):
        await policy.check(httpx.URL("http://[::1]:8081/"))


async def test_the_control_plane_itself_is_denied():
    import httpx

    resolver = fake_resolver({"capstan.example": ["192.0.2.10"], "alias.example": ["192.0.2.10"]})
    settings = Settings(api_host="capstan.example", api_port=8080)
    policy = OutboundPolicy.from_settings(settings, environ={}, resolver=resolver)
    with pytest.raises(DeniedURLError, match=r"resolves to 192\.0\.2\.10, the control plane's own API"):
        await policy.check(httpx.URL("http://alias.example:8080/api/v1/event"))
    assert await policy.check(httpx.URL("http://alias.example:8081/")) == [ipaddress.ip_address("192.0.2.10")]


def _non_loopback_local_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))  # no packet is sent; only picks the outgoing interface
            address: str = sock.getsockname()[0]
    except OSError:
        return None
    return None if ipaddress.ip_address(address).is_loopback else address


async def test_a_control_plane_on_all_interfaces_is_denied_on_every_local_address():
    import httpx

    address = _non_loopback_local_address()
    if address is None:
        pytest.skip("no non-loopback address on this machine")
    policy = OutboundPolicy.from_settings(Settings(api_host="0.0.0.0", api_port=8080), environ={})
    with pytest.raises(DeniedURLError, match="the control plane's own API"):
        await policy.check(httpx.URL(f"http://{address}:8080/"))
    assert await policy.check(httpx.URL(f"http://{address}:8081/")) == [ipaddress.ip_address(address)]
    assert await policy.check(httpx.URL("http://192.0.2.1:8080/")) == [ipaddress.ip_address("192.0.2.1")]


# --- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    paths = {}
    for name in ("localhost", "other.example"):
        key, cert = directory / f"{name}.key", directory / f"{name}.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
             "-addext", f"subjectAltName=DNS:{name}"],
            check=True, capture_output=True,
        )  # fmt: skip
        paths[name] = cert
    return paths


@pytest.fixture
def tls_server(certificates, request) -> Iterator[Server]:
    name = request.param
    state = Server(port=free_port(), scheme="https")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates[name], certificates[name].with_suffix(".key"))
    context.sni_callback = lambda sock, server_name, ctx: state.sni.append(server_name)
    httpd = ThreadingHTTPServer(("127.0.0.1", state.port), _handler(state))
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _trusting(certificates) -> ssl.SSLContext:
    context = ssl.create_default_context()
    for cert in certificates.values():
        context.load_verify_locations(cert)
    return context


@pytest.mark.parametrize("tls_server", ["localhost"], indirect=True)
async def test_https_sends_the_name_as_sni_and_verifies_it_while_connecting_to_the_address(
    tls_server, certificates
):
    policy = allowing(f"localhost:{tls_server.port}", resolver=fake_resolver({"localhost": ["127.0.0.1"]}))
    response = await call(policy, f"https://localhost:{tls_server.port}/tls", verify=_trusting(certificates))
    assert (response.status, response.body_text) == (200, "ok")
    assert tls_server.sni == ["localhost"]
    assert tls_server.requests[0]["headers"]["Host"] == f"localhost:{tls_server.port}"


@pytest.mark.parametrize("tls_server", ["other.example"], indirect=True)
async def test_https_refuses_a_certificate_for_another_name(tls_server, certificates):
    policy = allowing(f"localhost:{tls_server.port}", resolver=fake_resolver({"localhost": ["127.0.0.1"]}))
    with pytest.raises(OutboundError, match="CERTIFICATE_VERIFY_FAILED"):
        await call(policy, f"https://localhost:{tls_server.port}/", verify=_trusting(certificates))
    assert tls_server.sni == ["localhost"] and tls_server.requests == []
