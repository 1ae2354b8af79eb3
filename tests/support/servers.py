"""Loopback HTTP servers over a channel tree: plain, password- or token-protected, and faulty.

Each listens on 127.0.0.1 only, on a free port, in a daemon thread, and stops
when the ``with`` block ends. No request leaves the machine.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


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


@contextlib.contextmanager
def serve(root: Path, handler: type[QuietHandler] = QuietHandler) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` serving ``root`` with ``handler`` until the block ends."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


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
