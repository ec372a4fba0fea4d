"""The archive through a real `digest serve`: the list with dates, subjects
and headlines, the Atom feed (read back with feedparser, an independent
parser), and each web edition's title, description and canonical link."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
import lxml.html

from digest import job, store
from digest.edition import to_json
from digest.model import Edition, EditionArticle, EditionSection
from digest.store import editions
from tests.web.test_app import Site

TITLE = "Solid-State Batteries Leave the Lab for the Factory Floor"


def test_the_archive_lists_date_subject_and_headlines(site: Site) -> None:
    result = site.send()
    assert result.edition is not None
    page = site.http.get("/archive")
    assert page.status_code == 200
    subject = f"The Sample Digest #1: {result.edition.created[:10]}"
    assert f'<a href="/archive/{result.edition.id}">{subject}</a>' in page.text
    assert f'<time datetime="{result.edition.created[:10]}">' in page.text
    assert f"<li>{TITLE}</li>" in page.text
    titles = [a.title for s in result.edition.sections for a in s.articles]
    assert f"and {len(titles) - 5} more" in page.text
    assert titles[5] not in page.text
    assert '<link rel="alternate" type="application/atom+xml"' in page.text
    assert 'href="/archive/feed.xml"' in page.text


def test_the_feed_is_atom_of_the_editions_that_went_out(site: Site) -> None:
    first = site.send().edition
    assert first is not None
    with store.opened(site.settings.database) as db:
        hostile = Edition(
            "ed-odd",
            "<Digest & Co>\x01\x1b",
            7,
            "2026-01-01T07:00",
            subject="Less <b>&</b> more\x0c",
        )
        editions.record(db, hostile.id, 7, hostile.title, to_json(hostile))
        editions.set_state(db, hostile.id, editions.SENT)
        editions.record(
            db,
            "ed-built",
            8,
            "Only Built",
            to_json(Edition("ed-built", "x", 8, "2026-01-02T07:00")),
        )
    response = site.http.get("/archive/feed.xml")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "The Sample Digest"
    assert [e.title for e in parsed.entries] == [
        "Less <b>&</b> more",
        f"The Sample Digest #1: {first.created[:10]}",
    ]
    newest = parsed.entries[1]
    assert newest.link == f"https://digest.example.org/archive/{first.id}"
    assert newest.id == newest.link and newest.updated_parsed is not None
    assert TITLE in newest.summary
    assert "Only Built" not in response.text and "ed-built" not in response.text


def test_a_web_edition_has_a_title_a_description_and_a_canonical_link(
    site: Site, project: Path
) -> None:
    built = job.build(site.settings, [], None, project / "out")
    data = json.loads(built.paths["edition"].read_text(encoding="utf-8"))
    data["subject"] = "Batteries, comets & more"
    built.paths["edition"].write_text(json.dumps(data), encoding="utf-8")
    sent = job.send(site.settings, built.paths["edition"]).edition
    assert sent is not None
    page = site.http.get(f"/archive/{sent.id}")
    assert page.status_code == 200
    head = lxml.html.fromstring(page.content).head
    assert (head.findtext("title") or "").strip() == "Batteries, comets & more"
    (canonical,) = head.xpath("link[@rel='canonical']/@href")
    assert canonical == f"https://digest.example.org/archive/{sent.id}"
    (description,) = head.xpath("meta[@name='description']/@content")
    assert TITLE in description
    (feed,) = head.xpath("link[@type='application/atom+xml']/@href")
    assert feed == "https://digest.example.org/archive/feed.xml"
    for header in ("X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"):
        assert header in page.headers
    assert "Batteries, comets &amp; more" in site.http.get("/archive").text


def test_unpublished_editions_have_no_entry(site: Site) -> None:
    with store.opened(site.settings.database) as db:
        article = EditionArticle("a1", "Hidden Story", "https://example.org/h")
        body = Edition("ed-c", "T", 1, "2026-01-01T07:00", (EditionSection("s", "S", (article,)),))
        editions.record(db, "ed-c", 1, "T", to_json(body))
        editions.set_state(db, "ed-c", editions.CANCELLED)
    assert "Hidden Story" not in site.http.get("/archive").text
    assert "Hidden Story" not in site.http.get("/archive/feed.xml").text
