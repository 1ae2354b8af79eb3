"""Loopback HTTP servers over a channel tree: plain, password- or token-protected, and faulty.

Each listens on 127.0.0.1 only, on a free port, in a daemon thread, and stops
when the ``with`` block ends. No request leaves the machine. ``serve`` speaks
HTTPS with a ``support.tls`` certificate and can log every request;
``connect_proxy`` is an HTTP CONNECT proxy with Basic auth that maps host names
only it knows to loopback servers; ``flaky_handler`` fails in the ways a real
network does (HTTP 500, a reset mid-body, a short body with 200).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import select
import socket
import socketserver
import ssl
import struct
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from support.tls import TestCA


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def basic_auth_handler(user: str, password: str) -> type[QuietHandler]:
    """Serves files only to requests carrying HTTP Basic auth for ``user:password``."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(QuietHandler):
        def _allowed(self) -> bool:
            if self.headers.get("Authorization") == expected:
                return True
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="mirror"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False

        def do_GET(self) -> None:
            if self._allowed():
                super().do_GET()

        def do_HEAD(self) -> None:
            if self._allowed():
                super().do_HEAD()

    return Handler


def token_handler(token: str) -> type[QuietHandler]:
    """Serves ``/t/TOKEN/PATH`` as ``PATH`` (anaconda.org's token URLs); 403 for anything else."""
    prefix = f"/t/{token}/"

    class Handler(QuietHandler):
        def _strip(self) -> bool:
            if self.path.startswith(prefix):
                self.path = "/" + self.path[len(prefix) :]
                return True
            self.send_error(403)
            return False

        def do_GET(self) -> None:
            if self._strip():
                super().do_GET()

        def do_HEAD(self) -> None:
            if self._strip():
                super().do_HEAD()

    return Handler


def truncating_handler(suffix: str, *, chunked: bool) -> type[QuietHandler]:
    """Files ending in ``suffix`` are cut off after half their bytes, then the connection
    closes: with the full Content-Length announced, or inside a chunked body."""

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if not self.path.endswith(suffix):
                super().do_GET()
                return
            with open(self.translate_path(self.path), "rb") as stream:
                data = stream.read()
            half = data[: len(data) // 2]
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
            else:
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(half)
            self.wfile.flush()
            self.close_connection = True

    return Handler


def logging_handler(base: type[QuietHandler], log: list[tuple[str, str]]) -> type[QuietHandler]:
    """``base`` that appends (method, path) of every request to ``log``."""

    class Handler(base):  # type: ignore[valid-type,misc]
        def do_GET(self) -> None:
            log.append(("GET", self.path))
            super().do_GET()

        def do_HEAD(self) -> None:
            log.append(("HEAD", self.path))
            super().do_HEAD()

    return Handler


def flaky_handler(suffix: str, faults: list[str]) -> type[QuietHandler]:
    """Requests for files ending in ``suffix`` take the next fault from ``faults`` ("500",
    "reset": the connection reset half-way through the body, "truncate": half the body
    with 200 and the full Content-Length); once ``faults`` is empty they are served.
    A fault named "always500" stays."""

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if not self.path.endswith(suffix) or not faults:
                super().do_GET()
                return
            fault = faults[0] if faults[0] == "always500" else faults.pop(0)
            if fault in ("500", "always500"):
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with open(self.translate_path(self.path), "rb") as stream:
                data = stream.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            if fault == "reset":  # RST instead of FIN
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            self.close_connection = True

    return Handler


@contextlib.contextmanager
def serve(
    root: Path, handler: type[QuietHandler] = QuietHandler, *, tls: TestCA | None = None
) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` (``https://`` with ``tls``) serving ``root`` with
    ``handler`` until the block ends."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    server.daemon_threads = True
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert, tls.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def connect_proxy(
    user: str, password: str, hosts: dict[str, str], log: list[str] | None = None
) -> Iterator[str]:
    """``http://127.0.0.1:PORT``: an HTTP CONNECT proxy that asks for Basic auth and
    tunnels only to ``hosts`` ({"name:port": "127.0.0.1:port"}), names no resolver
    knows. ``log`` gets each CONNECT target, with " 407" when refused."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    seen = log if log is not None else []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            request = self.rfile.readline(65536).decode("latin-1").split()
            headers = {}
            while (line := self.rfile.readline(65536)) not in (b"\r\n", b"\n", b""):
                key, _, value = line.decode("latin-1").partition(":")
                headers[key.strip().lower()] = value.strip()
            if len(request) < 2 or request[0] != "CONNECT":
                self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            if headers.get("proxy-authorization") != expected:
                seen.append(f"{request[1]} 407")
                self.wfile.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="proxy"\r\nContent-Length: 0\r\n\r\n'
                )
                return
            seen.append(request[1])
            target = hosts.get(request[1])
            if target is None:
                self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=10) as upstream:
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                _pipe(self.connection, upstream)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes or 10 s pass without any."""
    while True:
        ready, _, _ = select.select([a, b], [], [], 10)
        if not ready:
            return
        for source in ready:
            data = source.recv(65536)
            if not data:
                return
            (b if source is a else a).sendall(data)


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A 127.0.0.1 port that refuses connections for as long as the block runs.

    The socket is bound but never listens: a connection gets a reset at once, and no
    other process can take the port in the meantime (a closed probe socket would free it).
    """
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]
