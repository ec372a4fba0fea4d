"""Every kind of source and feed format, read from a real loopback server or
local files, into our article model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest import store
from digest.cli import main
from digest.collect import collect, read_source, read_sources
from digest.config import SourceConfig, load_settings
from digest.errors import ConfigError
from digest.model import Article
from digest.store import articles as store_articles
from tests import feed_samples as fs
from tests.feed_server import FeedServer, Route

FORMATS: dict[str, tuple[Callable[[list[fs.Item]], str], str]] = {
    "rss091": (fs.rss091, "application/rss+xml"),
    "rss1": (fs.rss1, "application/rdf+xml"),
    "rss2": (fs.rss2, "application/rss+xml"),
    "atom03": (fs.atom03, "application/atom+xml"),
    "atom1": (fs.atom1, "application/atom+xml"),
    "json": (fs.json_feed, "application/feed+json"),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_feed_format_becomes_articles(feed_server: FeedServer, name: str) -> None:
    build, content_type = FORMATS[name]
    feed_server.routes["/feed"] = Route(build(fs.items(name, 3)).encode(), content_type)
    articles, problems = read_source(feed_server.url("/feed"))
    assert problems == []
    assert [a.title for a in articles] == [f"{name} story {n}" for n in (1, 2, 3)]
    first = articles[0]
    assert first.url == f"https://news.example.org/{name}/1"
    assert first.sections[0].paragraphs[0].startswith("Engineers are uncovering streams")
    assert first.sections[1].heading == "What it brings"
    assert first.sections[1].bullets == ("Cooler air in summer.", "Room for floods to spread.")
    if name != "rss091":  # RSS 0.91 items carry no date
        assert first.published is not None


@pytest.mark.parametrize("suffix", [".xml", ".rss", ".atom", ".json"])
def test_local_feed_files(tmp_path: Path, suffix: str) -> None:
    document = (
        fs.json_feed(fs.items("local", 2)) if suffix == ".json" else fs.atom1(fs.items("local", 2))
    )
    path = tmp_path / f"feed{suffix}"
    path.write_text(document, encoding="utf-8")
    for source in (str(path), path.as_uri()):
        articles, problems = read_source(source)
        assert problems == []
        assert [a.title for a in articles] == ["local story 1", "local story 2"]


PAGE = """<!doctype html><html><head><title>Rivers Return | City Paper</title>
<meta name="description" content="Buried streams come back.">
</head><body><nav><a href="/">Home</a> <a href="/about">About</a></nav>
<article><h1>Rivers Return</h1>
<p>Engineers are uncovering streams that were buried under streets a century ago.
They say the cities are cooler and the floods smaller for it, and people like the water.</p>
<h2>Under the pavement</h2>
<p>Many cities hid their small rivers in pipes in the last century. Now some of them are
opening those pipes again and letting the water run in daylight through the parks.</p>
<h2>What it costs</h2>
<p>Opening a river is expensive, and it takes road space that drivers are used to having,
so every project has had to argue its case street by street with the people who live there.</p>
</article><footer>Copyright City Paper</footer></body></html>"""


def test_web_page_source_keeps_headings_as_sections(feed_server: FeedServer) -> None:
    feed_server.routes["/story"] = Route(PAGE.encode(), "text/html; charset=utf-8")
    articles, problems = read_source(feed_server.url("/story"))
    assert problems == []
    (article,) = articles
    assert article.title.startswith("Rivers Return")
    assert [s.heading for s in article.sections][-2:] == ["Under the pavement", "What it costs"]
    assert "Copyright" not in article.text and "About" not in article.text
    assert article.url == feed_server.url("/story")


def test_page_advertising_a_feed_is_reported_with_the_feed_address(
    feed_server: FeedServer,
) -> None:
    page = PAGE.replace(
        "<head>", '<head><link rel="alternate" type="application/rss+xml" href="/feed.xml">'
    )
    feed_server.routes["/home"] = Route(page.encode(), "text/html")
    articles, problems = read_source(feed_server.url("/home"))
    assert articles == []
    assert "not a feed" in problems[0].message and "/feed.xml" in problems[0].message
    # Asked to read it as a page, it is one.
    settings = fs.settings_with(Path.cwd(), {})
    spec = SourceConfig(feed_server.url("/home"), kind="page")
    articles, problems = read_sources(settings.fetch, [spec])
    assert len(articles) == 1 and problems == []


def test_page_asked_for_as_a_feed_is_a_clear_problem(feed_server: FeedServer) -> None:
    feed_server.routes["/home"] = Route(PAGE.encode(), "text/html")
    settings = fs.settings_with(Path.cwd(), {})
    articles, problems = read_sources(
        settings.fetch, [SourceConfig(feed_server.url("/home"), kind="feed")]
    )
    assert articles == []
    assert "web page, not a feed" in problems[0].message


def test_inline_table_sources_and_plain_strings(tmp_path: Path) -> None:
    settings = fs.settings_with(
        tmp_path,
        {
            "news": [
                "articles",
                {"url": "https://example.org/feed.xml", "full_text": True, "max_age_days": 3},
                {"url": "page.html", "kind": "page", "name": "Local page"},
            ]
        },
    )
    section = settings.sections[0]
    assert section.sources == (
        str(tmp_path / "articles"),
        "https://example.org/feed.xml",
        str(tmp_path / "page.html"),
    )
    remote = section.source_configs[1]
    assert remote.full_text is True and remote.max_age_days == 3 and remote.kind == "auto"
    assert section.source_configs[2].name == "Local page"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"full_text": True}, "'url'"),
        ({"url": "x", "fulltext": True}, "unknown source option 'fulltext'"),
        ({"url": "x", "max_age_days": 0}, "max_age_days"),
        ({"url": "x", "kind": "video"}, "kind"),
        ({"url": "x", "full_text": "yes"}, "full_text"),
    ],
)
def test_bad_source_tables_say_what_and_where(
    tmp_path: Path, source: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        fs.settings_with(tmp_path, {"news": [source]})
    assert "source #1" in str(caught.value)


def test_source_settings_come_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        environ={
            "DIGEST_USER_AGENT": "MyDigest/2",
            "DIGEST_FETCH_PER_HOST": "2",
            "DIGEST_RESEND_EDITED": "yes",
            "DIGEST_FULL_TEXT_MIN_CHARS": "500",
        },
    )
    assert settings.user_agent == "MyDigest/2" and settings.fetch_per_host == 2
    assert settings.resend_edited is True and settings.full_text_min_chars == 500
    with pytest.raises(ConfigError, match="DIGEST_RESEND_EDITED"):
        load_settings(None, environ={"DIGEST_RESEND_EDITED": "maybe"})


def test_build_from_a_feed_url_on_the_command_line(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/feed"] = Route(fs.rss2(fs.items("cli", 2)).encode())
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "--database",
            str(tmp_path / "d.db"),
            "build",
            "--source",
            feed_server.url("/feed"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    edition = json.loads((out / "edition.json").read_text(encoding="utf-8"))
    titles = [a["title"] for s in edition["sections"] for a in s["articles"]]
    assert sorted(titles) == ["cli story 1", "cli story 2"]
    assert "cli story 1" in (out / "digest.html").read_text(encoding="utf-8")


def test_build_takes_every_kind_of_source_at_once(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/story"] = Route(PAGE.encode(), "text/html; charset=utf-8")
    (tmp_path / "saved.atom").write_text(fs.atom1(fs.items("saved", 1)), encoding="utf-8")
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "one.txt").write_text("Folder story\nIts standfirst.\nBody text here.\n")
    (tmp_path / "single.md").write_text("# Single story\n\nIts standfirst.\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["--database", str(tmp_path / "d.db"), "build", "--out", str(out)]
    for source in (feed_server.url("/story"), "saved.atom", "articles", "single.md"):
        args += ["--source", str(tmp_path / source) if "://" not in source else source]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    edition = json.loads((out / "edition.json").read_text(encoding="utf-8"))
    assert len(edition["sections"]) == 1
    titles = sorted(a["title"] for a in edition["sections"][0]["articles"])
    assert titles[:2] == ["Folder story", "Rivers Return"]
    assert titles[2:] == ["Single story", "saved story 1"]


def test_collect_stores_feed_articles_in_their_section(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.routes["/a"] = Route(fs.rss2(fs.items("a", 2)).encode())
    feed_server.routes["/b"] = Route(fs.json_feed(fs.items("b", 1)).encode(), "application/json")
    settings = fs.settings_with(
        tmp_path, {"one": [feed_server.url("/a")], "two": [feed_server.url("/b")]}
    )
    db = store.connect(settings.database)
    collected = collect(settings.fetch, settings.sections, db)
    assert collected.problems == ()
    assert sorted((s, a.title) for s, a in collected.articles) == [
        ("one", "a story 1"),
        ("one", "a story 2"),
        ("two", "b story 1"),
    ]
    assert len(store_articles.unsent_articles(db, "one", [feed_server.url("/a")])) == 2
    stored: Article = collected.articles[0][1]
    assert stored.source in ("River News", "JSON News")


def test_a_feed_with_html_documents_in_cdata_is_still_a_feed(feed_server: FeedServer) -> None:
    body = "<html><body><p>A whole page as the entry's content, as some feeds do.</p></body></html>"
    feed = fs.rss2([("c1", "Cdata story", "https://news.example.org/c1", "")]).replace(
        "<description></description>", f"<description><![CDATA[{body}]]></description>"
    )
    feed = feed.replace("?>", "?><!-- <html> in a comment is no page either -->", 1)
    feed_server.routes["/cdata"] = Route(feed.encode(), "text/html")
    (article,), problems = read_source(feed_server.url("/cdata"))
    assert problems == [] and article.title == "Cdata story"
    assert article.text == "A whole page as the entry's content, as some feeds do."
