"""A real OpenID provider for the single sign-on tests, and a proxy in front of it.

``oidc-provider-mock`` runs in a process of its own on 127.0.0.1 (a real
provider: discovery, authorization page, token endpoint, key set, signed ID
tokens). The tests never talk to it directly: a small proxy, also on
127.0.0.1, forwards every request to it with the ``Host`` the browser or the
platform sent, so the provider names the proxy as its issuer and every
endpoint. The proxy

- records each authorization and token request (so a test can prove PKCE
  from what was actually sent);
- can change the discovery document's ``issuer`` (``Proxy.discovery_issuer``)
  and its other fields (``Proxy.discovery``);
- can change the ID token of the next token answers (``Proxy.id_token``):
  re-signed with the proxy's own key, which its key set publishes beside the
  provider's, where the case needs a valid signature, or changed without
  re-signing (a tampered token).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _b64_json(part: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]


# How a token answer's ID token is changed: given its claims, the new claims and
# whether to sign them with the proxy's key (False: keep the old signature).
Change = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class Proxy:
    upstream: int
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "proxy-key"}))
    recorded: list[Recorded] = field(default_factory=list)
    discovery_issuer: str | None = None
    discovery: dict[str, str] = field(default_factory=dict)  # other fields of the document, changed
    id_token: Change | None = None
    resign: bool = True
    raw_token: Callable[[str], str] | None = None  # the whole ID token replaced (header and signature too)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.recorded.clear()
        self.discovery_issuer = None
        self.discovery = {}
        self.id_token = None
        self.resign = True
        self.raw_token = None

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.recorded if r.path == path]

    def change_token(self, token: str) -> str:
        header, payload, signature = token.split(".")
        assert self.id_token is not None
        claims = self.id_token(_b64_json(payload))
        if not self.resign:
            return f"{header}.{_b64(claims)}.{signature}"
        return jwt.encode({"alg": "RS256", "kid": "proxy-key"}, claims, self.key)

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        headers = {name: value for name, value in handler.headers.items() if name.lower() not in HOP_BY_HOP}
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()} if body else {}
        self.recorded.append(Recorded(handler.command, parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()},
                                      form, headers))
        connection = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=10)
        try:
            connection.request(handler.command, handler.path, body=body or None, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            status, answer_headers = answer.status, answer.getheaders()
        finally:
            connection.close()
        data = self._alter(parts.path, status, data)
        handler.send_response(status)
        for name, value in answer_headers:
            if name.lower() not in HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(data)

    def _alter(self, path: str, status: int, data: bytes) -> bytes:
        if status != 200:
            return data
        if path == "/.well-known/openid-configuration" and (self.discovery_issuer is not None or self.discovery):
            document = json.loads(data)
            if self.discovery_issuer is not None:
                document["issuer"] = self.discovery_issuer
            document.update(self.discovery)
            return json.dumps(document).encode()
        if path == "/jwks":
            keys = json.loads(data)
            keys["keys"].append(self.key.as_dict(private=False))
            return json.dumps(keys).encode()
        if path == "/oauth2/token" and (self.id_token is not None or self.raw_token is not None):
            answer = json.loads(data)
            if self.id_token is not None:
                answer["id_token"] = self.change_token(answer["id_token"])
            if self.raw_token is not None:
                answer["id_token"] = self.raw_token(answer["id_token"])
            return json.dumps(answer).encode()
        return data


@contextmanager
def _proxy_server(proxy: Proxy) -> Iterator[None]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            proxy.forward(self)

        def do_POST(self) -> None:
            proxy.forward(self)

        do_PUT = do_POST  # noqa: N815 - the stdlib's name

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _wait_until_up(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("oidc-provider-mock stopped at start")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/.well-known/openid-configuration")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("oidc-provider-mock did not start")


@contextmanager
def running_provider() -> Iterator[Proxy]:
    """The mock provider in a process of its own, and the proxy in front of it."""
    port = _free_port()
    process = subprocess.Popen(  # a fixed command: the venv's own Python and the mock's module
        [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        _wait_until_up(port, process)
        proxy = Proxy(upstream=port)
        with _proxy_server(proxy):
            yield proxy
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def oidc_server() -> Iterator[Proxy]:
    with running_provider() as proxy:
        yield proxy


@pytest.fixture
def oidc(oidc_server: Proxy) -> Iterator[Proxy]:
    """The provider's proxy, with nothing changed and nothing recorded."""
    oidc_server.reset()
    yield oidc_server
    oidc_server.reset()


def put_user(proxy: Proxy, subject: str, claims: dict[str, Any]) -> None:
    """Give the provider a person (their claims), as its API allows."""
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        connection.request("PUT", f"/users/{subject}", body=json.dumps(claims),
                           headers={"Content-Type": "application/json"})
        assert connection.getresponse().status == 204
    finally:
        connection.close()


def authorize(proxy: Proxy, location: str, subject: str) -> str:
    """Sign ``subject`` in at the provider's page, as a person would (its form's
    POST), given where the platform sent the browser; where the provider sends it back."""
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == proxy.url, location
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        connection.request("POST", f"{parts.path}?{parts.query}", body=f"sub={subject}",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 302, answer.status
        return str(answer.getheader("Location"))
    finally:
        connection.close()
