"""Outward calls (``diversion.outbound``): where they may go, checked when an address
is given and again when it is called, pinned to the address checked, TLS
verified for the name.

Connections are watched by an audit hook on ``socket.connect`` and by real
listeners on 127.0.0.1 (tests/network.py); names resolve through the tests'
own table, since there is no DNS here.
"""

from __future__ import annotations

import ast
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from diversion import outbound
from diversion.config import REPO_ROOT, ConfigError, load_config
from tests.network import CONNECTIONS, PUBLIC, FakeDNS, in_turn, ipv6_loopback, listening

HOOKS = "hooks.provider.test"  # a made-up name the tests resolve to 127.0.0.1


# ---------------------------------------------------------------- refused forms

# Forms of this machine's loopback (what a listener on 127.0.0.1 or ::1 would see).
LOOPBACK_FORMS = [
    "https://127.0.0.1:{port}/",
    "https://127.1:{port}/",
    "https://2130706433:{port}/",  # 127.0.0.1 as one number
    "https://0x7f.1:{port}/",  # hexadecimal, two parts
    "https://0x7f000001:{port}/",
    "https://0177.0.0.1:{port}/",  # octal
    "https://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped
    "https://[::ffff:7f00:1]:{port}/",
    "https://[::127.0.0.1]:{port}/",  # IPv4-compatible
    "https://0.0.0.0:{port}/",  # "this host"
    "https://0:{port}/",
    "https://loopback.test:{port}/",  # a name that resolves to loopback
    "https://mixed.test:{port}/",  # a name one of whose addresses is loopback
]
IPV6_LOOPBACK_FORMS = ["https://[::1]:{port}/", "https://[0:0:0:0:0:0:0:1]:{port}/", "https://v6loop.test:{port}/"]
# Other places inside: no listener can stand there, the audit hook shows nothing was tried.
ELSEWHERE_FORMS = [
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata
    "https://[fe80::1]/", "https://[fe80::1%25eth0]/",  # link-local
    "https://10.0.0.1/", "https://172.16.5.4/", "https://192.168.1.1/",  # private
    "https://100.64.0.1/",  # shared (carrier-grade NAT)
    "https://[fd00::1]/", "https://[fc00::1]/",  # unique local
    "https://224.0.0.1/", "https://[ff02::1]/",  # multicast
    "https://240.0.0.1/", "https://255.255.255.255/",  # reserved, broadcast
    "https://192.0.2.1/", "https://[2001:db8::1]/",  # documentation
    "https://[::]/",  # unspecified
    "https://[64:ff9b::a00:1]/", "https://[64:ff9b::808:808]/",  # NAT64 (10.0.0.1, even 8.8.8.8)
    "https://[2002:a00:1::]/",  # 6to4 of 10.0.0.1
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
    "https://[::ffff:10.0.0.1]/", "https://[::ffff:169.254.169.254]/",
    "https://012.0.0.1/",  # octal 10.0.0.1
    "https://0xa9fea9fe/",  # 169.254.169.254 as one hexadecimal number
    "https://private.test/",  # a name that resolves to a private address
    "https://metadata.test/",  # a name with a public address and the metadata service's
]


@pytest.fixture
def names(dns: FakeDNS) -> FakeDNS:
    dns.table.update({
        "loopback.test": ["127.0.0.1"],
        "mixed.test": [PUBLIC, "127.0.0.1"],
        "v6loop.test": ["::1"],
        "private.test": ["10.1.2.3"],
        "metadata.test": [PUBLIC, "169.254.169.254"],
        HOOKS: ["127.0.0.1"],
    })
    return dns


def rules(*ports: int, hosts: tuple[str, ...] = ()) -> outbound.Policy:
    """The rules with extra ports allowed, so that the port of a local listener is not
    what refuses a loopback address: the address rules must."""
    return outbound.Policy(ports=frozenset({443, *ports}), allowed_hosts=frozenset(hosts))


def _refused_and_never_called(url: str, policy: outbound.Policy) -> list[tuple[str, int]]:
    with CONNECTIONS.recording() as seen:
        with pytest.raises(outbound.Refused) as refusal:
            outbound.check(url, policy)
        assert refusal.value.field == "url"
        assert refusal.value.message
        answer = outbound.request("POST", url, rules=policy, timeout=2, body=b"{}")
    assert answer == outbound.Answer(outbound.Result.NOT_ALLOWED)
    return list(seen)


@pytest.mark.parametrize("form", LOOPBACK_FORMS)
def test_loopback_in_any_form_is_refused_and_nothing_reaches_a_listener(names: FakeDNS, form: str) -> None:
    with listening() as (listener,):
        url = form.format(port=listener.port)
        seen = _refused_and_never_called(url, rules(listener.port))
    assert seen == []
    assert listener.accepted == 0


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
@pytest.mark.parametrize("form", IPV6_LOOPBACK_FORMS)
def test_ipv6_loopback_is_refused_and_nothing_reaches_a_listener(names: FakeDNS, form: str) -> None:
    with listening(("::1", "127.0.0.1")) as (v6, v4):
        url = form.format(port=v6.port)
        seen = _refused_and_never_called(url, rules(v6.port, v4.port))
    assert seen == []
    assert (v6.accepted, v4.accepted) == (0, 0)


@pytest.mark.parametrize("url", ELSEWHERE_FORMS)
def test_private_link_local_shared_multicast_reserved_and_embedded_addresses_are_refused(
    names: FakeDNS, url: str,
) -> None:
    assert _refused_and_never_called(url, rules()) == []


def test_the_listener_and_the_hook_do_see_a_call_that_is_made(names: FakeDNS) -> None:
    """The watchers work: an allow-listed loopback call reaches the listener and the hook."""
    with listening() as (listener,):
        with CONNECTIONS.recording() as seen:
            answer = outbound.request("POST", f"https://{HOOKS}:{listener.port}/", timeout=0.5, body=b"{}",
                                      rules=rules(hosts=(HOOKS,)))
        recorded = list(seen)
    assert answer.result in (outbound.Result.TIMED_OUT, outbound.Result.COULD_NOT_CONNECT)
    assert ("127.0.0.1", listener.port) in recorded
    assert listener.accepted == 1


def test_public_addresses_and_names_pass(names: FakeDNS) -> None:
    for url, host, addresses in (
        ("https://example.org/hooks?x=1", "example.org", (PUBLIC,)),
        ("HTTPS://Example.ORG./hooks", "example.org", (PUBLIC,)),
        ("https://8.8.8.8/", "8.8.8.8", ("8.8.8.8",)),
        ("https://[2001:4860:4860::8888]/", "2001:4860:4860::8888", ("2001:4860:4860::8888",)),
    ):
        destination = outbound.check(url, rules())
        assert (destination.host, destination.port, destination.addresses) == (host, 443, addresses), url


def test_a_name_that_does_not_resolve_is_refused(names: FakeDNS) -> None:
    with pytest.raises(outbound.Refused, match="public internet"):
        outbound.check("https://nowhere.test/", rules())


def test_the_rules_refuse_addresses_not_only_urls() -> None:
    import ipaddress

    for address in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "100.100.100.200", "::1", "::ffff:8.8.8.8",
                    "64:ff9b::808:808", "fe80::1", "ff05::2", "0.1.2.3", "198.18.0.1"):
        assert outbound.refused_address(ipaddress.ip_address(address)), address
    for address in ("8.8.8.8", PUBLIC, "2001:4860:4860::8888", "2a00:1450:4009:81f::200e"):
        assert not outbound.refused_address(ipaddress.ip_address(address)), address


def test_numbers_are_read_as_the_c_library_reads_them() -> None:
    for host, address in (("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
                          ("127.1", "127.0.0.1"), ("012.1.1", "10.1.0.1"), ("1.2.3.4", "1.2.3.4")):
        assert str(outbound.literal_address(host)) == address, host
    for name in ("example.org", "deadbeef", "a", "1.2.3.4.5"):
        assert outbound.literal_address(name) is None, name


# ---------------------------------------------------------------- the address as written

@pytest.mark.parametrize(("url", "message"), [
    ("https://[::1", "not a web address we can use"),
    ("https://[::1/hooks", "not a web address we can use"),
    ("https://[example.org]/", "not a web address we can use"),
    ("https://[127.0.0.1]/", "not a web address we can use"),
    ("https://example.org:99999/", "not a web address we can use"),
    ("https://example.org:http/", "not a web address we can use"),
    ("https://example.org:/", "not a web address we can use"),
    ("https://exa%6dple.org/", "not a web address we can use"),
    ("https://exa mple.org/", "spaces or control characters"),
    ("https://example.org/\x00", "spaces or control characters"),
    ("http://example.org/", "full https:// address"),
    ("ftp://example.org/", "full https:// address"),
    ("//example.org/", "full https:// address"),
    ("https:///hooks", "full https:// address"),
    ("https://user:pw@example.org/", "user name, password"),
    ("https://user@example.org/", "user name, password"),
    ("https://example.org\\@127.0.0.1/", "user name, password"),
    ("https://example.org/hooks#part", "#fragment"),
    ("https://example.org/hooks#", "#fragment"),
    ("https://example.org:8443/", "port (443), not port 8443"),
    ("https://example.org:80/", "port (443), not port 80"),
])
def test_malformed_and_unwanted_addresses_are_refused_in_plain_words(names: FakeDNS, url: str, message: str) -> None:
    with pytest.raises(outbound.Refused, match=message.replace("(", r"\(").replace(")", r"\)")):
        outbound.check(url, rules())


def test_plain_http_and_other_ports_only_when_allowed(names: FakeDNS) -> None:
    assert outbound.check("http://example.org/", outbound.Policy(allow_http=True)).port == 80
    assert outbound.check("https://example.org:8443/", rules(8443)).port == 8443


# ---------------------------------------------------------------- the settings

def test_allow_lists_are_honoured_in_their_own_profile_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOUND_DEV_ALLOW_HOSTS", "localhost, 127.0.0.1")
    monkeypatch.setenv("OUTBOUND_ALLOWED_PORTS", "443,8443")
    monkeypatch.setenv("DIVERSION_ENV", "development")
    development = load_config()
    assert development["OUTBOUND_ALLOWED_PORTS"] == (443, 8443)
    assert outbound.policy(development).allowed_hosts == {"localhost", "127.0.0.1"}
    monkeypatch.setenv("DIVERSION_ENV", "test")
    assert load_config()["OUTBOUND_DEV_ALLOW_HOSTS"] == ()  # the suite sets its own list
    monkeypatch.setenv("DIVERSION_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("PERSONAL_DATA_KEYS", "x")
    monkeypatch.setenv("PERSON_KEY_SECRET", "p" * 40)
    with pytest.raises(ConfigError, match="OUTBOUND_DEV_ALLOW_HOSTS"):
        load_config()
    monkeypatch.delenv("OUTBOUND_DEV_ALLOW_HOSTS")
    with pytest.raises(ConfigError, match="OUTBOUND_TEST_ALLOW_HOSTS"):
        load_config({"OUTBOUND_TEST_ALLOW_HOSTS": ("127.0.0.1",)})
    monkeypatch.setenv("OUTBOUND_ALLOWED_PORTS", "443,http")
    with pytest.raises(ConfigError, match="OUTBOUND_ALLOWED_PORTS"):
        load_config()
    # Even if a list reached another profile's settings, the rules would not read it.
    stray = {"ENV_NAME": "production", "OUTBOUND_TEST_ALLOW_HOSTS": ("127.0.0.1",),
             "OUTBOUND_DEV_ALLOW_HOSTS": ("127.0.0.1",)}
    assert outbound.policy(stray).allowed_hosts == frozenset()
    assert outbound.policy({**stray, "ENV_NAME": "test"}).allowed_hosts == {"127.0.0.1"}


def test_the_module_imports_no_feature_package() -> None:
    source = Path(outbound.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert {name for name in imported if name.startswith("diversion")} == {"diversion.errors"}


def test_the_readme_documents_the_settings() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## For provider integrators", 1)[1].split("\n## ", 1)[0]
    for setting in ("OUTBOUND_ALLOWED_PORTS", "OUTBOUND_DEV_ALLOW_HOSTS", "OUTBOUND_TEST_ALLOW_HOSTS",
                    "WEBHOOK_ALLOW_HTTP"):
        assert f"`{setting}" in section, setting


# ---------------------------------------------------------------- pinned, and TLS for the name

@dataclass
class TLSServer:
    """An HTTPS server on 127.0.0.1 with a certificate from a test CA, recording what it is sent."""

    port: int
    client_context: ssl.SSLContext
    requests: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    answer: int = 200


@pytest.fixture(scope="module")
def test_ca() -> trustme.CA:
    return trustme.CA()


@contextmanager
def tls_server(ca: trustme.CA, certified_for: str) -> Iterator[TLSServer]:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(certified_for).configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = TLSServer(httpd.server_address[1], client_context)
    server_context.sni_callback = lambda _sock, name, _ctx: state.server_names.append(name)  # type: ignore[assignment,func-returns-value]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            state.requests.append({"path": self.path, **dict(self.headers.items())})
            self.send_response(state.answer)
            if 300 <= state.answer < 400:
                self.send_header("Location", f"https://127.0.0.1:{state.port}/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: object) -> None:
            pass

    httpd.RequestHandlerClass = Handler
    httpd.socket = server_context.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_the_call_goes_to_the_checked_address_and_tls_verifies_the_name(
    names: FakeDNS, test_ca: trustme.CA,
) -> None:
    with tls_server(test_ca, HOOKS) as server:
        url = f"https://{HOOKS}:{server.port}/hooks?x=1"
        # The name answers 127.0.0.1 once, and 127.0.0.2 after: one lookup, and the
        # connection goes where it said.
        names.table[HOOKS] = in_turn(["127.0.0.1"], ["127.0.0.2"])
        names.asked.clear()
        with CONNECTIONS.recording() as seen:
            answer = outbound.request("POST", url, rules=rules(hosts=(HOOKS,)), timeout=5, body=b"{}",
                                      headers={"Content-Type": "application/json"}, read_limit=10,
                                      ssl_context=server.client_context)
        recorded = list(seen)
    assert answer == outbound.Answer(outbound.Result.ANSWERED, 200, b"ok")
    assert names.asked == [HOOKS]
    assert recorded == [("127.0.0.1", server.port)]
    assert server.server_names == [HOOKS]  # SNI: the name, not the address
    (sent,) = server.requests
    assert sent["Host"] == f"{HOOKS}:{server.port}"
    assert sent["path"] == "/hooks?x=1"


def test_a_certificate_for_another_name_is_refused(names: FakeDNS, test_ca: trustme.CA) -> None:
    with tls_server(test_ca, "someone-else.test") as server:
        answer = outbound.request("POST", f"https://{HOOKS}:{server.port}/", rules=rules(hosts=(HOOKS,)),
                                  timeout=5, body=b"{}", ssl_context=server.client_context)
    assert answer == outbound.Answer(outbound.Result.COULD_NOT_CONNECT)
    assert server.requests == []


def test_a_certificate_from_an_unknown_authority_is_refused(names: FakeDNS, test_ca: trustme.CA) -> None:
    with tls_server(test_ca, HOOKS) as server:
        answer = outbound.request("POST", f"https://{HOOKS}:{server.port}/", rules=rules(hosts=(HOOKS,)),
                                  timeout=5, body=b"{}")  # the system's trust, which knows no test CA
    assert answer.result is outbound.Result.COULD_NOT_CONNECT
    assert server.requests == []


def test_a_redirect_is_an_answer_never_followed(names: FakeDNS, test_ca: trustme.CA) -> None:
    with tls_server(test_ca, HOOKS) as server:
        server.answer = 307
        answer = outbound.request("POST", f"https://{HOOKS}:{server.port}/", rules=rules(hosts=(HOOKS,)),
                                  timeout=5, body=b"{}", ssl_context=server.client_context)
    assert (answer.result, answer.status) == (outbound.Result.ANSWERED, 307)
    assert len(server.requests) == 1


def test_a_name_that_turns_to_loopback_after_the_check_is_not_called(names: FakeDNS) -> None:
    """DNS rebinding: public when checked, loopback when called."""
    with listening() as (listener,):
        names.table["rebind.test"] = in_turn([PUBLIC], ["127.0.0.1"])
        url = f"https://rebind.test:{listener.port}/"
        policy = rules(listener.port)
        assert outbound.check(url, policy).addresses == (PUBLIC,)
        with CONNECTIONS.recording() as seen:
            answer = outbound.request("POST", url, rules=policy, timeout=2, body=b"{}")
        recorded = list(seen)
    assert answer == outbound.Answer(outbound.Result.NOT_ALLOWED)
    assert recorded == []
    assert listener.accepted == 0


def test_no_answer_in_time_is_timed_out(names: FakeDNS) -> None:
    with listening(hold=True) as (listener,):  # takes the connection, never answers
        answer = outbound.request("POST", f"https://{HOOKS}:{listener.port}/", rules=rules(hosts=(HOOKS,)),
                                  timeout=0.3, body=b"{}")
    assert answer == outbound.Answer(outbound.Result.TIMED_OUT)
