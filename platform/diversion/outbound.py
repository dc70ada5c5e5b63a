"""Every outward HTTP call of the platform: where it may go, and the one way to make it.

Providers' webhooks call addresses that a customer typed in, and so will
other calls (single sign-on discovery, key sets, tokens; payments). Left to
a plain HTTP client, such an address can reach what only the platform can
reach: its database port on 127.0.0.1, the cloud's metadata service on
169.254.169.254, the private network behind it. So every outward call goes
through here, and here alone are the rules:

- **Scheme.** ``https`` only; plain ``http`` only where the caller's policy
  allows it (development).
- **The address as written.** No user name or password, no ``#fragment``,
  a well-formed host (brackets closed, an ASCII or IDNA name) and port.
- **Port.** 443 (and 80 for allowed plain http), plus the ports of the
  ``OUTBOUND_ALLOWED_PORTS`` setting.
- **Where it leads.** Every address of the host must be a public unicast
  address: not loopback, private, link-local, shared (100.64/10),
  multicast, reserved, documentation or unspecified, in IPv4 or IPv6; no
  IPv6 form that carries an IPv4 address (mapped, compatible, translated,
  NAT64, 6to4, Teredo), since a translator on the platform's own network
  could turn it into any IPv4 address, inside included. A host written as a
  number is read as the C library reads it (``2130706433``, ``0x7f.1``,
  ``0177.0.0.1`` are all 127.0.0.1). A name is refused when *any* of its
  addresses is.
- **Redirects** are never followed: a 3xx is an answer like any other.

The rules are checked when an address is saved (``check``, for a clear
message on the form) and again at each call, after resolving the name
afresh; the connection then goes to an address that was just checked
(*pinned*), so a name that changes its answer between the check and the
connection (DNS rebinding) cannot send it elsewhere. TLS still verifies
the certificate for the host *name* (SNI and the hostname check use the
name, not the address), and the ``Host`` header carries the name.

Names resolve through ``resolver`` (``socket.getaddrinfo`` by default),
which tests replace: there is no DNS where they run. Hosts on an
allow-list are exempt from the address and port rules (never from the
others): ``OUTBOUND_TEST_ALLOW_HOSTS`` under the test profile only, and
``OUTBOUND_DEV_ALLOW_HOSTS`` under the development profile only (refused
in production by ``config``), for a local receiver.

A call's result is one of four kinds (``Result``) and a status code; the
low-level reason is logged for operators and never returned, so that what a
customer is shown cannot tell an open port from a closed one.

This module imports no feature package.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from diversion.errors import FieldError

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = {"https": 443, "http": 80}
USER_AGENT = "diversion/1"

# Addresses no outward call may reach, besides what Python itself counts as
# not global. Written out because Python's own lists change between versions
# (and call multicast global).
_REFUSED_V4 = tuple(ipaddress.IPv4Network(network) for network in (
    "0.0.0.0/8",  # "this network": 0.0.0.0 reaches the local host
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # private
    "100.64.0.0/10",  # shared address space (carrier-grade NAT)
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local, where cloud metadata services answer
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",  # documentation
    "192.88.99.0/24",  # 6to4 relays
    "198.18.0.0/15",  # benchmarking
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and the broadcast address
))
_REFUSED_V6 = tuple(ipaddress.IPv6Network(network) for network in (
    "::/128", "::1/128",  # unspecified, loopback
    "::/96",  # IPv4-compatible: carries an IPv4 address
    "::ffff:0:0/96",  # IPv4-mapped: a socket connects to the IPv4 address inside
    "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
    "64:ff9b::/96", "64:ff9b:1::/48",  # NAT64: a translator connects to the IPv4 address inside
    "100::/64",  # discard
    "2001::/23",  # IETF protocol assignments, Teredo (2001::/32, carries an IPv4 address) among them
    "2001:db8::/32", "3fff::/20",  # documentation
    "2002::/16",  # 6to4: carries an IPv4 address
    "5f00::/16",  # segment routing
    "fc00::/7",  # unique local (private)
    "fe80::/10", "fec0::/10",  # link-local, site-local
    "ff00::/8",  # multicast
))


class Refused(FieldError):  # noqa: N818 - reads as the condition it reports
    """An address outward calls may not go to; ``message`` says why in plain words."""

    def __init__(self, message: str | LazyString, field: str = "url") -> None:
        super().__init__(field, str(message))


class Result(enum.StrEnum):
    """How an outward call ended."""

    ANSWERED = "answered"  # a response came back (any status, redirects included)
    COULD_NOT_CONNECT = "could_not_connect"  # refused, unreachable, TLS failed, cut off
    TIMED_OUT = "timed_out"  # no connection or no answer in time
    NOT_ALLOWED = "not_allowed"  # the address failed the rules when the call was made: nothing was sent


@dataclass(frozen=True)
class Answer:
    result: Result
    status: int | None = None
    body: bytes = b""


@dataclass(frozen=True)
class Policy:
    """Which addresses a caller may reach beyond the rules' defaults."""

    allow_http: bool = False
    ports: frozenset[int] = frozenset({443})
    allowed_hosts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Destination:
    """A checked address: where to connect, and what to say when connected."""

    scheme: str
    host: str  # the ASCII name (or the address, if written as one): SNI, certificate check, Host header
    port: int
    target: str  # path and query
    addresses: tuple[str, ...]  # checked, to connect to in this order

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses, from the system's resolver."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


# The one resolver of outward calls; tests put their own here (they have no DNS).
resolver: Callable[[str, int], Iterable[str]] = system_resolver


def host_key(host: str) -> str:
    """A host as allow-lists compare it: lower case, no trailing dot, no brackets, addresses in one form."""
    host = host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def policy(config: Mapping[str, Any], *, allow_http: bool = False) -> Policy:
    """The policy the settings give: the ports allowed, and the allow-list of the
    profile in force (the test list under ``test``, the development list under
    ``development``, none otherwise)."""
    env = config.get("ENV_NAME")
    hosts: Iterable[str] = ()
    if env == "test":
        hosts = config.get("OUTBOUND_TEST_ALLOW_HOSTS") or ()
    elif env == "development":
        hosts = config.get("OUTBOUND_DEV_ALLOW_HOSTS") or ()
    ports = frozenset(int(port) for port in config.get("OUTBOUND_ALLOWED_PORTS") or (443,))
    return Policy(allow_http=allow_http, ports=ports, allowed_hosts=frozenset(host_key(h) for h in hosts))


def refused_address(address: IPAddress) -> bool:
    """Whether an address is one no outward call may reach (see the module's rules)."""
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return True  # a zone belongs to a local link
    networks: tuple[ipaddress.IPv4Network, ...] | tuple[ipaddress.IPv6Network, ...] = (
        _REFUSED_V4 if isinstance(address, ipaddress.IPv4Address) else _REFUSED_V6)
    return (any(address in network for network in networks) or not address.is_global or address.is_private
            or address.is_loopback or address.is_link_local or address.is_multicast or address.is_reserved
            or address.is_unspecified)


def literal_address(host: str) -> IPAddress | None:
    """The address a host stands for when written as one, read as the C library
    reads it (so ``2130706433``, ``0x7f.1`` and ``0177.0.0.1`` are 127.0.0.1); None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not host or not all(ch in "0123456789abcdefx." for ch in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


MALFORMED = _l("This is not a web address we can use: check the host name, the brackets around an IPv6 "
               "address and the port.")
NOT_PUBLIC_ADDRESS = _l("This address is not on the public internet (it is a local, private or reserved address): "
                        "give the public address of your endpoint.")
NOT_PUBLIC_NAME = _l("This host name does not lead to public internet addresses only: give the public address "
                     "of your endpoint.")
UNKNOWN_NAME = _l("We could not find this host name: check it is spelt right and that it is published "
                  "on the public internet.")


def _parse(url: str, rules: Policy) -> tuple[str, str, int, str]:
    """Scheme, ASCII host, port and target of a URL the rules accept as written."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise Refused(_("The address cannot contain spaces or control characters."))
    schemes = ("https", "http") if rules.allow_http else ("https",)
    try:
        parts = urlsplit(url)
        port = parts.port
        hostname = parts.hostname
    except ValueError:
        raise Refused(MALFORMED) from None
    if parts.scheme.lower() not in schemes or not hostname:
        raise Refused(_("The address must be a full https:// address, such as https://example.org/diversion/webhooks."))
    if "@" in parts.netloc or "#" in url:
        raise Refused(_("The address cannot carry a user name, password or #fragment."))
    scheme = parts.scheme.lower()
    if port is None:
        if parts.netloc.endswith(":"):
            raise Refused(MALFORMED)
        port = DEFAULT_PORTS[scheme]
    host = hostname.rstrip(".")  # the name with its root dot is the same name
    try:
        host = host.encode("idna").decode("ascii").lower() if not host.isascii() else host
    except UnicodeError:
        raise Refused(MALFORMED) from None
    address = literal_address(host)
    if address is None and (not host or not all(ch.isalnum() or ch in "-._" for ch in host)):
        raise Refused(MALFORMED)
    if "[" in parts.netloc and not isinstance(address, ipaddress.IPv6Address):
        raise Refused(MALFORMED)  # brackets hold an IPv6 address and nothing else
    if address is not None:
        host = str(address)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port, target


def _addresses(host: str, port: int) -> tuple[IPAddress, ...]:
    """Every address of a host, in the resolver's order, each once."""
    address = literal_address(host)
    if address is not None:
        return (address,)
    try:
        found = [ipaddress.ip_address(str(item)) for item in resolver(host, port)]
    except (OSError, UnicodeError, ValueError):  # gaierror is an OSError
        return ()
    return tuple(dict.fromkeys(found))


def check(url: str, rules: Policy) -> Destination:
    """Where a call to ``url`` would go, resolved now. Refuses (``Refused``) an
    address the rules do not allow: see the module's docstring."""
    scheme, host, port, target = _parse(url, rules)
    allow_listed = host_key(host) in rules.allowed_hosts
    allowed_ports = rules.ports | ({80} if scheme == "http" else set())
    if port not in allowed_ports and not allow_listed:
        ports = ", ".join(str(p) for p in sorted(allowed_ports))
        raise Refused(_("The address must use the standard port (%(ports)s), not port %(port)s.",
                        ports=ports, port=port))
    found = _addresses(host, port)
    is_literal = literal_address(host) is not None
    if not found:  # the name leads nowhere (it does not exist, or the lookup failed)
        raise Refused(UNKNOWN_NAME)
    if not allow_listed and any(refused_address(address) for address in found):
        raise Refused(NOT_PUBLIC_ADDRESS if is_literal else NOT_PUBLIC_NAME)
    return Destination(scheme, host, port, target, tuple(str(address) for address in found))


def _pool(destination: Destination, address: str, timeout: urllib3.Timeout,
          ssl_context: ssl.SSLContext | None) -> urllib3.HTTPConnectionPool:
    if destination.scheme == "http":
        return urllib3.HTTPConnectionPool(address, destination.port, timeout=timeout, maxsize=1, retries=False)
    return urllib3.HTTPSConnectionPool(
        address, destination.port, timeout=timeout, maxsize=1, retries=False, cert_reqs="CERT_REQUIRED",
        ssl_context=ssl_context, server_hostname=destination.host, assert_hostname=destination.host)


def request(method: str, url: str, *, rules: Policy, timeout: float, body: bytes | None = None,
            headers: Mapping[str, str] | None = None, read_limit: int = 0,
            ssl_context: ssl.SSLContext | None = None) -> Answer:
    """Make one outward call, checked and pinned (see the module's docstring).

    Checks ``url`` again, resolving its name now, and connects only to the
    addresses just checked, in turn until one takes the connection; never
    follows a redirect nor retries once the request is sent. ``timeout``
    bounds the whole call. Reads at most ``read_limit`` bytes of the
    answer's body (none by default). Never raises for the network: the
    result says how it ended, and the reason is logged.
    """
    shown = url.split("?", 1)[0]  # a query may carry a customer's own token: not in the log
    try:
        destination = check(url, rules)
    except Refused as refusal:
        log.warning("outbound %s %s: not sent, the address is not allowed now (%s)", method, shown, refusal.message)
        return Answer(Result.NOT_ALLOWED)
    sent_headers = {"User-Agent": USER_AGENT, **(headers or {}), "Host": destination.host_header}
    deadline = time.monotonic() + timeout
    outcome = Answer(Result.COULD_NOT_CONNECT)
    for address in destination.addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            return Answer(Result.TIMED_OUT)
        pool = _pool(destination, address, urllib3.Timeout(total=left), ssl_context)
        try:
            response = pool.urlopen(method, destination.target, body=body, headers=sent_headers, redirect=False,
                                    retries=False, assert_same_host=False, preload_content=False)
            try:
                data = response.read(read_limit) if read_limit else b""
            finally:
                response.release_conn()
            return Answer(Result.ANSWERED, response.status, data)
        except urllib3.exceptions.NewConnectionError as error:  # a subclass of the timeout error, but not one
            log.warning("outbound %s %s via %s: could not connect (%s)", method, shown, address, error)
            outcome = Answer(Result.COULD_NOT_CONNECT)
        except urllib3.exceptions.ConnectTimeoutError as error:
            log.warning("outbound %s %s via %s: no connection in time (%s)", method, shown, address, error)
            outcome = Answer(Result.TIMED_OUT)
        except urllib3.exceptions.ReadTimeoutError as error:  # sent: never sent again
            log.warning("outbound %s %s via %s: no answer in time (%s)", method, shown, address, error)
            return Answer(Result.TIMED_OUT)
        except (urllib3.exceptions.HTTPError, OSError) as error:  # TLS refused, cut off: possibly sent
            log.warning("outbound %s %s via %s: failed (%s: %s)", method, shown, address, type(error).__name__,
                        error)
            return Answer(Result.COULD_NOT_CONNECT)
        finally:
            pool.close()
    return outcome
