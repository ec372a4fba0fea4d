"""Sign-up with double opt-in, through a real `digest serve` (waitress on
loopback, httpx as the client), a real SMTP server and real SQLite."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import re
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import job, store
from digest.deliver import tokens
from digest.store import audience, mailqueue, signups
from tests.cli.test_send import free_port
from tests.conftest import settings_for
from tests.web.test_app import LIST_ID, SECRET, Server, Site, add_article, received, start

PROBE = "<x-probe>"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def mails_to(site: Site, smtp: Server, address: str) -> list[EmailMessage]:
    """Messages that reached the SMTP server for `address`, once the
    server's mail thread has handed over everything it was given."""
    site.server.digest.signup.mailer.idle()
    return [m for m in smtp[1].parsed() if m["To"].addresses[0].addr_spec == address]


def link(message: EmailMessage, path: str) -> str:
    text = message.get_body(("plain",)).get_content()
    found = re.search(rf"https://digest\.example\.org({path}\?token=\S+)", text)
    assert found is not None, text
    return found.group(1)


def sign_up(site: Site, email: str, **fields: object) -> str:
    response = site.http.post("/subscribe", data={"email": email, **fields})
    assert response.status_code == 200, response.text
    return response.text


def signup_row(site: Site, email: str) -> signups.SignupRow | None:
    with store.opened(site.settings.database) as db:
        return signups.get(db, email)


def test_the_form_shows_every_section_and_hides_the_honeypot(site: Site) -> None:
    page = site.http.get("/subscribe")
    assert page.status_code == 200
    assert '<form method="post" action="/subscribe"' in page.text
    assert 'name="section" value="technology" checked' in page.text
    assert 'name="section" value="science" checked' in page.text
    assert 'class="hp" aria-hidden="true"' in page.text and 'tabindex="-1"' in page.text
    assert page.headers["Cache-Control"].startswith("public")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "form-action 'self'" in page.headers["Content-Security-Policy"]


def test_sign_up_confirm_and_the_next_edition_arrives(
    site: Site, smtp_server: Server, project: Path
) -> None:
    site.send()  # the first edition goes to the CSV's readers
    smtp_server[1].messages.clear()
    sign_up(site, "new@example.org", name="Nora New", section="science")
    row = signup_row(site, "new@example.org")
    assert row is not None and row.status == "pending" and row.sections == {"science"}
    (mail,) = mails_to(site, smtp_server, "new@example.org")
    assert mail["Subject"] == "Confirm your subscription to The Sample Digest"
    assert mail["Auto-Submitted"] == "auto-generated"
    confirm = link(mail, "/confirm")
    for _ in range(3):  # link scanners fetch links: a GET only asks
        page = site.http.get(confirm)
        assert page.status_code == 200 and "new@example.org" in page.text
    assert '<form method="post" action="/confirm?token=' in page.text
    assert signup_row(site, "new@example.org").status == "pending"  # type: ignore[union-attr]
    # Not yet confirmed: the next edition does not go there.
    add_article(project, "science", "comet", "A Comet Returns Early")
    site.send_next()
    assert len(mails_to(site, smtp_server, "new@example.org")) == 1  # the confirmation
    done = site.http.post(confirm)
    assert done.status_code == 200 and "You are subscribed" in done.text
    row = signup_row(site, "new@example.org")
    assert row is not None and row.status == "confirmed" and row.confirmed_at
    again = site.http.post(confirm)
    assert "already" in again.text
    smtp_server[1].messages.clear()
    add_article(project, "science", "moons", "Two New Moons")
    add_article(project, "technology", "chips", "Chips Get Smaller Again")
    site.send_next()
    (edition,) = mails_to(site, smtp_server, "new@example.org")
    text = edition.get_body(("plain",)).get_content()
    assert "Hello Nora New," in text and "Two New Moons" in text
    assert "Chips Get Smaller Again" not in text  # only the section chosen


def test_the_answer_never_tells_whether_an_address_is_known(
    site: Site, smtp_server: Server
) -> None:
    with store.opened(site.settings.database) as db:
        audience.suppress(db, "gone@example.org", "bounced: 550 5.1.1 no such user")
        audience.suppress(db, "left@example.org", "unsubscribed: one-click")
    sign_up(site, "member@example.org")
    site.http.post(link(mails_to(site, smtp_server, "member@example.org")[0], "/confirm"))
    sign_up(site, "waiting@example.org")
    answers = {}
    for address in (
        "fresh@example.org",  # new
        "waiting@example.org",  # pending
        "member@example.org",  # confirmed
        "left@example.org",  # unsubscribed
        "gone@example.org",  # bounced
        "ada@example.org",  # in the CSV
    ):
        response = site.http.post("/subscribe", data={"email": address}, headers=FORM)
        answers[address] = (response.status_code, response.text.replace(address, "ADDRESS"))
        assert response.headers["Cache-Control"] == "no-store"
    assert len(set(answers.values())) == 1, answers
    assert "Check your inbox" in answers["gone@example.org"][1]
    # Only the mail differs, and it goes to the address itself.
    assert mails_to(site, smtp_server, "gone@example.org") == []
    notice = mails_to(site, smtp_server, "member@example.org")[-1]
    assert "subscribed already" in notice.get_body(("plain",)).get_content()
    assert "/preferences?token=" in notice.get_body(("plain",)).get_content()
    assert signup_row(site, "gone@example.org") is None  # a bounce is not re-added


def test_an_unsubscribed_reader_may_confirm_again_but_a_bounced_one_is_not_re_added(
    site: Site, smtp_server: Server
) -> None:
    sign_up(site, "back@example.org")
    first = link(mails_to(site, smtp_server, "back@example.org")[0], "/confirm")
    site.http.post(first)
    with store.opened(site.settings.database) as db:
        audience.suppress(db, "back@example.org", "unsubscribed: web page")
    # The old link, used again, does not undo the unsubscribe.
    assert "already" in site.http.post(first).text
    assert site.reason("back@example.org") == "unsubscribed: web page"
    time.sleep(1.1)  # a new request gets a new second, so a link of its own
    sign_up(site, "back@example.org")
    second = link(mails_to(site, smtp_server, "back@example.org")[-1], "/confirm")
    assert second != first
    assert "You are subscribed" in site.http.post(second).text
    assert site.reason("back@example.org") is None
    # A bounce since: the link confirms nothing and the address stays paused.
    with store.opened(site.settings.database) as db:
        audience.suppress(db, "back@example.org", "bounced: 550 5.1.1 gone")
    stamp = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    with store.opened(site.settings.database) as db:
        signups.request(db, "back@example.org", "", (), "", stamp.isoformat())
    token = tokens.sign_confirmation(SECRET, LIST_ID, "back@example.org", int(stamp.timestamp()))
    answer = site.http.post(f"/confirm?token={token}")
    assert "bounced" in answer.text
    assert site.reason("back@example.org") == "bounced: 550 5.1.1 gone"


def test_confirmation_links_expire_and_a_newer_request_replaces_them(site: Site) -> None:
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=49)
    with store.opened(site.settings.database) as db:
        signups.request(db, "late@example.org", "", (), "", old.isoformat())
    late = tokens.sign_confirmation(SECRET, LIST_ID, "late@example.org", int(old.timestamp()))
    for method in ("GET", "POST"):
        answer = site.http.request(method, f"/confirm?token={late}")
        assert answer.status_code == 410 and "expired" in answer.text
        assert 'href="/subscribe"' in answer.text
    assert signup_row(site, "late@example.org").status == "pending"  # type: ignore[union-attr]
    recent = old + timedelta(hours=48)
    replaced = tokens.sign_confirmation(
        SECRET, LIST_ID, "late@example.org", int(recent.timestamp())
    )
    with store.opened(site.settings.database) as db:
        signups.request(db, "late@example.org", "", (), "", recent.isoformat())
        signups.request(
            db, "late@example.org", "", (), "", (recent + timedelta(minutes=5)).isoformat()
        )
    answer = site.http.post(f"/confirm?token={replaced}")
    assert answer.status_code == 410 and "newest message" in answer.text


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "garbage",
        tokens.sign(SECRET, LIST_ID, "ada@example.org"),  # an unsubscribe token
        tokens.sign_confirmation(b"another-key", LIST_ID, "ada@example.org", 2_000_000_000),
        tokens.sign_confirmation(SECRET, "other.example.org", "ada@example.org", 2_000_000_000),
        "<script>.1.x",
    ],
)
def test_a_forged_confirmation_link_is_400_and_changes_nothing(site: Site, bad: str) -> None:
    with store.opened(site.settings.database) as db:
        signups.request(db, "ada@example.org", "", (), "", "2033-05-18T03:33:20+00:00")
    for method in ("GET", "POST"):
        answer = site.http.request(method, "/confirm", params={"token": bad})
        assert answer.status_code == 400 and "<script>" not in answer.text
    assert signup_row(site, "ada@example.org").status == "pending"  # type: ignore[union-attr]


def test_json_sign_up_and_its_errors(site: Site, smtp_server: Server) -> None:
    ok = site.http.post(
        "/subscribe",
        json={"email": "js@example.org", "name": "Jay", "sections": ["technology"]},
        headers={"Accept": "application/json"},
    )
    assert ok.status_code == 202 and ok.json()["ok"] is True
    assert ok.headers["Access-Control-Allow-Origin"] == "*"
    assert "js@example.org" in ok.json()["message"]
    assert signup_row(site, "js@example.org").sections == {"technology"}  # type: ignore[union-attr]
    assert len(mails_to(site, smtp_server, "js@example.org")) == 1
    bad = site.http.post(
        "/subscribe", data={"email": "not an address"}, headers={"Accept": "application/json"}
    )
    assert bad.status_code == 422 and bad.json()["ok"] is False
    assert "does not look right" in bad.json()["error"]
    page = site.http.post("/subscribe", data={"email": "<b>x</b>", "name": "<i>n</i>"})
    assert page.status_code == 422 and "does not look right" in page.text
    assert "<b>x" not in page.text and 'value="&lt;i&gt;n&lt;/i&gt;"' in page.text
    preflight = site.http.options("/subscribe")
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]


def test_the_honeypot_gets_the_same_answer_and_nothing_happens(
    site: Site, smtp_server: Server
) -> None:
    human = sign_up(site, "human@example.org").replace("human@example.org", "ADDRESS")
    bot = sign_up(site, "bot@example.org", website="http://spam.example").replace(
        "bot@example.org", "ADDRESS"
    )
    assert bot == human
    assert signup_row(site, "bot@example.org") is None
    assert mails_to(site, smtp_server, "bot@example.org") == []


def test_rate_limits_are_shared_by_every_serve_process(project: Path, smtp_server: Server) -> None:
    env = {"DIGEST_SIGNUP_CLIENT_LIMIT": "4", "DIGEST_SIGNUP_ADDRESS_LIMIT": "2"}
    first, second = start(project, smtp_server, **env), start(project, smtp_server, **env)
    try:
        codes = [
            (first if n % 2 else second)
            .http.post("/subscribe", data={"email": f"r{n}@example.org"})
            .status_code
            for n in range(5)
        ]
        assert codes == [200, 200, 200, 200, 429]
        refused = second.http.post("/subscribe", data={"email": "r9@example.org"})
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "3600"
        assert signup_row(first, "r9@example.org") is None
    finally:
        first.stop()
        second.stop()
    # Per address: the same answer, but no third message in a day.
    proxied = start(project, smtp_server, DIGEST_TRUSTED_PROXY="127.0.0.1", **env)
    try:
        for n in range(3):
            answer = proxied.http.post(
                "/subscribe",
                data={"email": "target@example.org"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            )
            assert answer.status_code == 200  # each from its own client, via the proxy
        assert len(mails_to(proxied, smtp_server, "target@example.org")) == 2
    finally:
        proxied.stop()


def test_a_confirmed_reader_in_the_csv_gets_one_copy_with_the_name_they_gave(
    site: Site, smtp_server: Server
) -> None:
    # Alan is unsubscribed in the CSV; Ada is active there.
    for address in ("alan@example.org", "ada@example.org"):
        sign_up(site, address, name=f"{address[:3].title()} Signed")
        site.http.post(link(mails_to(site, smtp_server, address)[0], "/confirm"))
    smtp_server[1].messages.clear()
    result = site.send()
    got = received(smtp_server)
    assert sorted(got) == [
        "ada@example.org",
        "alan@example.org",
        "edsger@example.org",
        "grace@example.org",
    ]
    assert len(smtp_server[1].messages) == 4 and result.report.counts == {"sent": 4}
    assert "Hello Ada Signed," in got["ada@example.org"].get_body(("plain",)).get_content()


def test_export_includes_sign_ups_with_status_and_time_of_consent(
    site: Site, smtp_server: Server
) -> None:
    sign_up(site, "nora@example.org", name="Nora", section="science")
    site.http.post(link(mails_to(site, smtp_server, "nora@example.org")[0], "/confirm"))
    sign_up(site, "pending@example.org")
    out = io.StringIO()
    count = job.export_subscribers(site.settings, None, out, lambda problem: None)
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(out.getvalue()))}
    assert count == 5 and "pending@example.org" not in rows  # no consent yet
    nora = rows["nora@example.org"]
    assert (nora["name"], nora["sections"], nora["status"]) == ("Nora", "science", "active")
    assert nora["consented_at"].startswith(str(datetime.now(UTC).year))
    assert rows["ada@example.org"]["consented_at"] == ""


def test_sign_up_in_the_maildir_setting(project: Path) -> None:
    """`make demo`'s setting: no SMTP server, every message into the mailqueue."""
    site = Site(settings_for(project))
    try:
        answer = site.http.post("/subscribe", data={"email": "demo@example.org"})
        assert answer.status_code == 200
        site.server.digest.signup.mailer.idle()
        outbox = list((project / "outbox" / "new").iterdir())
        (confirmation,) = [p for p in outbox if b"demo@example.org" in p.read_bytes()]
        with confirmation.open("rb") as handle:
            mail = email.message_from_binary_file(handle, policy=email.policy.default)
        assert site.http.post(link(mail, "/confirm")).status_code == 200  # type: ignore[arg-type]
        result = job.send(site.settings)
        assert result.report.counts == {"sent": 4}
        delivered = [p.read_bytes() for p in (project / "outbox" / "new").iterdir()]
        assert sum(b"To: demo@example.org" in m for m in delivered) == 2  # confirm + edition
    finally:
        site.stop()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(
        st.sampled_from(["email", "name", "section", "timezone", "website", "x"]),
        st.tuples(st.text(max_size=200), st.booleans()).map(
            lambda pair: pair[0] + (PROBE if pair[1] else "")
        ),
        max_size=5,
    ),
    st.booleans(),
)
def test_any_form_input_is_answered_without_a_crash_or_markup(
    site: Site, fields: dict[str, str], as_json: bool
) -> None:
    if as_json:
        response = site.http.post(
            "/subscribe",
            content=json.dumps(fields).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
    else:
        response = site.http.post("/subscribe", data=fields)
    assert response.status_code in (200, 202, 422, 429)
    if response.headers["Content-Type"] == "application/json":
        assert isinstance(response.json()["ok"], bool)
    else:  # whatever comes back, a value's markup never does, unescaped
        assert PROBE not in response.text


def test_with_local_time_the_form_asks_for_the_time_zone(
    project: Path, smtp_server: Server
) -> None:
    site = start(project, smtp_server, DIGEST_LOCAL_TIME="true")
    try:
        page = site.http.get("/subscribe")
        assert '<select id="timezone" name="timezone">' in page.text
        assert '<option value="America/New_York">' in page.text
        sign_up(site, "ny@example.org", timezone="America/New_York")
        sign_up(site, "odd@example.org", timezone="Mars/Olympus_Mons")
        assert signup_row(site, "ny@example.org").timezone == "America/New_York"  # type: ignore[union-attr]
        assert signup_row(site, "odd@example.org").timezone == ""  # type: ignore[union-attr]
    finally:
        site.stop()
    plain = start(project, smtp_server)
    try:
        assert 'name="timezone"' not in plain.http.get("/subscribe").text
    finally:
        plain.stop()


def test_a_confirmation_waits_in_the_mail_queue_while_the_relay_is_down(
    project: Path, smtp_server: Server
) -> None:
    down = Site(
        settings_for(
            project,
            DIGEST_SMTP_HOST="127.0.0.1",
            DIGEST_SMTP_PORT=str(free_port()),  # nothing listens there
            DIGEST_SMTP_SECURITY="none",
        )
    )
    try:
        answer = sign_up(down, "late@example.org")
        assert "Check your inbox" in answer  # the same answer as when mail goes at once
        down.server.digest.signup.mailer.idle()
    finally:
        down.stop()  # the serve stops with the message kept
    with store.opened(down.settings.database) as db:
        assert mailqueue.waiting(db) == 1 and mailqueue.due(db) == 0  # tried, and waiting
        row = db.one("SELECT attempts, last_error FROM mail_queue")
        assert row is not None and row["attempts"] == 1
        assert "cannot reach SMTP server" in str(row["last_error"])
        db.execute(
            "UPDATE mail_queue SET next_try = ?", ("2026-01-01T00:00:00+00:00",)
        )  # its time came
    up = start(project, smtp_server)  # a serve that starts sends what was left
    try:
        [message] = mails_to(up, smtp_server, "late@example.org")
        assert re.search(r"/confirm\?token=\S+", message.get_body(("plain",)).get_content())
    finally:
        up.stop()
    with store.opened(up.settings.database) as db:
        assert mailqueue.waiting(db) == 0
