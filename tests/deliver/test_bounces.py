"""Bounces reported after the SMTP conversation: real sends to the aiosmtpd
fixture (whose envelope shows each delivery's VERP return path), reports in
the formats of Postfix, Exim, Exchange Online and Gmail (tests/deliver/dsn/)
read from a real Maildir, an mbox file and a real IMAP server (Dovecot)."""

from __future__ import annotations

import email
import email.policy
import itertools
import mailbox
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from digest import job, schedule, store
from digest.cli import main
from digest.config import Settings
from digest.deliver.bounces import parse
from digest.store import audience, ledger
from tests.conftest import settings_for
from tests.imap_server import ImapServer, dovecot
from tests.smtp_server import PortZeroController, RecordingHandler
from tests.web.test_app import add_article

Server = tuple[PortZeroController, RecordingHandler]
DSN = Path(__file__).parent / "dsn"
MTAS = ("postfix", "exim", "exchange", "gmail")
SERIALS = itertools.count(1)


def smtp_settings(project: Path, smtp: Server, **env: str) -> Settings:
    return settings_for(
        project,
        DIGEST_SMTP_HOST="127.0.0.1",
        DIGEST_SMTP_PORT=str(smtp[0].port),
        DIGEST_SMTP_SECURITY="none",
        **env,
    )


def envelopes(smtp: Server) -> dict[str, tuple[str, str]]:
    """Recipient -> (MAIL FROM, Message-ID) of each message the server took."""
    found = {}
    for sender, recipients, raw in smtp[1].messages:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        found[recipients[0]] = (sender, str(message["Message-ID"]))
    return found


def report(name: str, recipient: str, sent: tuple[str, str]) -> bytes:
    text = (DSN / f"{name}.eml").read_text(encoding="utf-8")
    filled = string.Template(text).substitute(
        return_path=sent[0], recipient=recipient, message_id=sent[1], serial=next(SERIALS)
    )
    return filled.replace("\n", "\r\n").encode()


def maildir(folder: Path, *reports: bytes) -> Path:
    box = mailbox.Maildir(folder, create=True)
    for raw in reports:
        box.add(raw)
    return folder


def row(settings: Settings, email_address: str, edition_id: str) -> tuple[str | None, str]:
    with store.opened(settings.database) as db:
        status = ledger.status_of(db, edition_id, email_address)
        found = db.one(
            "SELECT last_reply FROM deliveries WHERE edition_id = ? AND email = ?",
            (edition_id, email_address),
        )
    return status, "" if found is None else str(found["last_reply"])


def suppression(settings: Settings, email_address: str) -> str | None:
    with store.opened(settings.database) as db:
        return audience.state_of(db, email_address)[0]


@pytest.fixture
def sent(project: Path, smtp_server: Server) -> Iterator[tuple[Settings, str]]:
    settings = smtp_settings(project, smtp_server)
    result = job.send(settings)
    assert result.edition is not None
    yield settings, result.edition.id


def test_every_delivery_has_its_own_return_path(
    sent: tuple[Settings, str], smtp_server: Server
) -> None:
    found = envelopes(smtp_server)
    assert sorted(found) == ["ada@example.org", "edsger@example.org", "grace@example.org"]
    for sender, message_id in found.values():
        tag = message_id.strip("<>").split("@")[0]
        assert sender == f"bounces+{tag}@example.org"
        assert len(sender.split("@")[0]) <= 64
    assert len({sender for sender, _ in found.values()}) == 3


@pytest.mark.parametrize("mta", MTAS)
def test_a_hard_bounce_marks_the_delivery_and_suppresses_at_once(
    mta: str, sent: tuple[Settings, str], smtp_server: Server, tmp_path: Path
) -> None:
    settings, edition_id = sent
    ada = envelopes(smtp_server)["ada@example.org"]
    box = maildir(tmp_path / "bounces", report(f"{mta}-hard", "ada@example.org", ada))
    run = job.read_bounces(settings, str(box))
    assert run.tally.counts == {"hard": 1} and run.tally.suppressed == ["ada@example.org"]
    status, reply = row(settings, "ada@example.org", edition_id)
    assert status == "bounced" and reply.startswith("hard bounce reported later: 5.1.1")
    assert (suppression(settings, "ada@example.org") or "").startswith("bounced: 5.1.1")
    assert row(settings, "grace@example.org", edition_id)[0] == "sent"
    # Handled: moved out of the inbox, so a second run reads nothing.
    assert list((box / "new").iterdir()) == []
    assert len(list((box / ".digest-bounces" / "cur").iterdir())) == 1
    assert job.read_bounces(settings, str(box)).tally.counts == {}


@pytest.mark.parametrize("mta", MTAS)
def test_a_soft_bounce_is_recorded_but_does_not_suppress_alone(
    mta: str, sent: tuple[Settings, str], smtp_server: Server, tmp_path: Path
) -> None:
    settings, edition_id = sent
    grace = envelopes(smtp_server)["grace@example.org"]
    box = maildir(tmp_path / "bounces", report(f"{mta}-soft", "grace@example.org", grace))
    run = job.read_bounces(settings, str(box))
    assert run.tally.counts == {"soft": 1} and run.tally.suppressed == []
    status, reply = row(settings, "grace@example.org", edition_id)
    assert status == "bounced" and reply.startswith("soft bounce reported later")
    assert suppression(settings, "grace@example.org") is None


def test_soft_bounces_suppress_after_the_limit_in_a_row(
    project: Path, smtp_server: Server, tmp_path: Path
) -> None:
    settings = smtp_settings(project, smtp_server, DIGEST_SOFT_BOUNCE_LIMIT="2")
    box = tmp_path / "bounces"

    def edition_bouncing(name: str, bounce: bool) -> None:
        smtp_server[1].messages.clear()
        add_article(project, "science", name, f"News about {name}")
        assert job.send(settings).report.counts
        if bounce:
            edsger = envelopes(smtp_server)["edsger@example.org"]
            maildir(box, report("postfix-soft", "edsger@example.org", edsger))
            job.read_bounces(settings, str(box))

    edition_bouncing("one", True)
    edition_bouncing("two", False)  # delivered: the streak starts again
    edition_bouncing("three", True)
    assert suppression(settings, "edsger@example.org") is None
    edition_bouncing("four", True)
    assert (suppression(settings, "edsger@example.org") or "").startswith(
        "bounced: 2 soft bounces in a row, the last: 5.2.2"
    )
    smtp_server[1].messages.clear()
    add_article(project, "science", "five", "News about five")
    job.send(settings)
    assert "edsger@example.org" not in envelopes(smtp_server)


def test_delays_auto_replies_and_strangers_change_nothing(
    sent: tuple[Settings, str], smtp_server: Server, tmp_path: Path
) -> None:
    settings, edition_id = sent
    ada = envelopes(smtp_server)["ada@example.org"]
    stranger = ("bounces@example.org", "<not-ours@elsewhere.example>")
    box = maildir(
        tmp_path / "bounces",
        report("postfix-delay", "ada@example.org", ada),
        report("vacation", "ada@example.org", ada),
        report("gmail-hard", "someone@example.com", stranger),
    )
    run = job.read_bounces(settings, str(box))
    assert run.tally.counts == {"delay": 1, "none": 1, "unmatched": 1}
    assert row(settings, "ada@example.org", edition_id)[0] == "sent"
    assert suppression(settings, "ada@example.org") is None
    assert len(list((box / ".digest-bounces" / "cur").iterdir())) == 1  # the delay
    assert len(list((box / ".digest-other" / "cur").iterdir())) == 2  # for a person


def test_without_verp_the_quoted_message_id_names_the_delivery(
    project: Path, smtp_server: Server, tmp_path: Path
) -> None:
    settings = smtp_settings(project, smtp_server, DIGEST_VERP="false")
    edition = job.send(settings).edition
    assert edition is not None
    found = envelopes(smtp_server)
    assert {sender for sender, _ in found.values()} == {"bounces@example.org"}
    box = maildir(
        tmp_path / "b", report("exim-hard", "grace@example.org", found["grace@example.org"])
    )
    assert job.read_bounces(settings, str(box)).tally.counts == {"hard": 1}
    assert row(settings, "grace@example.org", edition.id)[0] == "bounced"


def test_an_mbox_file_is_marked_so_a_second_run_does_nothing(
    sent: tuple[Settings, str], smtp_server: Server, tmp_path: Path
) -> None:
    settings, edition_id = sent
    found = envelopes(smtp_server)
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path)
    box.add(report("exchange-hard", "ada@example.org", found["ada@example.org"]))
    box.add(report("vacation", "grace@example.org", found["grace@example.org"]))
    box.close()
    outcome = CliRunner().invoke(main, ["bounces", str(path)], env=env_of(settings))
    assert outcome.exit_code == 0, outcome.output
    assert "2 message(s) read: 1 hard, 1 other mail" in outcome.output
    assert "suppressed ada@example.org" in outcome.output
    assert row(settings, "ada@example.org", edition_id)[0] == "bounced"
    marks = [m["X-Digest-Bounce"] for m in mailbox.mbox(path)]
    assert marks == ["handled", "other"]
    again = CliRunner().invoke(main, ["bounces", str(path)], env=env_of(settings))
    assert "0 message(s) read: nothing new" in again.output


def env_of(settings: Settings, **more: str) -> dict[str, str]:
    return {
        "DIGEST_DATABASE": str(settings.database),
        "DIGEST_SUBSCRIBERS": str(settings.subscribers),
        "DIGEST_FROM": settings.from_addr,
        "DIGEST_SECRET_KEY": settings.secret_key,
        **more,
    }


@pytest.fixture(scope="module")
def imap() -> Iterator[ImapServer]:
    with dovecot() as server:
        yield server


def test_an_imap_mailbox_is_read_over_tls_and_flagged(
    sent: tuple[Settings, str], smtp_server: Server, imap: ImapServer
) -> None:
    settings, edition_id = sent
    found = envelopes(smtp_server)
    imap.append(report("gmail-hard", "edsger@example.org", found["edsger@example.org"]))
    imap.append(report("postfix-soft", "grace@example.org", found["grace@example.org"]))
    url = f"imaps://{imap.user}@127.0.0.1:{imap.port}/INBOX"
    env = env_of(
        settings, DIGEST_BOUNCE_PASSWORD=imap.password, DIGEST_BOUNCE_CA_FILE=str(imap.ca_file)
    )
    outcome = CliRunner().invoke(main, ["bounces", url], env=env)
    assert outcome.exit_code == 0, outcome.output
    assert "1 hard, 1 soft" in outcome.output
    assert row(settings, "edsger@example.org", edition_id)[0] == "bounced"
    assert row(settings, "grace@example.org", edition_id)[0] == "bounced"
    client = imap.client()
    client.select("INBOX")
    flagged = client.uid("SEARCH", None, "KEYWORD", "$DigestBounce")[1][0].split()  # type: ignore[arg-type]
    client.logout()
    assert len(flagged) == 2
    again = CliRunner().invoke(main, ["bounces", url], env=env)
    assert "0 message(s) read" in again.output
    wrong = CliRunner().invoke(
        main, ["bounces", url], env={**env, "DIGEST_BOUNCE_PASSWORD": "nope-secret"}
    )
    assert wrong.exit_code == 1 and "refused the login" in wrong.output
    assert "nope-secret" not in wrong.output
    untrusted = CliRunner().invoke(main, ["bounces", url], env={**env, "DIGEST_BOUNCE_CA_FILE": ""})
    assert untrusted.exit_code == 1 and "certificate" in untrusted.output


def test_digest_run_reads_the_bounce_mailbox(
    sent: tuple[Settings, str], smtp_server: Server, tmp_path: Path, project: Path
) -> None:
    settings, edition_id = sent
    box = maildir(
        tmp_path / "bounces",
        report("postfix-hard", "grace@example.org", envelopes(smtp_server)["grace@example.org"]),
    )
    polling = smtp_settings(project, smtp_server, DIGEST_BOUNCE_SOURCE=str(box))
    schedule.run_once(polling)
    assert row(settings, "grace@example.org", edition_id)[0] == "bounced"
    assert (suppression(settings, "grace@example.org") or "").startswith("bounced")


def test_the_maildir_outbox_records_the_return_path(project: Path) -> None:
    settings = settings_for(project)
    job.send(settings)
    for path in (project / "outbox" / "new").iterdir():
        first = path.read_bytes().split(b"\n", 1)[0]
        assert first.startswith(b"Return-Path: <bounces+") and first.endswith(b"@example.org>")


def test_a_missing_source_says_what_to_give(project: Path) -> None:
    with pytest.raises(Exception, match="DIGEST_BOUNCE_SOURCE"):
        job.read_bounces(settings_for(project))
    with pytest.raises(Exception, match="neither a Maildir"):
        job.read_bounces(settings_for(project), str(project / "nowhere"))


@given(st.binary(max_size=3000))
def test_any_bytes_read_as_a_report_without_raising(raw: bytes) -> None:
    found = parse.read(raw, "bounces@example.org")
    assert found.kind in (parse.HARD, parse.SOFT, parse.DELAY, parse.NONE)
    assert len(found.reason) <= parse.REASON_CHARS
