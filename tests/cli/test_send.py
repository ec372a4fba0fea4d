"""The main job end to end, against a real SMTP server and a real Maildir."""

from __future__ import annotations

import mailbox
import shutil
import socket
from pathlib import Path

import pytest

from digest import job, store
from digest.edition import load_edition, save_edition
from digest.errors import DeliveryError
from digest.store import audience, editions, ledger
from tests.conftest import ROOT, settings_for
from tests.smtp_server import PortZeroController, RecordingHandler

ACTIVE = {"ada@example.org", "grace@example.org", "edsger@example.org"}
Server = tuple[PortZeroController, RecordingHandler]


def smtp_env(controller: PortZeroController) -> dict[str, str]:
    return {
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(controller.port),
        "DIGEST_SMTP_SECURITY": "none",
    }


def test_smtp_send_reaches_every_active_subscriber_once(project: Path, smtp_server: Server) -> None:
    controller, handler = smtp_server
    result = job.send(settings_for(project, **smtp_env(controller)))
    assert result.edition is not None
    assert result.report.counts == {"sent": 3}
    recipients = [rcpt for _, rcpts, _ in handler.messages for rcpt in rcpts]
    assert sorted(recipients) == sorted(ACTIVE)
    assert [e.line for e in result.row_errors] == [5]
    assert "not-an-address" in result.row_errors[0].message


def test_message_has_both_parts_and_the_right_headers(project: Path, smtp_server: Server) -> None:
    controller, handler = smtp_server
    job.send(settings_for(project, **smtp_env(controller)))
    messages = {m["To"].addresses[0].addr_spec: m for m in handler.parsed()}
    message = messages["ada@example.org"]
    assert message.get_content_type() == "multipart/alternative"
    assert message["From"].addresses[0].addr_spec == "digest@example.org"
    assert message["Subject"].startswith("The Sample Digest #1")
    assert message["Date"] and message["Message-ID"].endswith("@example.org>")
    assert "https://digest.example.org/unsubscribe?token=" in message["List-Unsubscribe"]
    assert "mailto:" in message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Hello Ada Lovelace," in text
    assert "Solid-State Batteries Leave the Lab for the Factory Floor" in text
    assert "Solid-State Batteries Leave the Lab for the Factory Floor" in html
    assert "TECHNOLOGY" in text and "SCIENCE" in text
    assert "Trade" not in text  # only our samples, never the seed
    ids = {m["Message-ID"] for m in messages.values()}
    assert len(ids) == 3


def test_second_send_of_the_same_edition_sends_nothing(
    project: Path, smtp_server: Server, tmp_path: Path
) -> None:
    controller, handler = smtp_server
    settings = settings_for(project, **smtp_env(controller))
    first = job.send(settings)
    assert first.edition is not None
    edition_file = tmp_path / "edition.json"
    save_edition(first.edition, edition_file)
    again = job.send(settings, edition_file)
    assert again.report.counts == {}
    assert len(handler.messages) == 3
    nothing_new = job.send(settings)
    assert nothing_new.edition is None
    assert len(handler.messages) == 3


def test_maildir_is_the_default_without_smtp_host(project: Path) -> None:
    settings = settings_for(project)
    result = job.send(settings)
    assert result.destination == f"Maildir {project / 'outbox'}"
    box = mailbox.Maildir(project / "outbox", create=False)
    recipients = sorted(message["To"].split("<")[-1].rstrip(">") for message in box)
    assert recipients == sorted(ACTIVE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_leaves_rows_pending_for_a_later_send(
    project: Path, smtp_server: Server
) -> None:
    dead = settings_for(
        project,
        DIGEST_SMTP_HOST="127.0.0.1",
        DIGEST_SMTP_PORT=str(free_port()),
        DIGEST_SMTP_SECURITY="none",
    )
    with pytest.raises(DeliveryError, match=r"cannot reach SMTP server 127\.0\.0\.1:\d+"):
        job.send(dead)
    db = store.connect(project / "digest.db")
    [row] = editions.unfinished(db)
    assert row.state == "sending"
    assert ledger.counts(db, row.id) == {"pending": 3}
    db.close()
    controller, _ = smtp_server
    resumed = job.send(settings_for(project, **smtp_env(controller)))
    assert resumed.resumed and resumed.edition is not None
    assert resumed.edition.id == row.id
    assert resumed.report.counts == {"sent": 3}


def test_edited_edition_file_is_sent_as_edited(
    project: Path, smtp_server: Server, tmp_path: Path
) -> None:
    controller, handler = smtp_server
    settings = settings_for(project, **smtp_env(controller))
    built = job.build(settings, [], None, tmp_path / "out")
    edition = load_edition(built.paths["edition"])
    text = built.paths["edition"].read_text(encoding="utf-8")
    first_summary = edition.sections[0].articles[0].summary[0]
    built.paths["edition"].write_text(
        text.replace(first_summary, "An editor rewrote this summary."), encoding="utf-8"
    )
    job.send(settings, built.paths["edition"])
    bodies = {
        m["To"].addresses[0].addr_spec: m.get_body(("plain",)).get_content()
        for m in handler.parsed()
    }
    assert "An editor rewrote this summary." in bodies["ada@example.org"]
    assert "An editor rewrote this summary." in bodies["grace@example.org"]


def test_subscribers_get_only_their_sections(project: Path, smtp_server: Server) -> None:
    controller, handler = smtp_server
    job.send(settings_for(project, **smtp_env(controller)))
    bodies = {
        m["To"].addresses[0].addr_spec: m.get_body(("plain",)).get_content()
        for m in handler.parsed()
    }
    assert "TECHNOLOGY" in bodies["ada@example.org"] and "SCIENCE" in bodies["ada@example.org"]
    assert "TECHNOLOGY" in bodies["grace@example.org"]
    assert "SCIENCE" not in bodies["grace@example.org"]
    assert "TECHNOLOGY" not in bodies["edsger@example.org"]


def test_test_send_goes_to_one_address_and_marks_nothing(
    project: Path, smtp_server: Server
) -> None:
    controller, handler = smtp_server
    settings = settings_for(project, **smtp_env(controller))
    job.test_send(settings, "editor@example.org")
    assert [rcpts for _, rcpts, _ in handler.messages] == [["editor@example.org"]]
    result = job.send(settings)
    assert result.report.counts == {"sent": 3}


def test_a_test_copy_never_shares_the_real_messages_message_id(
    project: Path, smtp_server: Server
) -> None:
    # An editor who is also a subscriber: Gmail drops a second message with a
    # Message-ID it has seen, so the real edition would vanish behind the test.
    controller, handler = smtp_server
    settings = settings_for(project, **smtp_env(controller))
    job.test_send(settings, "ada@example.org")
    job.test_send(settings, "ada@example.org")
    job.send(settings)
    ids = [
        m["Message-ID"]
        for m in handler.parsed()
        if m["To"].addresses[0].addr_spec == "ada@example.org"
    ]
    assert len(ids) == 3 and len(set(ids)) == 3


def test_refused_recipient_is_bounced_and_the_rest_sent(project: Path, smtp_server: Server) -> None:
    controller, handler = smtp_server
    handler.refuse["grace@example.org"] = "550 5.1.1 no such user"
    result = job.send(settings_for(project, **smtp_env(controller)))
    assert result.report.counts == {"sent": 2, "bounced": 1}
    db = store.connect(project / "digest.db")
    assert audience.state_of(db, "grace@example.org")[0] is not None
    db.close()


def test_further_csv_columns_reach_the_templates(project: Path, smtp_server: Server) -> None:
    controller, handler = smtp_server
    (project / "subscribers.csv").write_text(
        "email,name,sections,status,Company Name,Site\n"
        "ada@example.org,Ada,,active,Analytical Engines Ltd,https://ada.example.org/\n"
        'grace@example.org,Grace,,active,"<b onclick=x>Navy</b>", JavaScript:alert(1)\n',
        encoding="utf-8",
    )
    overrides = project / "my-templates" / "partials"
    overrides.mkdir(parents=True)
    intro = (ROOT / "templates" / "partials" / "intro.mjml.j2").read_text(encoding="utf-8")
    (overrides / "intro.mjml.j2").write_text(
        intro.replace(
            'Hello {{ slot("name") }},',
            'Hello {{ slot("name") }} of {{ field("Company Name") }},'
            ' <a href="{{ field("Site") }}">{{ field("Site") }}</a>',
        ),
        encoding="utf-8",
    )
    settings = settings_for(
        project, DIGEST_TEMPLATES=str(project / "my-templates"), **smtp_env(controller)
    )
    job.send(settings)
    html = {
        m["To"].addresses[0].addr_spec: m.get_body(("html",)).get_content()
        for m in handler.parsed()
    }
    assert "Hello Ada of Analytical Engines Ltd," in html["ada@example.org"]
    grace = html["grace@example.org"]
    assert "&lt;b onclick=x&gt;Navy&lt;/b&gt;" in grace
    assert "<b onclick" not in grace
    # A field that opens a link keeps only http(s), like a link from a source;
    # as text it stays what the list says.
    assert 'href="https://ada.example.org/"' in html["ada@example.org"]
    assert 'href="#"' in grace and ">JavaScript:alert(1)</a>" in grace


NEW_ARTICLE = """---
title: A Brand New Story Arrives Late
url: https://example.org/tech/brand-new-story
date: {day}
---

Something new happened after the first send of the minute, and readers care.

Observers said so in public. It was not expected by anyone at all.
"""


def test_second_send_in_the_same_minute_is_a_new_edition(
    project: Path, smtp_server: Server
) -> None:
    # Editions are named by their minute: a second `digest send` in that
    # minute reused the first one's id, marked the new article sent to it, and
    # delivered it to nobody. A minute may roll over mid-test: then try again.
    controller, handler = smtp_server
    for attempt in range(3):
        folder = project.parent / f"try{attempt}"
        shutil.copytree(project, folder, ignore=shutil.ignore_patterns("digest.db*", "outbox"))
        settings = settings_for(folder, **smtp_env(controller))
        handler.messages.clear()
        first = job.send(settings)
        today = job.local_now(settings).date().isoformat()
        (folder / "samples/technology/new.md").write_text(NEW_ARTICLE.format(day=today))
        second = job.send(settings)
        assert first.edition is not None and second.edition is not None
        if second.edition.id.startswith(first.edition.id):
            break
    assert second.edition.id == f"{first.edition.id}-2"
    assert second.edition.number == first.edition.number + 1
    assert second.report.counts == {"sent": 2}  # the technology readers
    late = [
        m for m in handler.parsed() if "Brand New Story" in m.get_body(("plain",)).get_content()
    ]
    assert sorted(m["To"].addresses[0].addr_spec for m in late) == [
        "ada@example.org",
        "grace@example.org",
    ]


@pytest.mark.parametrize(
    ("base_url", "warned"),
    [
        ("http://127.0.0.1:8025", "point at this machine"),
        ("http://news.example.org", "are not https"),
        ("https://news.example.org", ""),
    ],
)
def test_send_over_smtp_warns_when_unsubscribe_links_cannot_work(
    project: Path, smtp_server: Server, caplog: pytest.LogCaptureFixture, base_url: str, warned: str
) -> None:
    settings = settings_for(project, DIGEST_BASE_URL=base_url, **smtp_env(smtp_server[0]))
    with caplog.at_level("WARNING", logger="digest.deliver.run"):
        assert job.send(settings).report.counts == {"sent": 3}
    messages = [r.getMessage() for r in caplog.records if r.name == "digest.deliver.run"]
    if warned:
        assert len(messages) == 1 and warned in messages[0] and base_url in messages[0]
    else:
        assert messages == []


def test_a_test_copy_to_a_subscriber_is_what_that_subscriber_gets(
    project: Path, smtp_server: Server
) -> None:
    controller, handler = smtp_server
    settings = settings_for(project, **smtp_env(controller))
    job.test_send(settings, "edsger@example.org")  # science only, in the list
    job.test_send(settings, "editor@example.org")  # not in the list
    copies = {
        m["To"].addresses[0].addr_spec: m.get_body(("plain",)).get_content()
        for m in handler.parsed()
    }
    assert "Hello Edsger Dijkstra," in copies["edsger@example.org"]
    assert "SCIENCE" in copies["edsger@example.org"]
    assert "TECHNOLOGY" not in copies["edsger@example.org"]
    assert "Hello reader," in copies["editor@example.org"]
    assert "TECHNOLOGY" in copies["editor@example.org"]


def test_a_name_or_address_opening_a_link_target_never_becomes_a_link(
    project: Path, smtp_server: Server
) -> None:
    controller, handler = smtp_server
    (project / "subscribers.csv").write_text(
        'email,name,sections,status\nada@example.org,"javascript:alert(1)",,active\n',
        encoding="utf-8",
    )
    overrides = project / "my-templates" / "partials"
    overrides.mkdir(parents=True)
    intro = (ROOT / "templates" / "partials" / "intro.mjml.j2").read_text(encoding="utf-8")
    (overrides / "intro.mjml.j2").write_text(
        intro.replace(
            'Hello {{ slot("name") }},',
            'Hello <a href="{{ slot("name") }}">{{ slot("name") }}</a>,',
        ),
        encoding="utf-8",
    )
    settings = settings_for(
        project, DIGEST_TEMPLATES=str(project / "my-templates"), **smtp_env(controller)
    )
    job.send(settings)
    (message,) = handler.parsed()
    html = message.get_body(("html",)).get_content()
    assert 'href="javascript' not in html
    assert ">javascript:alert(1)</a>," in html  # still shown, as text
    assert "/unsubscribe?token=" in html  # our own links are kept
