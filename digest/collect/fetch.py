"""Fetching over HTTP with httpx: bounded time, size and redirects, conditional
GET, compression, and a limit on concurrent requests per host. Every failure
becomes a message a user can act on; nothing here raises for a bad source.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from digest.config import Fetch

MAX_REDIRECTS = 5
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9,"
    " application/xml;q=0.9, text/xml;q=0.9, text/html;q=0.8, */*;q=0.5"
)


@dataclass(frozen=True)
class Fetched:
    """One answer: a body, a 304 (not_modified), or an error message."""

    url: str
    final_url: str = ""
    status: int = 0
    body: bytes = b""
    content_type: str = ""
    etag: str = ""
    last_modified: str = ""
    error: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class Fetcher:
    """A shared client plus per-host and overall limits, for one collection run."""

    def __init__(self, client: httpx.AsyncClient, settings: Fetch) -> None:
        self.client = client
        self.settings = settings
        self.overall = asyncio.Semaphore(settings.concurrency)
        self.hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.per_host)
        )

    async def get(
        self, url: str, etag: str = "", last_modified: str = "", public_only: bool = False
    ) -> Fetched:
        """GET url (conditionally, when validators are given), within every limit.
        `public_only`, for links a feed hands us, refuses private and local
        addresses, at every redirect too."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        host = (urlsplit(url).hostname or "").lower()
        async with self.overall, self.hosts[host]:
            try:
                async with asyncio.timeout(self.settings.timeout):
                    return await self._follow(url, headers, public_only)
            except (TimeoutError, httpx.TimeoutException):
                return Fetched(url, error=self._timeout_message())
            except httpx.TooManyRedirects:
                return Fetched(url, error=f"more than {MAX_REDIRECTS} redirects (a redirect loop?)")
            except httpx.HTTPError as e:
                return Fetched(url, error=describe_transport_error(e))

    async def _follow(self, url: str, headers: dict[str, str], public_only: bool) -> Fetched:
        if not public_only:
            async with self.client.stream("GET", url, headers=headers) as response:
                return await self._answer(url, response)
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            if not await is_public(current):
                return Fetched(url, current, error=PRIVATE)
            async with self.client.stream(
                "GET", current, headers=headers, follow_redirects=False
            ) as response:
                if response.next_request is None:
                    return await self._answer(url, response)
                current = str(response.next_request.url)
        raise httpx.TooManyRedirects("too many redirects", request=response.request)

    async def _answer(self, url: str, response: httpx.Response) -> Fetched:
        """The response as a Fetched: its body within the size cap, or why not."""
        final = str(response.url)
        if response.status_code == 304:
            await response.aread()  # empty; read so the connection is reused
            return Fetched(url, final, 304)
        if response.status_code >= 400:
            return Fetched(url, final, response.status_code, error=status_message(response))
        body = await self._read_capped(response)
        if body is None:
            cap = self.settings.max_bytes
            message = f"the answer is larger than {cap:,} bytes (DIGEST_FETCH_MAX_BYTES)"
            return Fetched(url, final, response.status_code, error=message)
        return Fetched(
            url,
            final,
            response.status_code,
            body,
            response.headers.get("content-type", ""),
            response.headers.get("etag", ""),
            response.headers.get("last-modified", ""),
        )

    async def _read_capped(self, response: httpx.Response) -> bytes | None:
        # Counted after decompression, so a small gzip bomb is cut off too.
        cap = self.settings.max_bytes
        declared = response.headers.get("content-length", "")
        if (
            declared.isdigit()
            and int(declared) > cap
            and not response.headers.get("content-encoding")
        ):
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _timeout_message(self) -> str:
        return (
            f"no complete answer within {self.settings.timeout:g} s; the server is slow"
            " or down (raise DIGEST_FETCH_TIMEOUT if it is only slow)"
        )


PRIVATE = (
    "points to a private or local network address; digest does not follow a public"
    " feed's links there"
)


async def is_public(url: str) -> bool:
    """True unless the URL's host is, or resolves to, a private, loopback,
    link-local or reserved address. Unresolvable hosts count as public: their
    fetch fails on its own, with its own message."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError:
            return True
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
    return all(address.is_global for address in addresses)


@asynccontextmanager
async def fetcher(settings: Fetch) -> AsyncIterator[Fetcher]:
    """A Fetcher whose client is closed when the run ends. TLS is always verified."""
    limits = httpx.Limits(
        max_connections=settings.concurrency,
        max_keepalive_connections=settings.concurrency,
    )
    async with httpx.AsyncClient(
        headers={"User-Agent": settings.user_agent, "Accept": ACCEPT},
        timeout=httpx.Timeout(settings.timeout),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        limits=limits,
    ) as client:
        yield Fetcher(client, settings)


def status_message(response: httpx.Response) -> str:
    code = response.status_code
    if code == 404:
        return "not found (HTTP 404); the address may have moved: check it in a browser"
    if code == 410:
        return "gone (HTTP 410); the publisher removed it: remove this source"
    if code in (401, 403):
        return f"refused (HTTP {code}); the server does not let digest read it"
    if code == 429:
        return "too many requests (HTTP 429); the server asks us to slow down"
    if code >= 500:
        return f"server error (HTTP {code}); it is the server's problem, tried again next run"
    return f"HTTP {code} {response.reason_phrase}; expected 200"


def describe_transport_error(error: httpx.HTTPError) -> str:
    """A sentence for a transport failure; TLS problems are named as such."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                f"TLS certificate not valid ({cause.verify_message}); digest never skips"
                " verification: the site must fix its certificate"
            )
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed ({cause.reason or cause}); the site's HTTPS setup is broken"
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, httpx.RemoteProtocolError):
        return f"the server broke off the answer (truncated or malformed HTTP): {error}"
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect ({error}); check the address and that the site is up"
    if isinstance(error, httpx.UnsupportedProtocol):
        return "only http:// and https:// addresses can be fetched"
    return f"{type(error).__name__}: {error}"
