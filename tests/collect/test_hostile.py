"""Untrusted content: hostile feeds and pages, from the loopback server all the
way to the compiled and personalised HTML email. Nothing of the source's
markup, attributes or links may arrive; its words may, escaped."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from digest import job, store
from digest.collect import collect
from digest.collect.clean import html_to_sections, html_to_text
from digest.config import Settings
from digest.edition import lifecycle
from digest.model import Article, Edition, article_from_dict, article_to_dict
from digest.render import compile_edition, personalize
from digest.store.db import Database
from tests import feed_samples as fs
from tests.feed_server import FeedServer, Route

HOSTILE_BODY = """
<p onclick="steal()">Readable <b>words</b> stay.<script>
document.write('INJECTED-SCRIPT')</script></p>
<style>body { background: url(https://tracker.example.com/css) } .x{content:'INJECTED-CSS'}</style>
<img src="https://tracker.example.com/pixel.gif?u=1" width="1" height="1" onerror="alert(1)">
<iframe src="https://evil.example.com/frame">INJECTED-FRAME</iframe>
<p><a href="javascript:alert(document.cookie)">a javascript link</a> and
<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">a data link</a>.</p>
<h2 style="position:fixed" onmouseover="x()">A heading <svg onload="alert(1)">
<text>INJECTED-SVG</text></svg></h2>
<ul><li>First &lt;img src=x onerror=alert(2)&gt; as text</li><li>Second</li></ul>
<object data="https://evil.example.com/flash.swf">INJECTED-OBJECT</object>
<form action="https://evil.example.com/"><input name="password">INJECTED-FORM</form>
<p>Tail paragraph with enough words to be a paragraph of its own in the email.</p>
"""

HOSTILE_ITEMS = [
    (
        "h1",
        "<script>alert('title')</script>Breaking <i>news</i> & more",
        "javascript:alert(1)",
        HOSTILE_BODY,
    ),
    ("h2", "Quotes \" and ' and <img src=x onerror=alert(3)>", "data:text/html,evil", HOSTILE_BODY),
    ("h3", "A normal title", "https://news.example.org/normal?utm_source=x", HOSTILE_BODY),
]

FORBIDDEN_TAGS = {"script", "iframe", "object", "embed", "form", "input", "svg", "frame", "applet"}
MARKERS = ("INJECTED", "tracker.example.com", "evil.example.com", "javascript:", "data:text")


class _Audit(HTMLParser):
    """Every tag and attribute of the final HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]


def next_candidate(settings: Settings, db: Database) -> Edition:
    """The edition the next send would build from what was collected."""
    return lifecycle.candidate(
        db, settings.title, settings.sections, settings.summary, job.local_now(settings)
    )


def test_clean_keeps_words_and_drops_everything_else() -> None:
    sections = html_to_sections(HOSTILE_BODY)
    text = " ".join(
        [s.heading for s in sections] + [t for s in sections for t in (*s.paragraphs, *s.bullets)]
    )
    assert "Readable words stay." in text and "a javascript link" in text
    assert [s.heading for s in sections] == ["", "A heading"]
    assert "First <img src=x onerror=alert(2)> as text" in sections[1].bullets
    for marker in ("INJECTED", "tracker", "steal", "alert(1)", "background"):
        assert marker not in text
    assert html_to_text("<b>Bold</b> &amp; <script>x()</script>plain") == "Bold & plain"


def test_hostile_feed_reaches_the_email_as_plain_escaped_text(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.routes["/evil"] = Route(fs.rss2(HOSTILE_ITEMS, title="<b>Evil</b> feed").encode())
    feed_server.routes["/evil.json"] = Route(
        fs.json_feed([(g + "j", t, u, b) for g, t, u, b in HOSTILE_ITEMS]).encode(),
        "application/feed+json",
    )
    settings = fs.settings_with(
        tmp_path, {"news": [feed_server.url("/evil"), feed_server.url("/evil.json")]}
    )
    db = store.connect(settings.database)
    collected = collect(settings.fetch, settings.sections, db)
    titles = [a.title for _s, a in collected.articles]
    assert "Breaking news & more" in titles
    assert all("<" not in t and "alert" not in t for t in titles if not t.startswith("Quotes"))
    assert all(a.url == "" or a.url.startswith("https://") for _s, a in collected.articles)
    edition = next_candidate(settings, db)
    html, text = personalize(
        compile_edition(edition, settings.look),
        {
            "name": "<b>Reader</b>",
            "email": "r@example.org",
            "unsubscribe_url": "#",
            "preferences_url": "#",
        },
    )
    audit = _Audit()
    audit.feed(html)
    words = " ".join(audit.text)
    assert "Breaking news & more" in words and "Tail paragraph with enough words" in words
    assert not FORBIDDEN_TAGS.intersection(audit.tags)
    assert not [name for name, _ in audit.attributes if name.startswith("on")]
    links = [value for name, value in audit.attributes if name in ("href", "src", "action")]
    assert all(v.startswith(("https://", "http://", "#", "mailto:")) for v in links), links
    for marker in MARKERS:
        assert marker not in html, marker
        assert marker not in text, marker
    assert "<img src=x" not in html


def test_hostile_page_as_full_text(feed_server: FeedServer, tmp_path: Path) -> None:
    page = (
        "<html><head><title>Page</title></head><body><article><h1>Page</h1>"
        f"{HOSTILE_BODY}{HOSTILE_BODY}</article></body></html>"
    )
    feed_server.routes["/story"] = Route(page.encode(), "text/html")
    teaser = [("t1", "Teaser", feed_server.url("/story"), "<p>Just a teaser.</p>")]
    feed_server.routes["/teasers"] = Route(fs.rss2(teaser).encode())
    settings = fs.settings_with(
        tmp_path, {"news": [{"url": feed_server.url("/teasers"), "full_text": True}]}
    )
    db = store.connect(settings.database)
    ((_section, article),) = collect(settings.fetch, settings.sections, db).articles
    assert "Readable words stay." in article.text
    edition = next_candidate(settings, db)
    html, _text = personalize(compile_edition(edition, settings.look), {})
    for marker in MARKERS:
        assert marker not in html, marker


def test_links_in_entry_html_become_plain_pairs_and_only_http_survives() -> None:
    html = (
        '<p>Read <a href="https://example.org/a?x=1" onclick="steal()">the report</a>, '
        '<a href="javascript:alert(1)">this</a> and <a href="data:text/html,x">that</a>.</p>'
        '<h2>More</h2><ul><li>See <a href="http://example.org/b">B</a></li></ul>'
        '<p><a href="https://example.org/c" title="x"><img src="https://t.example/p.gif"></a>'
        "<a href='https://example.org/\"onmouseover=\"x'>quoted</a></p>"
    )
    first, second = html_to_sections(html)
    assert first.links == (("the report", "https://example.org/a?x=1"),)
    assert first.paragraphs == ("Read the report, this and that.",)
    assert second.links == (("B", "http://example.org/b"),)
    article = Article("l", "T", "https://example.org/l", sections=(first, second))
    assert article_from_dict(article_to_dict(article)) == article
