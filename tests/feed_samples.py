"""Feed documents written for the tests, one builder per format. Each item is
(guid, title, link, html body); bodies are escaped into the XML as feeds do."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path

from digest.config import Settings, load_settings

Item = tuple[str, str, str, str]

# Relative to now, so the default maximum age never drops them.
RECENT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
RFC822 = format_datetime(RECENT, usegmt=True)
ISO = RECENT.isoformat().replace("+00:00", "Z")

BODY = (
    "<p>Engineers are uncovering streams that were buried under streets a century"
    " ago, and the cities are cooler for it.</p><h2>What it brings</h2>"
    "<ul><li>Cooler air in summer.</li><li>Room for floods to spread.</li></ul>"
)


def items(prefix: str, count: int, host: str = "https://news.example.org") -> list[Item]:
    return [
        (
            f"{prefix}-{n}",
            f"{prefix} story {n}",
            f"{host}/{prefix}/{n}",
            BODY.replace("century", f"{prefix} {n}"),
        )
        for n in range(1, count + 1)
    ]


def rss2(entries: list[Item], title: str = "River News", encoding: str = "utf-8") -> str:
    parts = [
        f'<?xml version="1.0" encoding="{encoding}"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://news.example.org/</link>"
        "<description>News</description>"
    ]
    for guid, name, link, html in entries:
        parts.append(
            f'<item><guid isPermaLink="false">{escape(guid)}</guid><title>{escape(name)}</title>'
            f"<link>{escape(link)}</link><pubDate>{RFC822}</pubDate>"
            f"<description>{escape(html)}</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts)


def rss091(entries: list[Item]) -> str:
    parts = [
        '<?xml version="1.0"?>\n<rss version="0.91"><channel><title>Old News</title>'
        "<link>https://old.example.org/</link><description>d</description><language>en</language>"
    ]
    for _guid, name, link, html in entries:
        parts.append(
            f"<item><title>{escape(name)}</title><link>{escape(link)}</link>"
            f"<description>{escape(html)}</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts)


def rss1(entries: list[Item]) -> str:
    head = (
        '<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<channel rdf:about="https://rdf.example.org/"><title>RDF News</title>'
        "<link>https://rdf.example.org/</link><description>d</description></channel>"
    )
    body = "".join(
        f'<item rdf:about="{escape(link)}"><title>{escape(name)}</title><link>{escape(link)}</link>'
        f"<description>{escape(html)}</description><dc:date>{ISO}</dc:date></item>"
        for _guid, name, link, html in entries
    )
    return head + body + "</rdf:RDF>"


def atom1(entries: list[Item], title: str = "Atom News") -> str:
    head = (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{escape(title)}</title><id>urn:example:atom</id>"
        f"<updated>{ISO}</updated>"
    )
    body = "".join(
        f"<entry><id>{escape(guid)}</id><title>{escape(name)}</title>"
        f'<link rel="alternate" href="{escape(link)}"/><updated>{ISO}</updated>'
        f'<content type="html">{escape(html)}</content></entry>'
        for guid, name, link, html in entries
    )
    return head + body + "</feed>"


def atom03(entries: list[Item]) -> str:
    head = (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed version="0.3" xmlns="http://purl.org/atom/ns#">'
        '<title>Atom 0.3 News</title><link rel="alternate" type="text/html" href="https://a03.example.org/"/>'
        f"<modified>{ISO}</modified>"
    )
    body = "".join(
        f"<entry><id>{escape(guid)}</id><title>{escape(name)}</title>"
        f'<link rel="alternate" type="text/html" href="{escape(link)}"/>'
        f"<issued>{ISO}</issued><modified>{ISO}</modified>"
        f'<content type="text/html" mode="escaped">{escape(html)}</content></entry>'
        for guid, name, link, html in entries
    )
    return head + body + "</feed>"


def json_feed(entries: list[Item], title: str = "JSON News") -> str:
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": title,
            "home_page_url": "https://json.example.org/",
            "items": [
                {
                    "id": guid,
                    "title": name,
                    "url": link,
                    "content_html": html,
                    "date_published": ISO,
                    "authors": [{"name": "Ada"}],
                }
                for guid, name, link, html in entries
            ],
        }
    )


def toml_source(source: str | dict[str, object]) -> str:
    if isinstance(source, str):
        return json.dumps(source)
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in source.items()) + " }"


def settings_with(
    folder: Path, sections: dict[str, list[str | dict[str, object]]], **env: str
) -> Settings:
    """Settings from a digest.toml with these sections, as the CLI would load them."""
    lines = ['[digest]\ntitle = "Source Test"\n']
    for key, sources in sections.items():
        listed = ", ".join(toml_source(s) for s in sources)
        lines.append(f'[[sections]]\nkey = "{key}"\nsources = [{listed}]\nlimit = 100\n')
    config = folder / "digest.toml"
    config.write_text("\n".join(lines), encoding="utf-8")
    base = {"DIGEST_DATABASE": str(folder / "digest.db"), "DIGEST_FETCH_TIMEOUT": "5"}
    return load_settings(config, environ={**base, **env})
