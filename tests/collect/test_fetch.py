"""Fetching against a real loopback server: conditional GET, compression,
redirects, limits and every way a source can fail, recorded per source."""

from __future__ import annotations

import json
import sqlite3
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest import job, store
from digest.cli import main
from digest.collect import collect, source_report
from digest.config import Settings
from digest.store import articles as store_sources
from tests import feed_samples as fs
from tests.feed_server import FeedServer, Route

LAST_MODIFIED = "Sun, 29 Nov 2026 07:00:00 GMT"


def test_conditional_get_makes_a_second_run_cost_nothing(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.routes["/etag"] = Route(fs.rss2(fs.items("e", 3)).encode(), etag='"v1"')
    feed_server.routes["/date"] = Route(
        fs.atom1(fs.items("d", 2)).encode(), last_modified=LAST_MODIFIED
    )
    settings = fs.settings_with(
        tmp_path, {"news": [feed_server.url("/etag"), feed_server.url("/date")]}
    )
    db = store.connect(settings.database)
    assert len(collect(settings.fetch, settings.sections, db).articles) == 5
    second = collect(settings.fetch, settings.sections, db)
    assert second.articles == () and second.problems == ()
    assert feed_server.requested("/etag")[1]["If-None-Match"] == '"v1"'
    assert feed_server.requested("/date")[1]["If-Modified-Since"] == LAST_MODIFIED
    health = {h.source: h for h in store_sources.source_health(db)}
    etag = health[feed_server.url("/etag")]
    assert etag.items == 3 and etag.new_items == 0 and etag.total_new == 3
    assert etag.failures == 0 and etag.last_success is not None


def test_user_agent_and_compression(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/gz"] = Route(fs.rss2(fs.items("gz", 2)).encode(), gzip=True)
    settings = fs.settings_with(
        tmp_path, {"news": [feed_server.url("/gz")]}, DIGEST_USER_AGENT="TestDigest/1.0 (+ops)"
    )
    collected = collect(settings.fetch, settings.sections, store.connect(settings.database))
    assert len(collected.articles) == 2
    (headers,) = feed_server.requested("/gz")
    assert headers["User-Agent"] == "TestDigest/1.0 (+ops)"
    assert "gzip" in headers["Accept-Encoding"]


def test_redirects_are_followed_but_loops_are_reported(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.routes["/old"] = Route(location="/new", status=301)
    feed_server.routes["/new"] = Route(fs.rss2(fs.items("moved", 1)).encode())
    feed_server.routes["/loop-a"] = Route(location="/loop-b")
    feed_server.routes["/loop-b"] = Route(location="/loop-a")
    settings = fs.settings_with(
        tmp_path, {"news": [feed_server.url("/old"), feed_server.url("/loop-a")]}
    )
    collected = collect(settings.fetch, settings.sections, store.connect(settings.database))
    assert [a.title for _s, a in collected.articles] == ["moved story 1"]
    (problem,) = collected.problems
    assert problem.source == feed_server.url("/loop-a")
    assert "redirects" in problem.message and "loop" in problem.message
    assert len(feed_server.requested("/loop-a")) <= 4


BAD_ANSWERS = {
    "/missing": (Route(status=404, body=b"no"), "not found (HTTP 404)"),
    "/gone": (Route(status=410, body=b"bye"), "gone (HTTP 410)"),
    "/error": (Route(status=500, body=b"oops"), "server error (HTTP 500)"),
    "/slow": (Route(fs.rss2(fs.items("slow", 1)).encode(), delay=1.5), "within 0.5 s"),
    "/truncated": (Route(fs.rss2(fs.items("t", 5)).encode(), truncate=True), "broke off"),
    "/broken": (Route(broken=True), "broke off"),
    "/notxml": (Route(b"<rss><channel><item><title>x</ti", "text/xml"), "malformed XML"),
    "/json": (Route(b'{"items": [', "application/json"), "not valid JSON"),
    "/notjsonfeed": (Route(b'{"hello": 1}', "application/json"), "not a JSON Feed"),
    "/huge": (Route(fs.rss2(fs.items("huge", 400)).encode()), "larger than 100,000 bytes"),
    "/page": (Route(b"<!doctype html><html><body><p>Hello</p></body></html>", "text/html"), ""),
}


def test_every_bad_answer_is_recorded_and_the_rest_goes_on(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    for path, (route, _message) in BAD_ANSWERS.items():
        feed_server.routes[path] = route
    feed_server.routes["/good"] = Route(fs.rss2(fs.items("good", 2)).encode())
    urls = [feed_server.url(p) for p in BAD_ANSWERS] + [feed_server.url("/good")]
    settings = fs.settings_with(
        tmp_path,
        {"news": [*urls[:-2], {"url": urls[-2], "kind": "feed"}, urls[-1]]},
        DIGEST_FETCH_TIMEOUT="0.5",
        DIGEST_FETCH_MAX_BYTES="100000",
    )
    db = store.connect(settings.database)
    collected = collect(settings.fetch, settings.sections, db)
    assert [a.title for _s, a in collected.articles] == ["good story 1", "good story 2"]
    problems = {p.source: p.message for p in collected.problems}
    for path, (_route, message) in BAD_ANSWERS.items():
        assert message in problems[feed_server.url(path)], path
        assert not problems[feed_server.url(path)].startswith("http"), path
    assert "web page, not a feed" in problems[feed_server.url("/page")]
    health = {h.source: h for h in store_sources.source_health(db)}
    assert health[feed_server.url("/gone")].failures == 1
    assert "HTTP 410" in health[feed_server.url("/gone")].last_error
    assert health[feed_server.url("/good")].failures == 0


def test_wrong_encoding_and_html_titles(feed_server: FeedServer, tmp_path: Path) -> None:
    latin = fs.rss2(
        [("g1", "Café <b>crème</b> &amp; more", "https://x.example.org/1", "<p>Crème brûlée.</p>")]
    )
    # Declared UTF-8 in the XML, sent as Latin-1, with a header saying so.
    feed_server.routes["/latin"] = Route(
        latin.encode("latin-1"), "application/rss+xml; charset=iso-8859-1"
    )
    # Declared UTF-8, sent as Latin-1 and no header: the parser must cope or report.
    liar = latin.replace("https://x.example.org/1", "https://x.example.org/2").replace(
        "Café", "Déjà vu"
    )
    feed_server.routes["/liar"] = Route(liar.encode("latin-1"), "application/rss+xml")
    settings = fs.settings_with(
        tmp_path, {"news": [feed_server.url("/latin"), feed_server.url("/liar")]}
    )
    collected = collect(settings.fetch, settings.sections, store.connect(settings.database))
    titles = [a.title for _s, a in collected.articles]
    assert "Café crème & more" in titles
    assert all("<" not in t for t in titles)
    # The mislabelled one is read as well as can be, or reported; never lost silently.
    assert len(collected.articles) + len(collected.problems) == 2


def test_empty_feed_is_a_success_with_no_items(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/empty"] = Route(fs.rss2([]).encode())
    settings = fs.settings_with(tmp_path, {"news": [feed_server.url("/empty")]})
    db = store.connect(settings.database)
    collected = collect(settings.fetch, settings.sections, db)
    assert collected.articles == () and collected.problems == ()
    (health,) = store_sources.source_health(db)
    assert health.items == 0 and health.last_success is not None


def _failing(feed_server: FeedServer, tmp_path: Path) -> tuple[Settings, str]:
    feed_server.routes["/down"] = Route(status=503, body=b"down")
    feed_server.routes["/up"] = Route(fs.rss2(fs.items("up", 1)).encode())
    settings = fs.settings_with(
        tmp_path,
        {"news": [feed_server.url("/down"), feed_server.url("/up")]},
        DIGEST_SOURCE_FAILURE_THRESHOLD="2",
    )
    return settings, feed_server.url("/down")


def test_consecutive_failures_become_loud(feed_server: FeedServer, tmp_path: Path) -> None:
    settings, down = _failing(feed_server, tmp_path)
    db = store.connect(settings.database)
    first = collect(settings.fetch, settings.sections, db)
    assert not first.problems[0].message.startswith("FAILING")
    second = collect(settings.fetch, settings.sections, db)
    assert second.problems[0].message.startswith("FAILING: 2 runs in a row")
    report = source_report(settings.sections, db, settings.source_failure_threshold)
    assert report[0].source == down and report[0].failing and report[0].failures == 2
    assert not report[1].failing and report[1].failures == 0
    feed_server.routes["/down"] = Route(fs.rss2(fs.items("back", 1)).encode())
    collect(settings.fetch, settings.sections, db)
    recovered = {h.source: h for h in store_sources.source_health(db)}[down]
    assert recovered.failures == 0 and "HTTP 503" in recovered.last_error


def test_sources_command_table_and_json(feed_server: FeedServer, tmp_path: Path) -> None:
    settings, down = _failing(feed_server, tmp_path)
    assert settings.config_path is not None
    args = ["--config", str(settings.config_path), "--database", str(settings.database)]
    runner = CliRunner()
    env = {"DIGEST_SOURCE_FAILURE_THRESHOLD": "2"}
    never = runner.invoke(main, [*args, "sources"], env=env)
    assert never.exit_code == 0 and never.output.count("new ") == 2
    for _ in range(2):
        assert runner.invoke(main, [*args, "collect"], env=env).exit_code == 0
    table = runner.invoke(main, [*args, "sources"], env=env)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[1].startswith("FAILING") and down in lines[1]
    assert "HTTP 503" in lines[2]
    assert "1 source(s) FAILING" in table.output
    rows = json.loads(runner.invoke(main, [*args, "sources", "--json"], env=env).output)
    assert [r["status"] for r in rows] == ["failing", "ok"]
    assert rows[1]["items"] == 1 and rows[1]["total_new"] == 1


@pytest.mark.parametrize("per_host", ["1", "3"])
def test_many_feeds_at_once_respect_the_per_host_limit(
    feed_server: FeedServer, tmp_path: Path, per_host: str
) -> None:
    for n in range(6):
        feed_server.routes[f"/f{n}"] = Route(fs.rss2(fs.items(f"f{n}", 2)).encode(), delay=0.15)
    settings = fs.settings_with(
        tmp_path,
        {"news": [feed_server.url(f"/f{n}") for n in range(6)]},
        DIGEST_FETCH_PER_HOST=per_host,
    )
    collected = collect(settings.fetch, settings.sections, store.connect(settings.database))
    assert len(collected.articles) == 12
    assert feed_server.max_active <= int(per_host)
    assert feed_server.max_active == int(per_host)


def test_tls_errors_are_named_and_never_skipped(tmp_path: Path) -> None:
    """A self-signed certificate on loopback: the feed is refused, saying why."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    command = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    subprocess.run(
        command,
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with FeedServer(tls=context) as server:
        server.routes["/feed"] = Route(fs.rss2(fs.items("tls", 1)).encode())
        settings = fs.settings_with(tmp_path, {"news": [server.url("/feed")]})
        collected = collect(settings.fetch, settings.sections, store.connect(settings.database))
    assert collected.articles == ()
    (problem,) = collected.problems
    assert problem.source.startswith("https://127.0.0.1:")
    assert "TLS certificate not valid" in problem.message and "self-signed" in problem.message
    assert server.requests == []


def test_a_slow_source_does_not_hold_the_database(feed_server: FeedServer, tmp_path: Path) -> None:
    """What is collected is committed while slower sources are still awaited,
    so other writers (digest serve, a send) are not kept waiting."""
    feed_server.routes["/fast"] = Route(fs.rss2(fs.items("fast", 2)).encode())
    feed_server.routes["/slow"] = Route(fs.rss2(fs.items("slow", 1)).encode(), delay=3)
    settings = fs.settings_with(
        tmp_path, {"news": [feed_server.url("/fast"), feed_server.url("/slow")]}
    )
    store.connect(settings.database).close()  # schema and WAL mode first
    done: list[int] = []
    worker = threading.Thread(
        target=lambda: done.append(
            len(
                collect(
                    settings.fetch, settings.sections, store.connect(settings.database)
                ).articles
            )
        )
    )
    worker.start()
    other = sqlite3.connect(settings.database, timeout=0.1, isolation_level=None)
    wrote_while_collecting = False
    while worker.is_alive() and not wrote_while_collecting:
        try:
            other.execute("BEGIN IMMEDIATE")
            stored = other.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
            other.execute("COMMIT")
            wrote_while_collecting = stored == 2 and worker.is_alive()
        except sqlite3.OperationalError:  # locked: the collection holds the write lock
            pass
        time.sleep(0.05)
    worker.join()
    assert wrote_while_collecting and done == [3]


def test_broken_xml_is_read_as_far_as_it_goes_and_reported(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    whole = fs.rss2(fs.items("cut", 3))
    feed_server.routes["/cut"] = Route(
        whole[: whole.index("<item>", whole.index("cut-2")) + 20].encode()
    )
    settings = fs.settings_with(tmp_path, {"news": [feed_server.url("/cut")]})
    collected = collect(settings.fetch, settings.sections, store.connect(settings.database))
    assert [a.title for _s, a in collected.articles][:1] == ["cut story 1"]
    (problem,) = collected.problems
    assert problem.source == feed_server.url("/cut")
    assert "malformed XML at line" in problem.message and "anyway" in problem.message
    # The health record keeps the warning, and the status says so until a clean run.
    db = store.connect(settings.database)
    (health,) = source_report(settings.sections, db, settings.source_failure_threshold)
    assert "malformed XML at line" in health.last_error and health.failures == 0
    assert health.warning == health.last_error
    assert sources_status(settings) == ["warning"]
    feed_server.routes["/cut"] = Route(whole.encode())
    collect(settings.fetch, settings.sections, db)
    (health,) = source_report(settings.sections, db, settings.source_failure_threshold)
    assert health.warning == "" and "malformed XML" in health.last_error
    assert sources_status(settings) == ["ok"]


def sources_status(settings: Settings) -> list[object]:
    return [row["status"] for row in job.source_health(settings)]


def test_an_older_database_gets_the_warning_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE source_state (source TEXT PRIMARY KEY, etag TEXT NOT NULL DEFAULT '',"
        " last_modified TEXT NOT NULL DEFAULT '', last_attempt TEXT, last_success TEXT,"
        " last_error TEXT NOT NULL DEFAULT '', last_error_at TEXT,"
        " failures INTEGER NOT NULL DEFAULT 0, items INTEGER NOT NULL DEFAULT 0,"
        " new_items INTEGER NOT NULL DEFAULT 0, total_new INTEGER NOT NULL DEFAULT 0)"
    )
    old.execute("INSERT INTO source_state (source) VALUES ('https://example.org/feed')")
    old.commit()
    old.close()
    db = store.connect(path)
    store_sources.record_source_success(db, "https://example.org/feed", None, 1, 0, "half read")
    (health,) = store_sources.source_health(db)
    assert health.warning == "half read" and health.last_error == "half read"
