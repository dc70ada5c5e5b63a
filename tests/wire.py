"""What the app really sends PostgreSQL: a proxy on the wire that writes down every statement.

SQLAlchemy's events see the statements SQLAlchemy runs, but not a pool's
ping, a driver's own ``DEALLOCATE`` or what a listener sends on the raw
connection. This proxy sits between the app and the server, forwards every
byte both ways untouched, and reads the frontend side of the protocol: each
simple query (``Q``) and each execution of an extended-protocol portal
(``E``, with the text of the statement behind it) is a statement; each
``Q`` and ``Sync`` is a round trip. Connect through it without TLS
(``sslmode=disable``), which is what ``Wire.url`` gives.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

_SPECIAL_REQUESTS = (80877103, 80877104)  # SSLRequest, GSSENCRequest: answered with one byte


@dataclass
class Wire:
    """Statements and round trips seen since the last ``clear``."""

    url: str
    statements: list[str] = field(default_factory=list)
    round_trips: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.statements.clear()
            self.round_trips = 0

    def work(self) -> list[str]:
        """The statements seen, but those that begin and end transactions."""
        with self.lock:
            return [s for s in self.statements
                    if (s.split(None, 1) or [""])[0].rstrip(";").upper() not in ("BEGIN", "COMMIT", "ROLLBACK")]


def _read_exactly(connection: socket.socket, size: int) -> bytes:
    chunks = b""
    while len(chunks) < size:
        chunk = connection.recv(size - len(chunks))
        if not chunk:
            raise EOFError
        chunks += chunk
    return chunks


def _cstring(payload: bytes, start: int) -> tuple[str, int]:
    end = payload.index(b"\0", start)
    return payload[start:end].decode(), end + 1


class _Frontend:
    """Reads one client's messages, notes them in ``wire``, and sends them on to the server."""

    def __init__(self, wire: Wire, client: socket.socket, server: socket.socket) -> None:
        self.wire, self.client, self.server = wire, client, server
        self.prepared: dict[str, str] = {}
        self.portals: dict[str, str] = {}

    def run(self) -> None:
        try:
            while True:  # the untyped opening messages
                head = _read_exactly(self.client, 8)
                length, code = struct.unpack("!ii", head)
                self.server.sendall(head + _read_exactly(self.client, length - 8))
                if code not in _SPECIAL_REQUESTS:
                    break
            while True:
                head = _read_exactly(self.client, 5)
                kind, length = head[:1], struct.unpack("!i", head[1:])[0]
                payload = _read_exactly(self.client, length - 4)
                self._note(kind, payload)
                self.server.sendall(head + payload)
        except (EOFError, OSError):
            pass
        finally:
            _close(self.server)

    def _note(self, kind: bytes, payload: bytes) -> None:
        if kind == b"P":
            name, at = _cstring(payload, 0)
            self.prepared[name], _ = _cstring(payload, at)
        elif kind == b"B":
            portal, at = _cstring(payload, 0)
            statement, _ = _cstring(payload, at)
            self.portals[portal] = self.prepared.get(statement, "?")
        elif kind in (b"E", b"Q", b"S"):
            with self.wire.lock:
                if kind == b"E":
                    self.wire.statements.append(self.portals.get(_cstring(payload, 0)[0], "?"))
                elif kind == b"Q":
                    self.wire.statements.append(_cstring(payload, 0)[0])
                    self.wire.round_trips += 1
                else:
                    self.wire.round_trips += 1


def _close(connection: socket.socket) -> None:
    with suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()


def _backend(server: socket.socket, client: socket.socket) -> None:
    try:
        while chunk := server.recv(65536):
            client.sendall(chunk)
    except OSError:
        pass
    finally:
        _close(client)


@contextmanager
def wire_to(database_url: str) -> Iterator[Wire]:
    """A proxy to the server of ``database_url``; yields the ``Wire`` whose ``url`` goes through it."""
    target = make_url(database_url)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    query = {**target.query, "sslmode": "disable", "gssencmode": "disable"}
    wire = Wire(target.set(host="127.0.0.1", port=port, query=query).render_as_string(hide_password=False))
    open_sockets: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection((target.host or "127.0.0.1", target.port or 5432))
            open_sockets.extend((client, server))
            threading.Thread(target=_Frontend(wire, client, server).run, daemon=True).start()
            threading.Thread(target=_backend, args=(server, client), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield wire
    finally:
        listener.close()
        for connection in open_sockets:
            _close(connection)
