"""The HTTP plumbing of `digest serve`: a request's parts, a response, and the
headers every page carries. Plain WSGI; waitress runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from digest.deliver.message import header_safe

MAX_BODY = 64 * 1024
StartResponse = Callable[[str, list[tuple[str, str]]], Any]

BASE_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    # Links carry tokens: never leak them to another site through Referer.
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# The web version is the email's own HTML: inline styles, remote images, no scripts.
ARCHIVE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline' https:; img-src https: data:; "
    "font-src https:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    csp: str = PAGE_CSP
    cache: str = "no-store"


class BodyTooLarge(Exception):
    """A request body over MAX_BODY: answered with 413."""


class Request:
    """What a handler needs of a WSGI environ: method, path, query and form."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        self.path = str(environ.get("PATH_INFO") or "/")
        self.query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        self.environ = environ

    def arg(self, name: str) -> str:
        values = self.query.get(name) or [""]
        return values[0]

    def body(self) -> bytes:
        try:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY:
            raise BodyTooLarge
        return bytes(self.environ["wsgi.input"].read(length)) if length > 0 else b""

    def form(self) -> dict[str, list[str]]:
        """Fields of a urlencoded or multipart/form-data body (both are RFC 8058's)."""
        content_type = str(self.environ.get("CONTENT_TYPE", ""))
        kind = content_type.split(";")[0].strip().lower()
        raw = self.body()
        # Some clients send the one-click body with no Content-Type at all.
        if kind in ("application/x-www-form-urlencoded", ""):
            return parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        if kind != "multipart/form-data":
            return {}
        head = f"Content-Type: {header_safe(content_type)}\r\n\r\n".encode()
        fields: dict[str, list[str]] = {}
        for part in message_from_bytes(head + raw).walk():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields.setdefault(name, []).append(payload.decode("utf-8", "replace"))
        return fields


def status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"
