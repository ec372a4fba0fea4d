"""Fetching over HTTP with httpx: bounded time, size and redirects, conditional
GET, compression, and a limit on concurrent requests per host. Every failure
becomes a message a user can act on; nothing here raises for a bad source.

Decompression is ours, bounded while it runs (a 2 KB gzip bomb is cut at the
size cap, never inflated first); links a feed hands us are fetched from the
very address that passed the public-address check (no DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

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
                return await self._answer(url, response, str(response.url))
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            address = await public_address(urlsplit(current).hostname or "")
            if address is None:
                return Fetched(url, current, error=PRIVATE)
            # Connect to the address that was checked, not to whatever a second
            # look-up answers; the certificate is verified for the host name.
            pinned, extra = _pinned(current, address)
            async with self.client.stream(
                "GET",
                pinned,
                headers={**headers, **extra},
                follow_redirects=False,
                extensions={"sni_hostname": urlsplit(current).hostname or ""},
            ) as response:
                if not response.has_redirect_location:
                    return await self._answer(url, response, current)
                current = urljoin(current, response.headers["location"])
        raise httpx.TooManyRedirects("too many redirects", request=response.request)

    async def _answer(self, url: str, response: httpx.Response, final: str) -> Fetched:
        """The response as a Fetched: its body within the size cap, or why not."""
        if response.status_code == 304:
            await response.aread()  # empty; read so the connection is reused
            return Fetched(url, final, 304)
        if response.status_code >= 400:
            return Fetched(url, final, response.status_code, error=status_message(response))
        try:
            body = await self._read_capped(response)
        except _Unreadable as e:
            return Fetched(url, final, response.status_code, error=str(e))
        return Fetched(
            url,
            final,
            response.status_code,
            body,
            response.headers.get("content-type", ""),
            response.headers.get("etag", ""),
            response.headers.get("last-modified", ""),
        )

    async def _read_capped(self, response: httpx.Response) -> bytes:
        """The body, decoded as it arrives and never past the cap: counted in
        decoded bytes, so a small gzip bomb is cut off within the cap too."""
        cap = self.settings.max_bytes
        too_large = _Unreadable(f"the answer is larger than {cap:,} bytes (DIGEST_FETCH_MAX_BYTES)")
        decoder = Decoder(response.headers.get("content-encoding", ""))
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap and decoder.identity:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw():
            chunk = decoder.feed(raw, cap - size)
            size += len(chunk)
            if size > cap:
                raise too_large
            chunks.append(chunk)
        if decoder.finish(cap - size):
            raise too_large
        return b"".join(chunks)

    def _timeout_message(self) -> str:
        return (
            f"no complete answer within {self.settings.timeout:g} s; the server is slow"
            " or down (raise DIGEST_FETCH_TIMEOUT if it is only slow)"
        )


class _Unreadable(Exception):
    """A body we will not read: over the cap, or in an encoding we refuse."""


class Decoder:
    """Content-Encoding undone a chunk at a time, never producing more than
    the room left under the cap. One layer only: `gzip, gzip` is a bomb's
    favourite wrapping and no real server needs it."""

    def __init__(self, header: str) -> None:
        layers = [e.strip().lower() for e in header.split(",") if e.strip()]
        layers = [e for e in layers if e != "identity"]
        if len(layers) > 1:
            raise _Unreadable(
                f"the answer is compressed {len(layers)} times over ({header}); refused"
            )
        self.encoding = layers[0] if layers else ""
        if self.encoding not in ("", "gzip", "x-gzip", "deflate"):
            raise _Unreadable(f"the answer's encoding {self.encoding!r} is not supported")
        self.identity = not self.encoding
        gzip = self.encoding in ("gzip", "x-gzip")
        self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)
        self.raw_deflate = False  # some servers send deflate without the zlib header

    def feed(self, data: bytes, room: int) -> bytes:
        """Decode `data`; at most room + 1 bytes come out (one more tells "over")."""
        if self.identity:
            return data[: room + 1]
        try:
            out = self.inflate.decompress(data, room + 1)
        except zlib.error:
            if self.encoding != "deflate" or self.raw_deflate:
                raise _Unreadable("the answer's compressed body is corrupt") from None
            self.raw_deflate = True
            self.inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            return self.feed(data, room)
        # Whatever did not fit stays compressed: it would only be over the cap.
        return out

    def finish(self, room: int) -> bool:
        """True when what the decompressor still holds would pass the cap."""
        return not self.identity and len(self.inflate.flush(room + 1)) > room


PRIVATE = (
    "points to a private or local network address; digest does not follow a public"
    " feed's links there"
)
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, 6to4, Teredo, NAT64, or
    the old IPv4-compatible ::a.b.c.d), by which it is judged."""
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if any(address in net for net in NAT64) or address in IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_global(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return inner.is_global
    return address.is_global


async def public_address(host: str) -> str | None:
    """The address to connect to for `host` when every address it has is
    public (not private, loopback, link-local or reserved), else None. An
    unresolvable host gives itself back: its fetch fails with its own message."""
    try:
        return host if is_global(ipaddress.ip_address(host)) else None
    except ValueError:
        pass
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        return host
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
    if not addresses or not all(is_global(a) for a in addresses):
        return None
    return str(addresses[0])


async def is_public(url: str) -> bool:
    """True unless the URL's host is, or resolves to, a non-public address."""
    return await public_address(urlsplit(url).hostname or "") is not None


def _pinned(url: str, address: str) -> tuple[str, dict[str, str]]:
    """`url` with its host replaced by the checked address, and the headers
    that keep it the same request: the Host, and no connection reused for
    another name that shares the address."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if address == host:
        return url, {}
    shown = f"[{address}]" if ":" in address else address
    netloc = shown + (f":{parts.port}" if parts.port else "")
    host_header = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl(), {"Host": host_header, "Connection": "close"}


@asynccontextmanager
async def fetcher(settings: Fetch) -> AsyncIterator[Fetcher]:
    """A Fetcher whose client is closed when the run ends. TLS is always verified."""
    limits = httpx.Limits(
        max_connections=settings.concurrency,
        max_keepalive_connections=settings.concurrency,
    )
    async with httpx.AsyncClient(
        # Only what `Decoder` undoes itself, a layer at a time.
        headers={
            "User-Agent": settings.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": "gzip, deflate",
        },
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
