"""Hostile answers to a fetch: compression bombs bounded while they inflate,
stacked encodings refused, links fetched from the address that was checked
(no DNS rebinding), IPv4 hidden in IPv6 judged as IPv4; and properties of
URL canonicalisation (hypothesis)."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import tracemalloc
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.collect import fetch
from digest.collect.fetch import embedded_ipv4, fetcher, is_global, public_address
from digest.collect.identity import canonical_url
from digest.config import Fetch
from tests.feed_server import FeedServer, Route

ZEROS = 200 * 1024 * 1024  # 200 MiB inflated: a few hundred KB on the wire


def bomb() -> bytes:
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    return b"".join(squeeze.compress(block) for _ in range(ZEROS // len(block))) + squeeze.flush()


def get(url: str, settings: Fetch | None = None, public_only: bool = False) -> fetch.Fetched:
    async def run() -> fetch.Fetched:
        async with fetcher(settings or Fetch()) as client:
            return await client.get(url, public_only=public_only)

    return asyncio.run(run())


def test_a_gzip_bomb_is_cut_at_the_cap_without_inflating_it(feed_server: FeedServer) -> None:
    feed_server.routes["/bomb"] = Route(bomb(), headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        fetched = get(feed_server.url("/bomb"), Fetch(max_bytes=5_000_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fetched.error == "the answer is larger than 5,000,000 bytes (DIGEST_FETCH_MAX_BYTES)"
    assert peak < 40_000_000  # httpx inflated a whole chunk first: hundreds of MB


def test_stacked_encodings_are_refused(feed_server: FeedServer) -> None:
    double = gzip.compress(gzip.compress(b"<rss/>" * 1000))
    feed_server.routes["/double"] = Route(double, headers={"Content-Encoding": "gzip, gzip"})
    fetched = get(feed_server.url("/double"))
    assert fetched.error == "the answer is compressed 2 times over (gzip, gzip); refused"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw", "identity", ""])
def test_ordinary_compression_still_reads(feed_server: FeedServer, encoding: str) -> None:
    body = b"<rss>" + b"x" * 100_000 + b"</rss>"
    if encoding == "gzip":
        wire = gzip.compress(body)
    elif encoding == "deflate":
        wire = zlib.compress(body)
    elif encoding == "deflate-raw":
        squeeze = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        wire, encoding = squeeze.compress(body) + squeeze.flush(), "deflate"
    else:
        wire = body
    headers = {"Content-Encoding": encoding} if encoding else {}
    feed_server.routes["/feed"] = Route(wire, headers=headers)
    assert get(feed_server.url("/feed")).body == body


@pytest.mark.parametrize(
    ("address", "inner"),
    [
        ("64:ff9b::7f00:1", "127.0.0.1"),
        ("64:ff9b:1::a9fe:a9fe", "169.254.169.254"),
        ("2002:7f00:1::", "127.0.0.1"),
        ("::127.0.0.1", "127.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),
    ],
)
def test_ipv4_hidden_in_ipv6_is_judged_by_its_ipv4(address: str, inner: str) -> None:
    ip = ipaddress.IPv6Address(address)
    assert embedded_ipv4(ip) == ipaddress.IPv4Address(inner)
    assert not is_global(ip)
    assert asyncio.run(public_address(address)) is None


def test_public_forms_stay_public() -> None:
    for address in ("8.8.8.8", "2002:808:808::", "64:ff9b::808:808", "2606:4700:4700::1111"):
        assert is_global(ipaddress.ip_address(address)), address


def test_a_link_is_fetched_from_the_address_that_was_checked(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS is the seam: the check's look-up says 127.0.0.1 (standing in for a
    # public address); a second look-up would say anything. There is none:
    # the request goes to the checked address, with the link's own Host.
    looked_up: list[str] = []

    async def checked(host: str) -> str | None:
        looked_up.append(host)
        return "127.0.0.1"

    monkeypatch.setattr(fetch, "public_address", checked)
    feed_server.routes["/story"] = Route(b"<p>story</p>", "text/html")
    port = feed_server.url("/").split(":")[2].split("/")[0]
    link = f"http://rebind.invalid:{port}/story"  # .invalid never resolves
    fetched = get(link, public_only=True)
    assert fetched.error == "" and fetched.body == b"<p>story</p>"
    assert fetched.final_url == link and looked_up == ["rebind.invalid"]
    (headers,) = feed_server.requested("/story")
    assert headers["Host"] == f"rebind.invalid:{port}"


def test_a_redirect_is_checked_and_pinned_again(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {"first.invalid": "127.0.0.1", "inside.invalid": None}

    async def checked(host: str) -> str | None:
        return answers[host]

    monkeypatch.setattr(fetch, "public_address", checked)
    port = feed_server.url("/").split(":")[2].split("/")[0]
    feed_server.routes["/hop"] = Route(
        status=302, location=f"http://inside.invalid:{port}/secret", content_type=""
    )
    fetched = get(f"http://first.invalid:{port}/hop", public_only=True)
    assert fetched.error == fetch.PRIVATE
    assert feed_server.requested("/secret") == []


URLS = st.builds(
    lambda scheme, host, port, path, query, fragment: (
        f"{scheme}://{host}{port}/{path}?{query}#{fragment}"
    ),
    st.sampled_from(["http", "https", "HTTP", "HtTpS"]),
    st.from_regex(r"[A-Za-z0-9-]{1,12}(\.[A-Za-z0-9-]{1,12}){0,2}", fullmatch=True),
    st.one_of(st.just(""), st.integers(1, 65535).map(lambda n: f":{n}")),
    st.text(max_size=30),
    st.text(max_size=40),
    st.text(max_size=10),
)


@given(URLS)
def test_canonical_urls_are_stable_and_lose_only_noise(url: str) -> None:
    canonical = canonical_url(url)
    assert canonical_url(canonical) == canonical  # idempotent
    assert "#" not in canonical and "utm_" not in canonical.split("?", 1)[-1]
    assert canonical.split("://")[0] in ("http", "https")
    assert (
        canonical.split("://")[1].split("/")[0] == canonical.split("://")[1].split("/")[0].lower()
    )


@given(st.text(max_size=200))
def test_canonicalising_any_text_never_raises(text: str) -> None:
    assert isinstance(canonical_url(text), str)
