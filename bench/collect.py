"""Collection benchmark: FEEDS feeds of ENTRIES entries each, served from a
loopback HTTP server, collected into a fresh SQLite file; compared with the
time to parse the same bytes with no network, in the same run.

Targets: collection within 1.5x of parse-only; a second run, where every feed
answers 304, under a tenth of the first.

    python bench/collect.py [--feeds 200] [--entries 50]
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing import Process, Queue
from pathlib import Path
from typing import ClassVar
from urllib.request import urlopen

from digest import store
from digest.collect import collect
from digest.collect.feeds import parse_feed
from digest.config import SectionConfig, Settings

PARAGRAPH = (
    "City engineers are uncovering streams that were buried under the streets a century"
    " ago, and the neighbourhoods around them are cooler in summer for it. "
)


def feed(number: int, entries: int) -> bytes:
    """An RSS 2.0 feed of realistic size: each entry about 1.5 KB of HTML."""
    now = datetime.now(UTC)
    items = []
    for n in range(entries):
        when = format_datetime(now - timedelta(minutes=n), usegmt=True)
        body = (
            f"<p>Story {number}-{n}. {PARAGRAPH * 3}</p><h2>Why it matters</h2>"
            f"<p>{PARAGRAPH * 2}</p><ul><li>Cooler air.</li><li>Room for floods.</li></ul>"
        )
        items.append(
            f"<item><guid>feed{number}-{n}</guid><title>Story {n} of feed {number}</title>"
            f"<link>https://news{number}.example.org/{n}?utm_source=rss</link>"
            f"<pubDate>{when}</pubDate><description>{escape(body)}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Feed {number}</title><link>https://news{number}.example.org/</link>"
        f"<description>d</description>{''.join(items)}</channel></rss>"
    ).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's
    # algorithm and delayed ACKs add 40 ms to every keep-alive answer.
    disable_nagle_algorithm = True
    feeds: ClassVar[dict[str, bytes]] = {}
    statuses: ClassVar[list[int]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/stats":
            counts = f"{self.statuses.count(200)} {self.statuses.count(304)}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(counts)))
            self.end_headers()
            self.wfile.write(counts)
            return
        body = self.feeds[self.path]
        etag = '"' + hashlib.sha1(body).hexdigest() + '"'
        status = 304 if self.headers.get("If-None-Match") == etag else 200
        self.statuses.append(status)
        self.send_response(status)
        self.send_header("ETag", etag)
        if status == 200:
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if status == 200:
            self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connections beyond it; the client then
    # waits a whole second to retry, which would be measuring the server.
    request_queue_size = 256


def serve(feeds: dict[str, bytes], port: Queue[int]) -> None:
    """The loopback server, in its own process so it does not share our GIL."""
    Handler.feeds = feeds
    server = Server(("127.0.0.1", 0), Handler)
    port.put(server.server_address[1])
    server.serve_forever()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Round:
    """Wall-clock seconds of one round, and this process's CPU seconds, which
    a loaded, shared machine disturbs far less."""

    parse: float
    first: float
    repeat: float
    parse_cpu: float
    first_cpu: float


def one_round(feeds: dict[str, bytes], base: str, folder: Path, number: int) -> Round:
    """Parse-only, then a first collection into a fresh database, then the all-304 one."""
    entries = sum(1 for body in feeds.values() for _ in range(body.count(b"<item>")))
    start, cpu = time.perf_counter(), time.process_time()
    parsed = sum(len(parse_feed(body, base + path)) for path, body in feeds.items())
    parse_time, parse_cpu = time.perf_counter() - start, time.process_time() - cpu
    urls = tuple(base + path for path in feeds)
    # Every feed is on one loopback host here; in life they are on many.
    settings = Settings(
        database=folder / f"bench-{number}.db",
        sections=(SectionConfig("news", "News", urls, limit=10),),
        fetch_per_host=16,
        fetch_concurrency=16,
    )
    db = store.connect(settings.database)
    start, cpu = time.perf_counter(), time.process_time()
    first = collect(settings.fetch, settings.sections, db)
    first_time, first_cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    second = collect(settings.fetch, settings.sections, db)
    second_time = time.perf_counter() - start
    db.close()
    assert parsed == entries and len(first.articles) == entries, first.problems[:3]
    assert not first.problems and second.articles == () and not second.problems
    return Round(parse_time, first_time, second_time, parse_cpu, first_cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many rounds")
    args = parser.parse_args()
    feeds = {f"/feed/{i}": feed(i, args.entries) for i in range(args.feeds)}
    port: Queue[int] = Queue()
    server = Process(target=serve, args=(feeds, port), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{port.get(timeout=30)}"
    parse_feed(feeds["/feed/0"], base)  # imports and caches warm
    rss_before = peak_rss_mb()
    with tempfile.TemporaryDirectory() as folder:
        rounds = [one_round(feeds, base, Path(folder), n) for n in range(args.rounds)]
    with urlopen(base + "/stats", timeout=10) as answer:
        full, not_modified = (int(n) for n in answer.read().split())
    server.terminate()
    expected = args.feeds * args.rounds
    assert (full, not_modified) == (expected, expected), "each second run must be all 304s"
    total_mb = sum(len(b) for b in feeds.values()) / 1e6
    print(f"{args.feeds} feeds x {args.entries} entries, {total_mb:.1f} MB of RSS 2.0;")
    print(f"best of {args.rounds} rounds; per-host limit 16, all on 127.0.0.1")
    return report(rounds, args.feeds * args.entries, peak_rss_mb(), rss_before)


def report(rounds: list[Round], entries: int, rss: float, rss_before: float) -> int:
    parse = min(r.parse for r in rounds)
    first = min(r.first for r in rounds)
    repeat = min(r.repeat for r in rounds)
    print(f"parse-only (baseline): {parse:6.2f} s {entries / parse:7.0f} entries/s")
    print(f"collect, first run:    {first:6.2f} s {entries / first:7.0f} entries/s")
    print(f"collect, all 304:      {repeat:6.2f} s")
    print(f"peak RSS {rss:.0f} MB ({rss - rss_before:.0f} MB more than before the first round)")
    for r in rounds:
        print(
            f"  round: parse {r.parse:.2f} s, first {r.first:.2f} s ({r.first / r.parse:.2f}x),"
            f" all-304 {r.repeat:.2f} s; CPU parse {r.parse_cpu:.2f} s, first {r.first_cpu:.2f} s"
        )
    cpu = min(r.first_cpu for r in rounds) / min(r.parse_cpu for r in rounds)
    # Collection parses in digest's parser processes: their CPU is not in this figure.
    print(f"collection CPU in this process / parse-only CPU = {cpu:.2f} (parsing not counted)")
    ratio, again = first / parse, repeat / first
    verdict = {True: "PASS", False: "FAIL"}
    print(f"first run / parse-only = {ratio:.2f} (target <= 1.5): {verdict[ratio <= 1.5]}")
    print(f"all-304 / first run    = {again:.3f} (target < 0.1): {verdict[again < 0.1]}")
    return 0 if ratio <= 1.5 and again < 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
