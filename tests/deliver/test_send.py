"""The send loop through faults: retries, deferrals, bounces, throttling,
drops, sender-wide failures and a graceful stop, on a real SMTP server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest import job, schedule, store
from digest.deliver import send as delivery
from digest.deliver.send import Progress
from digest.edition import load_edition, save_edition
from digest.errors import DeliveryError
from digest.store import audience
from digest.store import ledger as store_ledger
from tests.conftest import settings_for
from tests.smtp_server import PortZeroController, ScriptedHandler, serving

ACTIVE = {"ada@example.org", "grace@example.org", "edsger@example.org"}
Server = tuple[PortZeroController, ScriptedHandler]


@pytest.fixture(params=[False, True], ids=["plain", "pipelining"])
def scripted(request: pytest.FixtureRequest) -> Iterator[Server]:
    handler = ScriptedHandler(pipelining=request.param)
    with serving(handler) as controller:
        yield controller, handler


def smtp(controller: PortZeroController, **extra: str) -> dict[str, str]:
    return {
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(controller.port),
        "DIGEST_SMTP_SECURITY": "none",
        "DIGEST_RETRY_DELAY": "0.01",
        **extra,
    }


def ledger(project: Path) -> dict[str, tuple[str, int, str, str]]:
    """email -> (status, attempts, last reply, Message-ID) of the newest edition."""
    db = store.connect(project / "digest.db")
    try:
        rows = db.execute(
            "SELECT email, status, attempts, last_reply, message_id FROM deliveries"
            " WHERE edition_id = (SELECT id FROM editions ORDER BY number DESC LIMIT 1)"
        )
        return {
            r["email"]: (r["status"], r["attempts"], r["last_reply"], r["message_id"]) for r in rows
        }
    finally:
        db.close()


def received(handler: ScriptedHandler) -> list[str]:
    return sorted(rcpt for _, rcpts, _ in handler.messages for rcpt in rcpts)


def test_temporary_refusal_is_retried_with_back_off_until_sent(
    project: Path, scripted: Server
) -> None:
    controller, handler = scripted
    handler.rcpt_script["grace@example.org"] = ["451 4.7.1 greylisted", "450 4.2.0 busy"]
    result = job.send(settings_for(project, **smtp(controller)))
    assert result.report.counts == {"sent": 3}
    assert received(handler) == sorted(ACTIVE)
    status, attempts, reply, _ = ledger(project)["grace@example.org"]
    assert (status, attempts) == ("sent", 3)
    assert reply.startswith("250")
    db = store.connect(project / "digest.db")
    written, answered = db.execute(
        "SELECT created_at, updated_at FROM deliveries WHERE email = 'grace@example.org'"
    ).fetchone()
    db.close()
    assert written and answered and written <= answered


def test_lasting_refusal_is_deferred_then_retry_failed_delivers(
    project: Path, scripted: Server
) -> None:
    controller, handler = scripted
    handler.rcpt_script["grace@example.org"] = ["452 4.2.2 mailbox full"] * 3
    settings = settings_for(project, **smtp(controller, DIGEST_MAX_ATTEMPTS="3"))
    result = job.send(settings)
    assert result.report.counts == {"sent": 2, "deferred": 1}
    status, attempts, reply, _ = ledger(project)["grace@example.org"]
    assert (status, attempts, reply) == ("deferred", 3, "452 4.2.2 mailbox full")
    assert job.send(settings).edition is None  # a plain send makes no new edition
    with (project / "subscribers.csv").open("a", encoding="utf-8") as csv:
        csv.write("newcomer@example.org,New,,active\n")  # joined after the edition
    retried = job.send(settings, retry_failed=True)
    assert retried.report.counts == {"sent": 1}
    assert received(handler) == sorted(ACTIVE)  # a retry reaches nobody new
    assert job.send(settings, retry_failed=True).edition is None


def test_permanent_refusal_bounces_and_later_sends_respect_it(
    project: Path, scripted: Server, tmp_path: Path
) -> None:
    controller, handler = scripted
    handler.rcpt_script["grace@example.org"] = ["550 5.1.1 no such user"]
    settings = settings_for(project, **smtp(controller))
    first = job.send(settings)
    assert first.report.counts == {"sent": 2, "bounced": 1}
    assert ledger(project)["grace@example.org"][:2] == ("bounced", 1)
    assert first.edition is not None
    next_edition = tmp_path / "next.json"
    save_edition(first.edition, next_edition)
    next_edition.write_text(
        next_edition.read_text(encoding="utf-8").replace(first.edition.id, "next-edition"),
        encoding="utf-8",
    )
    second = job.send(settings, next_edition)
    assert second.report.counts == {"sent": 2}
    assert received(handler).count("grace@example.org") == 0
    db = store.connect(project / "digest.db")
    assert store_ledger.status_of(db, "next-edition", "grace@example.org") is None  # no row
    assert store_ledger.status_of(db, "next-edition", "ada@example.org") == "sent"
    db.close()


def test_message_refused_at_data_fails_without_suppressing(project: Path, scripted: Server) -> None:
    controller, handler = scripted
    handler.data_script["ada@example.org"] = ["554 5.6.0 content rejected"]
    settings = settings_for(project, **smtp(controller))
    assert job.send(settings).report.counts == {"sent": 2, "failed": 1}
    status, _, reply, _ = ledger(project)["ada@example.org"]
    assert status == "failed" and "554 5.6.0 content rejected" in reply
    db = store.connect(project / "digest.db")
    assert audience.state_of(db, "ada@example.org")[0] is None
    db.close()
    assert job.send(settings, retry_failed=True).report.counts == {"sent": 1}


def test_dropped_connection_is_reopened_and_the_message_retried(
    project: Path, scripted: Server
) -> None:
    controller, handler = scripted
    handler.drop.add("ada@example.org")
    settings = settings_for(project, **smtp(controller, DIGEST_SMTP_CONNECTIONS="1"))
    assert job.send(settings).report.counts == {"sent": 3}
    assert received(handler) == sorted(ACTIVE)
    assert ledger(project)["ada@example.org"][:2] == ("sent", 2)
    assert handler.sessions == 2


def test_throttling_reply_pauses_and_reconnects(project: Path, scripted: Server) -> None:
    controller, handler = scripted
    handler.rcpt_script["ada@example.org"] = ["421 4.7.0 slow down"]
    settings = settings_for(project, **smtp(controller, DIGEST_SMTP_CONNECTIONS="1"))
    assert job.send(settings).report.counts == {"sent": 3}
    assert ledger(project)["ada@example.org"][:2] == ("sent", 2)
    assert handler.sessions == 2  # 421 means the server closes: a new session


def test_messages_per_connection_cap_opens_new_sessions(project: Path, scripted: Server) -> None:
    controller, handler = scripted
    env = smtp(controller, DIGEST_SMTP_CONNECTIONS="1", DIGEST_SMTP_MESSAGES_PER_CONNECTION="1")
    assert job.send(settings_for(project, **env)).report.counts == {"sent": 3}
    assert handler.sessions == 3


def test_sender_refused_stops_at_once_and_leaves_the_rest_pending(
    project: Path, scripted: Server
) -> None:
    controller, handler = scripted
    handler.mail_reply = "553 5.7.1 sender not allowed"
    settings = settings_for(project, **smtp(controller))
    # The sender is the return path: the bounce mailbox tagged for the delivery.
    with pytest.raises(
        DeliveryError, match=r"refused the sender bounces\+\S+@example\.org \(553"
    ) as e:
        job.send(settings)
    assert "\n" not in str(e.value) and "DIGEST_BOUNCE_ADDRESS" in str(e.value)
    assert {s for s, *_ in ledger(project).values()} == {"pending"}
    handler.mail_reply = "250 OK"
    assert job.send(settings).report.counts == {"sent": 3}
    assert received(handler) == sorted(ACTIVE)


def test_stop_event_ends_the_send_cleanly_and_a_resume_finishes_it(
    project: Path, scripted: Server
) -> None:
    controller, handler = scripted
    csv = project / "subscribers.csv"
    csv.write_text(
        "email,name\n" + "".join(f"r{n}@example.org,Reader {n}\n" for n in range(300)),
        encoding="utf-8",
    )
    settings = settings_for(project, **smtp(controller, DIGEST_SMTP_CONNECTIONS="2"))
    stop = threading.Event()
    seen: list[Progress] = []

    def progress(p: Progress) -> None:
        seen.append(p)
        if p.done >= 50:
            stop.set()

    first = job.send(settings, stop=stop, progress=progress)
    assert first.report.stopped
    states = ledger(project)
    sent = {e for e, row in states.items() if row[0] == "sent"}
    assert 50 <= len(sent) < 300
    assert {row[0] for row in states.values()} <= {"sent", "pending"}
    assert sorted(sent) == received(handler)
    assert seen[0].total == 300 and seen[-1].done >= seen[0].done
    second = job.send(settings)
    assert second.resumed
    assert second.report.counts == {"sent": 300 - len(sent)}
    assert received(handler) == sorted(f"r{n}@example.org" for n in range(300))


def test_status_shows_counts_and_latest_errors(project: Path, scripted: Server) -> None:
    controller, handler = scripted
    handler.rcpt_script["grace@example.org"] = ["550 5.1.1 no such user"]
    job.send(settings_for(project, **smtp(controller)))
    [row] = schedule.report(settings_for(project))["editions"]
    assert row["deliveries"] == {"sent": 2, "bounced": 1}
    problems = row["problems"]
    assert isinstance(problems, list) and len(problems) == 1
    assert problems[0]["email"] == "grace@example.org"
    assert problems[0]["last_reply"] == "550 5.1.1 no such user"


def test_dry_run_counts_states_and_sends_nothing(project: Path, scripted: Server) -> None:
    controller, handler = scripted
    handler.rcpt_script["grace@example.org"] = ["550 5.1.1 no such user"]
    settings = settings_for(project, **smtp(controller))
    before = job.dry_run(settings)
    assert before["counts"] == {"to_send": 3, "suppressed": 0, "no_copy": 0, "inactive": 1}
    assert before["samples"] == ["ada@example.org", "grace@example.org", "edsger@example.org"]
    assert before["state"] == "new" and before["row_errors_total"] == 1
    assert handler.messages == []
    first = job.send(settings)
    assert first.edition is not None
    edition_file = project / "again.json"
    save_edition(first.edition, edition_file)
    after = job.dry_run(settings, edition_file)
    assert after["state"] == "sent"
    assert after["counts"] == {"to_send": 0, "suppressed": 0, "already_done": 3}
    assert after["ledger"] == {"sent": 2, "bounced": 1}
    assert load_edition(edition_file).id == first.edition.id


def test_cli_send_status_and_retry_failed(
    project: Path, scripted: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from digest.cli import main

    controller, handler = scripted
    handler.rcpt_script["grace@example.org"] = ["550 5.1.1 no such user"]
    handler.rcpt_script["ada@example.org"] = ["451 4.3.0 later"]
    env = {
        "DIGEST_DATABASE": str(project / "digest.db"),
        "DIGEST_SUBSCRIBERS": str(project / "subscribers.csv"),
        "DIGEST_MAX_ATTEMPTS": "1",
        **smtp(controller),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(project)
    sent = CliRunner().invoke(main, ["send"])
    assert sent.exit_code == 0, sent.output
    assert "1 bounced, 1 deferred, 1 sent" in sent.output
    status = CliRunner().invoke(main, ["status"])
    assert "550 5.1.1 no such user" in status.output
    assert "451 4.3.0 later" in status.output
    retried = CliRunner().invoke(main, ["send", "--retry-failed"])
    assert "Resumed edition" in retried.output and ": 1 sent;" in retried.output
    again = CliRunner().invoke(main, ["send", "--retry-failed"])
    assert "Nothing to retry" in again.output
    assert received(handler) == ["ada@example.org", "edsger@example.org"]


def test_stop_after_a_whole_batch_still_leaves_the_edition_to_resume(
    project: Path, scripted: Server
) -> None:
    controller, handler = scripted
    total = delivery.BATCH + 20
    (project / "subscribers.csv").write_text(
        "email,name\n" + "".join(f"r{n}@example.org,R\n" for n in range(total)), encoding="utf-8"
    )
    settings = settings_for(project, **smtp(controller))
    stop = threading.Event()

    def progress(p: Progress) -> None:
        if p.done >= delivery.BATCH - 60:
            stop.set()

    first = job.send(settings, stop=stop, progress=progress)
    assert first.report.stopped
    sent = first.report.counts["sent"]
    # The edition stays `sending` until every recipient's row is final: the
    # next send finishes it instead of building a new one.
    second = job.send(settings)
    assert second.resumed and second.edition is not None
    assert first.edition is not None and second.edition.id == first.edition.id
    assert second.report.counts == {"sent": total - sent}
    assert received(handler) == sorted(f"r{n}@example.org" for n in range(total))


def test_a_server_refusing_every_connection_with_5xx_stops_the_send(project: Path) -> None:
    # A 554 greeting ("no service") is for this sender, not for one message:
    # retrying each message with back-off would only defer the whole list.
    listener = socket.create_server(("127.0.0.1", 0))
    greeted = []

    def refuse() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"554 5.7.1 no service for your address\r\n")
                greeted.append(1)

    thread = threading.Thread(target=refuse, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    try:
        settings = settings_for(
            project,
            DIGEST_SMTP_HOST="127.0.0.1",
            DIGEST_SMTP_PORT=str(port),
            DIGEST_SMTP_SECURITY="none",
        )
        with pytest.raises(DeliveryError, match=r"refused the connection \(554 5\.7\.1 no service"):
            job.send(settings)
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        listener.close()
        thread.join(10)
    assert {s for s, *_ in ledger(project).values()} == {"pending"}
    assert len(greeted) <= 4  # at most one try per connection, no retries
