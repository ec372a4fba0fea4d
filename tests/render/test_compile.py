"""Rendering: hostile content checked on the compiled HTML, and the text twin."""

from __future__ import annotations

from html import escape as escape_html
from html.parser import HTMLParser
from pathlib import Path

from digest.model import Edition, EditionArticle, EditionSection, KeyPoint
from digest.render import (
    compile_edition,
    field_values,
    fill,
    personalize,
    safe_url,
    web_version,
)
from digest.render.compile import prepare
from digest.render.templates import field_slot, join_items
from tests.conftest import settings_for

HOSTILE_TITLE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def hostile_edition() -> Edition:
    articles = (
        EditionArticle(
            "1",
            HOSTILE_TITLE,
            "javascript:alert(3)",
            summary=("Fine <b>bold</b> \ue000name\ue001 text.",),
            key_points=(KeyPoint('Head" onmouseover="x', "Point."),),
        ),
        EditionArticle("2", "Emoji 😀 中文 עברית", 'https://example.org/a"onmouseover="alert(4)'),
        EditionArticle("3", "Data link", "data:text/html,<script>alert(5)</script>"),
    )
    return Edition(
        "2026-01-01T0700", "T", 1, "2026-01-01T07:00", (EditionSection("s", "S", articles),)
    )


class TagCollector(HTMLParser):
    """Every start tag and its attributes, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def parse_tags(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    collector = TagCollector()
    collector.feed(html)
    return collector.tags


def test_hostile_content_never_becomes_markup(project: Path) -> None:
    compiled = compile_edition(hostile_edition(), settings_for(project).look)
    html, text = personalize(
        compiled,
        {
            "name": "<b>Eve</b>",
            "email": "e@x.org",
            "unsubscribe_url": "https://u",
            "preferences_url": "#",
        },
    )
    tags = parse_tags(html)
    assert "script" not in {tag for tag, _ in tags}
    assert "img" not in {tag for tag, _ in tags}
    attributes = [(name, value or "") for _, attrs in tags for name, value in attrs]
    assert not [name for name, _ in attributes if name.startswith("on")]
    links = [value for name, value in attributes if name == "href"]
    assert all(v.startswith(("https://", "http://", "#")) for v in links), links
    assert "javascript:" not in html and "data:text" not in html
    assert "&lt;b&gt;Eve&lt;/b&gt;" in html
    assert "Emoji 😀 中文 עברית" in html and "Emoji 😀 中文 עברית" in text
    # A source cannot open a personal slot of its own.
    assert text.count("<b>Eve</b>") == 1


def test_safe_url_keeps_only_http_links() -> None:
    assert safe_url("https://example.org/a?b=1") == "https://example.org/a?b=1"
    assert safe_url("JAVASCRIPT:alert(1)") == "#"
    assert safe_url("file:///etc/passwd") == "#"
    assert '"' not in safe_url('https://x.org/"><b>')


def test_text_twin_wraps_at_72_columns(project: Path) -> None:
    long_summary = ("word " * 60).strip() + "."
    edition = Edition(
        "e",
        "T",
        1,
        "2026-01-01T07:00",
        (
            EditionSection(
                "s",
                "S",
                (EditionArticle("1", "A title", "https://example.org/x", summary=(long_summary,)),),
            ),
        ),
    )
    _, text = personalize(compile_edition(edition, settings_for(project).look), {})
    assert max(len(line) for line in text.splitlines()) <= 72


def test_hostile_content_everywhere_in_compiled_email_and_web_version(project: Path) -> None:
    hostile = "</title><svg onload=alert(1)>\"'`&amp;"
    edition = Edition(
        "2026-01-01T0700",
        hostile,
        1,
        "2026-01-01T07:00",
        (
            EditionSection(
                hostile,
                hostile,
                (
                    EditionArticle(
                        "1",
                        hostile,
                        "https://example.org/x'onclick='alert(1)",
                        standfirst=hostile,
                        published=hostile,
                        summary=(hostile,),
                        key_points=(KeyPoint(hostile, bullets=(hostile,)),),
                    ),
                ),
            ),
        ),
    )
    look = settings_for(project, DIGEST_POSTAL_ADDRESS=hostile, DIGEST_FOOTER_TEXT=hostile).look
    compiled = compile_edition(edition, look)
    values = {
        "name": hostile,
        "email": hostile,
        "unsubscribe_url": 'https://u.org/?a="><b>',
        "preferences_url": "https://p.org/ x",
    }
    for page in (personalize(compiled, values)[0], web_version(edition, look)):
        tags = parse_tags(page)
        assert {"svg", "b", "script"}.isdisjoint(tag for tag, _ in tags)
        names = [name for _, attrs in tags for name, _ in attrs]
        assert not [name for name in names if name.startswith("on")]
        assert compiled.subject.startswith(hostile)  # the subject is a header, not markup
    # A personal value lands inside its quoted attribute, whole.
    hrefs = [
        v
        for _, attrs in parse_tags(personalize(compiled, values)[0])
        for n, v in attrs
        if n == "href"
    ]
    assert 'https://u.org/?a="><b>' in hrefs and "https://p.org/ x" in hrefs


def test_minified_html_keeps_outlook_conditional_comments(project: Path) -> None:
    compiled = compile_edition(hostile_edition(), settings_for(project).look)
    html, _ = personalize(compiled, {})
    assert "<!--[if mso | IE]>" in html and "<![endif]-->" in html
    assert 'lang="en"' in html or "lang=en" in html
    assert "  " not in html.split("<body", 1)[1].split("<!--", 1)[0]
    assert compiled.html_bytes == len(html.encode())  # measured without personal values


def test_join_items_keeps_sentences_and_separates_fragments() -> None:
    assert join_items(["One.", "Two!"]) == "One. Two!"
    assert join_items(["red", "green;", ""]) == "red; green"


def test_ampersands_and_quotes_in_subject_preheader_and_logo_alt_stay_intact(
    project: Path,
) -> None:
    title = 'Q&A: AT&T\'s "deal" <b>x</b> 😀'
    edition = Edition(
        "2026-01-01T0700",
        title,
        1,
        "2026-01-01T07:00",
        (EditionSection("s", "S", (EditionArticle("1", title, "https://example.org/x"),)),),
    )
    look = settings_for(project, DIGEST_LOGO_URL="https://example.org/logo.png").look
    html, _ = personalize(compile_edition(edition, look), {})
    tags = parse_tags(html)
    assert {"b", "script"}.isdisjoint(tag for tag, _ in tags)
    attributes = {name: value or "" for _, attrs in tags for name, value in attrs}
    # The alt text keeps the title's words; only quotes and angle brackets
    # become look-alikes, since MJML re-emits these attributes unescaped.
    assert attributes["alt"] == "Q&A: AT&T’s ”deal” ‹b›x‹/b› 😀"
    text = HTMLText()
    text.feed(html)
    # The inbox shows the preheader and the <title>: an ampersand stays one.
    preheader, filler = split_filler(text.hidden_preheader())
    assert preheader == "Q&A: AT&T’s ”deal” ‹b›x‹/b› 😀"
    assert len(filler) > 150
    assert text.title.strip().startswith("Q&A: AT&T")


FILLER = "\u034f\u200c\u00a0"


def split_filler(preheader: str) -> tuple[str, str]:
    """The preheader's text, and the invisible filler after it."""
    text = preheader.rstrip(FILLER)
    return text, preheader[len(text) :]


def test_the_preheader_is_followed_by_invisible_filler(project: Path) -> None:
    look = settings_for(project, DIGEST_PREHEADER="Rivers, trains and tea").look
    html, _ = personalize(compile_edition(hostile_edition(), look), {})
    text = HTMLText()
    text.feed(html)
    preheader, filler = split_filler(text.hidden_preheader())
    assert preheader == "Rivers, trains and tea"
    # Enough that an inbox preview (about 140 characters on a wide screen)
    # never reaches the body's "View in your browser".
    assert len(filler) >= 200 and not filler.strip(FILLER)
    assert html.index(filler) < html.index("View in your browser")


def test_the_email_loads_nothing_from_third_parties(project: Path) -> None:
    look = settings_for(project).look
    html, _ = personalize(compile_edition(hostile_edition(), look), {})
    # A remote stylesheet or font would tell a third party when each reader opens it.
    assert not [attrs for tag, attrs in parse_tags(html) if tag == "link"]
    assert "@import" not in html and "googleapis" not in html


class HTMLText(HTMLParser):
    """The <title> text and the text of each hidden div, as a browser decodes them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.hidden: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        style = dict(attrs).get("style") or ""
        self.stack.append("hidden" if "display:none" in style.replace(" ", "") else tag)
        if self.stack[-1] == "hidden":
            self.hidden.append("")

    def handle_endtag(self, tag: str) -> None:
        if self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "title":
            self.title += data
        elif self.stack and self.stack[-1] == "hidden":
            self.hidden[-1] += data

    def hidden_preheader(self) -> str:
        return next((text.strip() for text in self.hidden if text.strip()), "")


def test_a_field_that_opens_a_link_target_keeps_only_http_links() -> None:
    def marker(column: str) -> str:
        return f"\ue000{field_slot(column)}\ue001"

    markup = (
        f'<a href="{marker("A")}{marker("B")}">{marker("B")}</a>'
        f'<img src={marker("B")}><a href="https://x.org/?q={marker("B")}">q</a>'
    )
    values = field_values([("A", ""), ("B", "javascript:alert(1)")])
    filled = fill(prepare(markup, markup=True), values, escape_html)
    assert filled == (
        '<a href="#">javascript:alert(1)</a><img src=#>'
        '<a href="https://x.org/?q=javascript:alert(1)">q</a>'
    )
    assert fill(prepare(markup), values, escape_html).count("javascript:") == 4


def test_an_article_without_a_safe_link_has_no_dead_links(project: Path) -> None:
    html, _ = personalize(compile_edition(hostile_edition(), settings_for(project).look), {})
    tags = parse_tags(html)
    # Two articles have no http(s) link: their titles (card and contents) are
    # plain text, not links to "#", and they have no read-more button.
    assert not [attrs for tag, attrs in tags if tag == "a" and ("href", "#") in attrs]
    links = [dict(attrs)["href"] for tag, attrs in tags if tag == "a"]
    article_links = [link for link in links if link and link.startswith("https://example.org/")]
    assert len(article_links) == 3  # contents, title, read-more of the one linked article


class TextCollector(HTMLParser):
    """The page's text as a browser decodes it, head and comments left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.skip += tag in ("head", "style", "title")

    def handle_endtag(self, tag: str) -> None:
        self.skip -= tag in ("head", "style", "title")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    collector = TextCollector()
    collector.feed(html)
    return " ".join(" ".join(collector.parts).split())


def edition_with_note(note: str, subject: str = "") -> Edition:
    articles = (
        EditionArticle("1", "First story", "https://example.org/1", summary=("One.",)),
        EditionArticle("2", "Second story", "https://example.org/2", summary=("Two.",)),
    )
    return Edition(
        "2026-01-01T0700",
        "T",
        7,
        "2026-01-01T07:00",
        (EditionSection("s", "S", articles),),
        subject=subject,
        note=note,
    )


def test_the_editors_note_stands_above_the_contents_escaped(project: Path) -> None:
    note = 'A word from the editor: <b>bold</b> & "quoted" \ue000email\ue001 stays text.'
    look = settings_for(project).look
    compiled = compile_edition(edition_with_note(note), look)
    html, text = personalize(compiled, {"name": "Ada", "email": "ada@example.org"})
    shown = 'A word from the editor: <b>bold</b> & "quoted" email stays text.'
    # In the HTML: text, not markup, after the greeting and above the table of contents.
    assert "b" not in {tag for tag, _ in parse_tags(html)}
    assert "<b>" not in html
    page_text = visible_text(html)
    assert (
        page_text.index("Hello Ada,") < page_text.index(shown) < page_text.index("IN THIS EDITION")
    )
    # In the text twin: as written, in the same place, and it opens no slot.
    assert text.index("Hello Ada,") < text.index(shown) < text.index("IN THIS EDITION")
    assert "ada@example.org" not in text.split("IN THIS EDITION")[0]
    # The archive's web version carries the note too.
    page = web_version(edition_with_note(note), look)
    assert "<b>" not in page
    assert visible_text(page).index(shown) < visible_text(page).index("IN THIS EDITION")


def test_without_a_note_the_intro_is_as_before(project: Path) -> None:
    html, text = personalize(compile_edition(edition_with_note(""), settings_for(project).look), {})
    assert 'class="note' not in html
    assert "Hello ,\n\n2 stories in 1 section this time.\n" in text


def test_the_editors_subject_becomes_the_subject(project: Path) -> None:
    look = settings_for(project).look
    mine = compile_edition(edition_with_note("", subject='Our "big" week & more'), look)
    assert mine.subject == 'Our "big" week & more'
    html, _ = personalize(mine, {})
    title = HTMLText()
    title.feed(html)
    assert title.title.strip() == "Our ”big” week & more"
    # Without one, the default subject as before.
    assert compile_edition(edition_with_note(""), look).subject == "T #7: 2026-01-01"
