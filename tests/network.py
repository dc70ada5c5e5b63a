"""The network as the tests see it: names they resolve themselves, and every connection made.

There is no DNS where the tests run, so outward calls resolve names through
``DNS`` (put in ``diversion.outbound.resolver`` by the suite's conftest): a
table the tests write. ``example.org`` and its like lead to ``PUBLIC``, an
address the outbound rules accept and which nothing here ever connects to.

``CONNECTIONS`` is an audit hook on ``socket.connect``, installed once per
test process (audit hooks cannot be removed). It records connections only
while a test switches it on (``CONNECTIONS.recording()``), and at all times
refuses a connection to anything but this machine's loopback, so that a
regression cannot make the suite send anything off the machine.

``Listener`` is a real socket accepting on 127.0.0.1, to show that nothing
reached it.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

PUBLIC = "93.184.215.14"  # public: allowed by the rules, never connected to (the hook refuses it)
NAMES = ("example.org", "example.com", "www.example.org", "charity.example")

Answer = Sequence[str] | Callable[[], Sequence[str]]


class FakeDNS:
    """A resolver with the outbound resolver's signature, answering from a table."""

    def __init__(self, table: dict[str, Answer]) -> None:
        self.base = dict(table)
        self.table = dict(table)
        self.asked: list[str] = []

    def __call__(self, host: str, _port: int) -> list[str]:
        self.asked.append(host)
        answer = self.table.get(host.lower().rstrip("."))
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(answer() if callable(answer) else answer)

    def reset(self) -> None:
        self.table = dict(self.base)
        self.asked = []


def in_turn(*answers: Sequence[str]) -> Callable[[], Sequence[str]]:
    """An answer that changes: each lookup gets the next, then the last again (DNS rebinding)."""
    queue = list(answers)

    def next_answer() -> Sequence[str]:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return next_answer


DNS = FakeDNS({name: [PUBLIC] for name in NAMES})


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@dataclass
class Connections:
    """Every ``socket.connect`` of this process while recording, as (host, port)."""

    recording_on: bool = False
    seen: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, event: str, args: tuple[object, ...]) -> None:
        if event != "socket.connect":
            return
        address = args[1]
        if not isinstance(address, tuple):  # a Unix socket: on this machine by definition
            return
        host, port = str(address[0]), int(address[1])
        if self.recording_on:
            with self.lock:
                self.seen.append((host, port))
        if not _loopback(host):
            raise PermissionError(f"The tests connect to nothing off this machine (asked for {host}:{port}).")

    @contextmanager
    def recording(self) -> Iterator[list[tuple[str, int]]]:
        with self.lock:
            self.seen = []
            self.recording_on = True
        try:
            yield self.seen
        finally:
            self.recording_on = False


CONNECTIONS = Connections()
if not getattr(sys, "_diversion_connect_hook", False):
    sys.addaudithook(CONNECTIONS.hook)
    sys._diversion_connect_hook = True  # type: ignore[attr-defined]  # once per process


class Listener:
    """A socket accepting connections on 127.0.0.1 (or ::1), counting them; it never answers.

    It closes each connection at once, or with ``hold`` keeps it open, silent, until closed itself.
    """

    def __init__(self, host: str = "127.0.0.1", *, hold: bool = False) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.bind((host, 0))
        self.socket.listen(16)
        self.socket.settimeout(0.05)
        self.port: int = self.socket.getsockname()[1]
        self.accepted = 0
        self.hold = hold
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _peer = self.socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.hold:
                self.held.append(connection)
            else:
                connection.close()

    def close(self) -> None:
        """Stop accepting, counting what still waits in the backlog too."""
        self._stop.set()
        self._thread.join()
        self.socket.setblocking(False)
        while True:
            try:
                connection, _peer = self.socket.accept()
            except OSError:  # BlockingIOError: nothing more waits
                break
            self.accepted += 1
            connection.close()
        for connection in self.held:
            connection.close()
        self.socket.close()


@contextmanager
def listening(hosts: Iterable[str] = ("127.0.0.1",), *, hold: bool = False) -> Iterator[list[Listener]]:
    listeners = [Listener(host, hold=hold) for host in hosts]
    try:
        yield listeners
    finally:
        for listener in listeners:
            listener.close()


def ipv6_loopback() -> bool:
    """Whether ::1 can be listened on here."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True
