"""A real HTTP server on 127.0.0.1 (port 0) for source tests: each path has a
route saying what to answer, including 304s, redirects, slow, truncated and
broken answers. Every request is recorded for assertions."""

from __future__ import annotations

import gzip
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Route:
    """What to answer for one path."""

    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    etag: str = ""
    last_modified: str = ""
    location: str = ""
    delay: float = 0.0
    truncate: bool = False
    broken: bool = False
    gzip: bool = False
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms stalls on keep-alive answers

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.active += 1
            self.server.max_active = max(self.server.max_active, self.server.active)
        try:
            self._get()
        finally:
            with self.server.lock:
                self.server.active -= 1

    def _get(self) -> None:
        self.server.requests.append((self.path, dict(self.headers.items())))
        route = self.server.routes.get(self.path.split("?")[0])
        if route is None:
            return self._answer(404, b"not here", "text/plain")
        if route.delay:
            time.sleep(route.delay)
        if route.broken:
            self.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")
            self.close_connection = True
            return None
        if route.location:
            status = route.status if 300 <= route.status < 400 else 302
            return self._answer(status, b"", "text/plain", Location=route.location)
        if self._fresh(route):
            return self._answer(304, b"", "", ETag=route.etag)
        return self._send_route(route)

    def _fresh(self, route: Route) -> bool:
        match = route.etag and self.headers.get("If-None-Match") == route.etag
        since = route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified
        return bool(match or since)

    def _send_route(self, route: Route) -> None:
        body = gzip.compress(route.body) if route.gzip else route.body
        extra = dict(route.headers)
        if route.gzip:
            extra["Content-Encoding"] = "gzip"
        if route.etag:
            extra["ETag"] = route.etag
        if route.last_modified:
            extra["Last-Modified"] = route.last_modified
        if route.truncate:
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(body) * 2))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return
        self._answer(route.status, body, route.content_type, **extra)

    def _answer(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64  # the default 5 makes concurrent connects wait 1 s
    routes: dict[str, Route]
    requests: list[tuple[str, dict[str, str]]]
    lock = threading.Lock()
    active = 0
    max_active = 0


class FeedServer:
    """`with FeedServer() as server: server.routes["/feed"] = Route(...)`."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.scheme = "https" if tls else "http"
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.routes = {}
        self.httpd.requests = []
        self.httpd.lock = threading.Lock()
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def routes(self) -> dict[str, Route]:
        return self.httpd.routes

    @property
    def requests(self) -> list[tuple[str, dict[str, str]]]:
        return self.httpd.requests

    @property
    def max_active(self) -> int:
        """The most requests the server was answering at the same moment."""
        return self.httpd.max_active

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def requested(self, path: str) -> list[dict[str, str]]:
        return [headers for p, headers in self.requests if p == path]

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
