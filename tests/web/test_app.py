"""`digest serve` over real HTTP on loopback: the waitress server in a thread,
httpx as the client, real SQLite, and real sends to the aiosmtpd fixture."""

from __future__ import annotations

import re
import threading
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from waitress import wasyncore

from digest import job, store, web
from digest.config import Settings
from digest.deliver.message import unsubscribe_token
from digest.edition import to_json
from digest.model import Edition
from digest.store import audience, editions
from tests.conftest import settings_for
from tests.smtp_server import PortZeroController, RecordingHandler

Server = tuple[PortZeroController, RecordingHandler]
LIST_ID = "the-sample-digest.example.org"
SECRET = b"test-secret-key-for-the-digest-tests"


class Site:
    """A running `digest serve` and the settings it (and the sends) use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server = web.create_server(settings, "127.0.0.1", 0)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.http = httpx.Client(base_url=self.url, timeout=10, follow_redirects=False)

    def stop(self) -> None:
        self.server.digest.signup.mailer.idle()  # sign-up mails still on their way
        self.http.close()
        # Close every socket from inside the server's own loop, which then ends.
        self.server.trigger.pull_trigger(lambda: wasyncore.close_all(self.server._map))
        self.thread.join(10)
        self.server.task_dispatcher.shutdown()
        assert not self.thread.is_alive()

    def send(self) -> job.SendResult:
        return job.send(self.settings)

    def send_next(self) -> job.SendResult:
        """The next edition, of what is new since the last send (a second
        edition in the same minute gets an id of its own)."""
        result = job.send(self.settings)
        assert result.edition is not None and result.report.counts, "nothing new was sent"
        return result

    def reason(self, email: str) -> str | None:
        with store.opened(self.settings.database) as db:
            return audience.state_of(db, email)[0]


def start(project: Path, smtp: Server, **env: str) -> Site:
    controller, _ = smtp
    return Site(
        settings_for(
            project,
            DIGEST_SMTP_HOST="127.0.0.1",
            DIGEST_SMTP_PORT=str(controller.port),
            DIGEST_SMTP_SECURITY="none",
            **env,
        )
    )


def token(email: str) -> str:
    return unsubscribe_token(SECRET, LIST_ID, email)


def local_path(url: str) -> str:
    """The path and query of a link from a message (its host is the public one)."""
    return url.split("https://digest.example.org", 1)[1]


def header_url(message: EmailMessage) -> str:
    """The https URI from a received message's List-Unsubscribe header."""
    uris = [u.strip(" <>\r\n\t") for u in str(message["List-Unsubscribe"]).split(",")]
    return next(u for u in uris if u.startswith("https://"))


def received(smtp: Server) -> dict[str, EmailMessage]:
    return {m["To"].addresses[0].addr_spec: m for m in smtp[1].parsed()}


def add_article(project: Path, section: str, name: str, title: str) -> None:
    body = f"{title}\nA new piece for the {section} section.\nWhat Happened\nIt happened today.\n"
    (project / "samples" / section / f"{name}.txt").write_text(body, encoding="utf-8")


def test_one_click_post_from_the_header_unsubscribes(site: Site, smtp_server: Server) -> None:
    site.send()
    url = header_url(received(smtp_server)["ada@example.org"])
    # RFC 8058: a POST to the header's URI with this body, no cookies, no redirect.
    response = site.http.post(
        local_path(url),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert site.reason("ada@example.org") == "unsubscribed: one-click"
    assert site.reason("grace@example.org") is None


def test_one_click_as_multipart_form_data_works_too(site: Site) -> None:
    response = site.http.post(
        f"/unsubscribe?token={token('grace@example.org')}",
        files={"List-Unsubscribe": (None, "One-Click")},
    )
    assert response.status_code == 200
    assert site.reason("grace@example.org") == "unsubscribed: one-click"


def test_get_only_asks_and_the_button_unsubscribes(site: Site) -> None:
    path = f"/unsubscribe?token={token('ada@example.org')}"
    for _ in range(3):  # link scanners may fetch a link many times
        page = site.http.get(path)
        assert page.status_code == 200
        assert site.http.head(path).status_code == 200
    assert site.reason("ada@example.org") is None
    assert "ada@example.org" in page.text
    assert '<form method="post" action="/unsubscribe?token=' in page.text
    assert page.headers["Cache-Control"] == "no-store"
    done = site.http.post(path, data={})
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert site.reason("ada@example.org") == "unsubscribed: web page"
    revisit = site.http.get(path)
    assert revisit.status_code == 200 and "already unsubscribed" in revisit.text
    assert "Subscribe again" in revisit.text
    again = site.http.post(f"/resubscribe?token={token('ada@example.org')}")
    assert again.status_code == 200 and "subscribed again" in again.text
    assert site.reason("ada@example.org") is None


def forged_tokens() -> list[str]:
    good = token("ada@example.org")
    address, signature = good.split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    grace_address = token("grace@example.org").split(".")[0]
    return [
        "",
        "garbage",
        f"{address}.{flipped}",  # tampered signature
        f"{grace_address}.{signature}",  # Ada's signature on Grace's address
        unsubscribe_token(b"another-key", LIST_ID, "ada@example.org"),
        unsubscribe_token(SECRET, "another-list.example.org", "ada@example.org"),
        good + "x" * 500,
        "%00.%00",
        "<script>.alert",
    ]


@pytest.mark.parametrize("bad", forged_tokens())
def test_forged_or_malformed_token_is_400_and_changes_nothing(site: Site, bad: str) -> None:
    for method, path in (
        ("GET", "/unsubscribe"),
        ("POST", "/unsubscribe"),
        ("GET", "/preferences"),
        ("POST", "/preferences"),
        ("POST", "/resubscribe"),
    ):
        response = site.http.request(
            method,
            path,
            params={"token": bad},
            content=b"List-Unsubscribe=One-Click&section=science",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 400, (method, path)
        assert "<script>" not in response.text
    with store.opened(site.settings.database) as db:
        assert audience.count_suppressed(db) == 0
        assert db.scalar("SELECT COUNT(*) FROM preferences") == 0


def test_preference_change_is_honoured_by_the_next_send(
    site: Site, smtp_server: Server, project: Path
) -> None:
    site.send()
    text = received(smtp_server)["grace@example.org"].get_body(("plain",)).get_content()
    found = re.search(r"https://digest\.example\.org/preferences\?token=\S+", text)
    assert found is not None
    prefs = local_path(found.group(0))
    page = site.http.get(prefs)
    assert page.status_code == 200
    assert 'value="technology" checked' in page.text  # from the CSV
    assert 'value="science">' in page.text
    saved = site.http.post(prefs, data={"section": ["science", "no-such-section"]})
    assert saved.status_code == 303
    after = site.http.get(saved.headers["Location"])
    assert 'value="science" checked' in after.text and "Saved." in after.text
    assert 'value="technology">' in after.text
    none = site.http.post(prefs, data={})
    assert none.status_code == 422 and "at least one section" in none.text

    smtp_server[1].messages.clear()
    add_article(project, "science", "comet", "A Comet Returns Early")
    add_article(project, "technology", "chips", "Chips Get Smaller Again")
    site.send_next()
    bodies = {k: m.get_body(("plain",)).get_content() for k, m in received(smtp_server).items()}
    assert "A Comet Returns Early" in bodies["grace@example.org"]
    assert "Chips Get Smaller Again" not in bodies["grace@example.org"]
    assert "Chips Get Smaller Again" in bodies["ada@example.org"]


def test_send_skips_the_unsubscribed_address(
    site: Site, smtp_server: Server, project: Path
) -> None:
    site.send()
    first = received(smtp_server)
    assert sorted(first) == ["ada@example.org", "edsger@example.org", "grace@example.org"]
    url = header_url(first["edsger@example.org"])
    assert site.http.post(local_path(url), content=b"List-Unsubscribe=One-Click").status_code == 200
    smtp_server[1].messages.clear()
    add_article(project, "science", "comet", "A Comet Returns Early")
    result = site.send_next()
    assert sorted(received(smtp_server)) == ["ada@example.org"]
    assert result.report.counts == {"sent": 1}


def test_archive_lists_editions_and_shows_them_without_personal_data(
    site: Site, smtp_server: Server
) -> None:
    result = site.send()
    assert result.edition is not None
    index = site.http.get("/archive")
    assert index.status_code == 200
    link = f'href="/archive/{result.edition.id}"'
    assert link in index.text and "The Sample Digest #1" in index.text
    view = received(smtp_server)["ada@example.org"].get_body(("plain",)).get_content()
    assert f"https://digest.example.org/archive/{result.edition.id}" in view
    page = site.http.get(f"/archive/{result.edition.id}")
    assert page.status_code == 200
    assert "Solid-State Batteries Leave the Lab for the Factory Floor" in page.text
    assert "Deep" in page.text  # science too: the web version has every section
    for personal in ("ada@example.org", "Ada Lovelace", "grace@", "token="):
        assert personal not in page.text
    assert "script-src" not in page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert site.http.get("/archive/1999-01-01T0000").status_code == 404
    assert site.http.get("/").headers["Location"] == "/archive"


def test_every_page_escapes_and_sends_security_headers(site: Site) -> None:
    odd = '"<b>bold</b>"@example.org'
    page = site.http.get(f"/unsubscribe?token={token(odd)}")
    assert page.status_code == 200
    assert "&lt;b&gt;bold&lt;/b&gt;" in page.text and "<b>bold" not in page.text
    prefs = site.http.get(f"/preferences?token={token(odd)}")
    assert "&lt;b&gt;" in prefs.text and "<b>" not in prefs.text
    for response in (page, prefs, site.http.get("/archive"), site.http.get("/nowhere")):
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["Strict-Transport-Security"].startswith("max-age=")
        assert 'name="viewport"' in response.text
    assert site.http.get("/nowhere").status_code == 404
    put = site.http.put("/unsubscribe", content=b"")
    assert put.status_code == 405 and put.headers["Allow"] == "GET, POST"
    big = site.http.post(f"/preferences?token={token(odd)}", content=b"x" * 70_000)
    assert big.status_code == 413


def test_empty_note_setting_sends_a_short_note(project: Path, smtp_server: Server) -> None:
    site = start(project, smtp_server, DIGEST_EMPTY_NOTE="true")
    try:
        site.send()
        smtp_server[1].messages.clear()
        add_article(project, "technology", "chips", "Chips Get Smaller Again")
        result = site.send_next()
    finally:
        site.stop()
    messages = received(smtp_server)
    assert sorted(messages) == ["ada@example.org", "edsger@example.org", "grace@example.org"]
    note = messages["edsger@example.org"]
    assert "nothing new in your sections" in note["Subject"]
    text = note.get_body(("plain",)).get_content()
    assert "There is nothing new in your sections this time." in text
    assert "Technology (1)" in text and "Chips Get Smaller Again" not in text
    assert "Hello Edsger Dijkstra," in text
    assert (
        "Chips Get Smaller Again"
        in messages["grace@example.org"].get_body(("plain",)).get_content()
    )
    assert result.report.counts == {"sent": 3}


def test_a_base_url_with_a_path_works_with_or_without_the_proxy_stripping_it(
    project: Path, smtp_server: Server
) -> None:
    site = start(project, smtp_server, DIGEST_BASE_URL="https://example.org/news")
    try:
        site.send()
        for path in ("/news/archive", "/archive"):
            page = site.http.get(path)
            assert page.status_code == 200, path
            assert 'href="/news/archive/' in page.text
        confirm = site.http.get(f"/news/unsubscribe?token={token('ada@example.org')}")
        assert 'action="/news/unsubscribe?token=' in confirm.text
    finally:
        site.stop()


def test_links_work_with_the_key_generated_in_the_database(
    project: Path, smtp_server: Server
) -> None:
    site = start(project, smtp_server, DIGEST_SECRET_KEY="")
    try:
        assert site.settings.secret_key == ""
        site.send()
        url = header_url(received(smtp_server)["grace@example.org"])
        assert url != f"https://digest.example.org/unsubscribe?token={token('grace@example.org')}"
        response = site.http.post(local_path(url), content=b"List-Unsubscribe=One-Click")
        assert response.status_code == 200
        assert site.reason("grace@example.org") == "unsubscribed: one-click"
    finally:
        site.stop()


def record_edition(db: store.Database, number: int, title: str, state: str) -> str:
    edition_id = f"ed-{number:02d}"
    edition = Edition(edition_id, title, number, "2026-01-01T07:00")
    editions.record(db, edition_id, number, title, to_json(edition))
    editions.set_state(db, edition_id, state)
    return edition_id


def test_archive_pages_through_many_editions(site: Site) -> None:
    with store.opened(site.settings.database) as db:
        for number in range(1, 56):
            state = editions.SENDING if number == 55 else editions.SENT
            record_edition(db, number, "<Digest & Co>", state)
    first = site.http.get("/archive")
    assert first.text.count('href="/archive/ed-') == 50
    assert 'href="/archive/ed-55"' in first.text and 'href="/archive/ed-05"' not in first.text
    assert "&lt;Digest &amp; Co&gt; #55" in first.text and "<Digest" not in first.text
    assert 'href="/archive?page=2">Older' in first.text and "Newer" not in first.text
    second = site.http.get("/archive?page=2")
    assert second.text.count('href="/archive/ed-') == 5
    assert 'href="/archive?page=1">Newer' in second.text and "Older" not in second.text
    assert site.http.get("/archive?page=x").status_code == 200
    # A page number past any SQLite integer is just an empty page, not a crash.
    huge = site.http.get("/archive?page=" + "9" * 30)
    assert huge.status_code == 200 and 'href="/archive/ed-' not in huge.text


def test_archive_lists_only_editions_that_went_out(site: Site) -> None:
    with store.opened(site.settings.database) as db:
        sent = record_edition(db, 1, "Went Out", editions.SENT)
        going = record_edition(db, 2, "Going Out", editions.SENDING)
        built = record_edition(db, 3, "Only Built", editions.BUILT)
        cancelled = record_edition(db, 4, "Cancelled One", editions.CANCELLED)
    index = site.http.get("/archive").text
    assert f'href="/archive/{sent}"' in index and f'href="/archive/{going}"' in index
    assert "Went Out #1" in index and "Going Out #2" in index
    assert built not in index and cancelled not in index
    assert "Only Built" not in index and "Cancelled One" not in index
    assert site.http.get(f"/archive/{sent}").status_code == 200
    assert site.http.get(f"/archive/{going}").status_code == 200
    # An edition that never went out has no page, even by its address.
    assert site.http.get(f"/archive/{built}").status_code == 404
    assert site.http.get(f"/archive/{cancelled}").status_code == 404


def one_click(running: Site, url: str) -> int:
    response = running.http.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return response.status_code


def test_a_pinned_list_id_keeps_sent_links_working_after_a_rename(
    project: Path, smtp_server: Server
) -> None:
    before = start(project, smtp_server, DIGEST_LIST_ID="weekly.example.org")
    try:
        before.send()
    finally:
        before.stop()
    message = received(smtp_server)["ada@example.org"]
    assert "<weekly.example.org>" in str(message["List-Id"])
    url = local_path(header_url(message))
    renamed = start(project, smtp_server, DIGEST_TITLE="A New Name")
    try:  # without the pinned id a rename changes the list id: the old link is dead
        assert one_click(renamed, url) == 400
    finally:
        renamed.stop()
    pinned = start(
        project, smtp_server, DIGEST_TITLE="A New Name", DIGEST_LIST_ID="weekly.example.org"
    )
    try:
        assert one_click(pinned, url) == 200
        assert pinned.reason("ada@example.org") == "unsubscribed: one-click"
    finally:
        pinned.stop()
