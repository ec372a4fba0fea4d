"""The edition lifecycle through the real jobs: an edition is recorded before
its first message and stays unfinished until every recipient has a final
ledger row; whatever stops it, the next send finishes it; cancelling gives
back the articles nobody received. A real SMTP server and SQLite file."""

from __future__ import annotations

import email
import email.policy
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest import job, store
from digest.cli import main
from digest.deliver.send import Progress
from digest.edition import load_edition, save_edition
from digest.errors import EditionError, LeaseHeld, SubscriberError
from digest.store import articles, editions, lease, ledger
from tests.conftest import settings_for
from tests.smtp_server import PortZeroController, RecordingHandler, ScriptedHandler, serving

Server = tuple[PortZeroController, RecordingHandler]
ACTIVE = ["ada@example.org", "edsger@example.org", "grace@example.org"]


def smtp(controller: PortZeroController) -> dict[str, str]:
    return {
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(controller.port),
        "DIGEST_SMTP_SECURITY": "none",
    }


def received(handler: RecordingHandler) -> list[str]:
    return sorted(rcpt for _, rcpts, _ in handler.messages for rcpt in rcpts)


def states(database: str) -> dict[str, str]:
    with store.opened(database) as db:
        return {row.id: row.state for row in editions.recent(db, 50)}


def test_a_send_without_its_list_keeps_the_edition_and_finishes_it_later(
    database: str, project: Path, smtp_server: Server
) -> None:
    controller, handler = smtp_server
    settings = settings_for(project, DIGEST_DATABASE=database, **smtp(controller))
    listed = project / "subscribers.csv"
    kept = listed.read_text(encoding="utf-8")
    listed.unlink()
    with pytest.raises(SubscriberError, match="cannot read the subscriber list"):
        job.send(settings)
    [(edition_id, state)] = states(database).items()
    assert state == "built"  # recorded, articles claimed, not consumed
    with pytest.raises(SubscriberError):
        job.send(settings)  # still missing: still the same edition, still built
    assert states(database) == {edition_id: "built"}
    listed.write_text(kept, encoding="utf-8")
    resumed = job.send(settings)
    assert resumed.resumed and resumed.edition is not None and resumed.edition.id == edition_id
    assert received(handler) == ACTIVE
    assert states(database) == {edition_id: "sent"}
    again = job.send(settings)
    assert again.edition is None and received(handler) == ACTIVE


def test_dry_run_counts_and_progress_total_equal_what_is_delivered(
    database: str, project: Path, smtp_server: Server
) -> None:
    # Only technology has new articles: the science-only reader gets nothing.
    controller, handler = smtp_server
    for old in (project / "samples" / "science").iterdir():
        old.unlink()
    (project / "subscribers.csv").write_text(
        "email,name,sections,status\n"
        "ada@example.org,Ada,,active\n"
        "grace@example.org,Grace,technology,active\n"
        "edsger@example.org,Edsger,science,active\n"
        "alan@example.org,Alan,,unsubscribed\n"
        "barbara@example.org,Barbara,science;technology,active\n",
        encoding="utf-8",
    )
    settings = settings_for(project, DIGEST_DATABASE=database, **smtp(controller))
    planned = job.dry_run(settings)
    assert planned["counts"] == {"to_send": 3, "suppressed": 0, "no_copy": 1, "inactive": 1}
    totals: list[int] = []

    def progress(p: Progress) -> None:
        totals.append(p.total)

    sent = job.send(settings, progress=progress)
    assert sent.report.counts == {"sent": planned["counts"]["to_send"]}
    assert received(handler) == ["ada@example.org", "barbara@example.org", "grace@example.org"]
    assert set(totals) == {planned["counts"]["to_send"]}
    assert sent.delivered.fan_out is not None
    assert sent.delivered.fan_out.counts == {"send": 3, "no_copy": 1, "inactive": 1}


def test_a_test_copy_is_the_real_copy_but_for_message_id_and_date(
    database: str, project: Path, smtp_server: Server
) -> None:
    controller, handler = smtp_server
    (project / "subscribers.csv").write_text(
        "email,name,sections,Company\n"
        "edsger@example.org,Edsger Dijkstra,science,Mathematisch Centrum\n",
        encoding="utf-8",
    )
    settings = settings_for(project, DIGEST_DATABASE=database, **smtp(controller))
    test = job.test_send(settings, "edsger@example.org")
    assert test.test_ok and test.test_reply.startswith("250")
    assert states(database) == {}  # a test copy records nothing
    job.send(settings)
    copy, real = (
        email.message_from_bytes(m[2], policy=email.policy.SMTP) for m in handler.messages
    )
    assert copy["Message-ID"] != real["Message-ID"]
    for message in (copy, real):
        del message["Message-ID"]
        del message["Date"]
    assert copy.as_bytes() == real.as_bytes()


def test_a_test_copy_to_an_invalid_or_suppressed_address_is_refused(
    database: str, project: Path
) -> None:
    env = {"DIGEST_DATABASE": database, "DIGEST_SUBSCRIBERS": "subscribers.csv"}
    runner = CliRunner()
    invalid = runner.invoke(main, ["send", "--to", "not an address"], env=env)
    assert invalid.exit_code == 1 and "not a valid address" in invalid.output
    with store.opened(database) as db:
        store.audience.suppress(db, "ada@example.org", "unsubscribed: web page")
    refused = CliRunner().invoke(
        main,
        ["--config", str(project / "digest.toml"), "send", "--to", "ada@example.org"],
        env={**env, "DIGEST_SUBSCRIBERS": str(project / "subscribers.csv")},
    )
    assert refused.exit_code == 1 and "gets no copy of this edition (suppressed)" in refused.output


def test_the_editor_sets_subject_and_note_in_the_edition_file(
    database: str, project: Path, smtp_server: Server, tmp_path: Path
) -> None:
    controller, handler = smtp_server
    settings = settings_for(project, DIGEST_DATABASE=database, **smtp(controller))
    built = job.build(settings, [], None, tmp_path / "out")
    path = built.paths["edition"]
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["subject"].startswith("The Sample Digest #1: ") and data["note"] == ""
    data["subject"] = "Batteries & <brains>: this week"
    data["note"] = "A short week: we skipped Friday."
    path.write_text(json.dumps(data), encoding="utf-8")
    job.send(settings, path)
    message = handler.parsed()[0]
    assert message["Subject"] == "Batteries & <brains>: this week"
    assert "A short week: we skipped Friday." in message.get_body(("plain",)).get_content()
    assert "A short week: we skipped Friday." in message.get_body(("html",)).get_content()


def test_an_unknown_key_in_the_edition_file_is_an_error_naming_it(
    database: str, project: Path, tmp_path: Path
) -> None:
    settings = settings_for(project, DIGEST_DATABASE=database)
    path = job.build(settings, [], None, tmp_path / "out").paths["edition"]
    data = json.loads(path.read_text(encoding="utf-8"))
    data["sections"][0]["articles"][1]["sumary"] = data["sections"][0]["articles"][1].pop("summary")
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(EditionError) as error:
        load_edition(path)
    message = str(error.value)
    assert "unknown key 'sumary' in sections[0].articles[1]" in message
    assert "did you mean 'summary'?" in message


def test_a_failed_build_leaves_the_edited_file_byte_identical(
    database: str, project: Path, tmp_path: Path
) -> None:
    settings = settings_for(project, DIGEST_DATABASE=database)
    out = tmp_path / "out"
    path = job.build(settings, [], None, out).paths["edition"]
    edited = path.read_text(encoding="utf-8").replace('"note": ""', '"note": "Edited."')
    path.write_text(edited, encoding="utf-8")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    runner = CliRunner()
    env = {"DIGEST_DATABASE": database}
    config = ["--config", str(project / "digest.toml")]
    failed = runner.invoke(
        main, [*config, "build", "--source", "no/such/folder", "--out", str(out)], env=env
    )
    assert failed.exit_code == 1 and "no/such/folder" in failed.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # Everything is in an edition now: nothing new, nothing written, status 3.
    job.send(settings_for(project, DIGEST_DATABASE=database))
    empty = runner.invoke(main, [*config, "build", "--out", str(out)], env=env)
    assert empty.exit_code == 3 and "nothing new" in empty.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.fixture
def greylisting() -> Iterator[Server]:
    """A server that defers zed@example.org for good: a send that cannot finish."""
    handler = ScriptedHandler()
    handler.rcpt_script["zed@example.org"] = ["451 4.7.1 greylisted"] * 100
    with serving(handler) as controller:
        yield controller, handler


def unfinished_send(
    project: Path, database: str, controller: PortZeroController, sections: str
) -> job.SendResult:
    """Ada (of `sections`) gets her copy; Zed (every section) stays deferred."""
    (project / "subscribers.csv").write_text(
        f"email,name,sections\nada@example.org,Ada,{sections}\nzed@example.org,Zed,\n",
        encoding="utf-8",
    )
    settings = settings_for(
        project, DIGEST_DATABASE=database, **smtp(controller), DIGEST_MAX_ATTEMPTS="1"
    )
    result = job.send(settings)
    assert result.report.counts == {"sent": 1, "deferred": 1}
    return result


def test_editions_lists_states_and_cancel_ends_an_unfinished_one(
    database: str, project: Path, greylisting: Server
) -> None:
    controller, handler = greylisting
    first = unfinished_send(project, database, controller, "")
    assert first.edition is not None
    shown = CliRunner().invoke(main, ["--database", database, "editions"])
    assert shown.exit_code == 0, shown.output
    assert "sending" in shown.output and "1 deferred, 1 sent" in shown.output
    cancelled = CliRunner().invoke(
        main, ["--database", database, "editions", "cancel", first.edition.id]
    )
    assert cancelled.exit_code == 0, cancelled.output
    # Ada got the whole edition: no article goes back.
    assert "1 delivery(ies) will not be tried; 0 article(s) returned" in cancelled.output
    assert states(database) == {first.edition.id: "cancelled"}
    settings = settings_for(project, DIGEST_DATABASE=database, **smtp(controller))
    assert job.send(settings, retry_failed=True).edition is None  # cancelled: no retries
    assert job.send(settings).edition is None  # nothing new
    assert received(handler) == ["ada@example.org"]


def test_cancel_returns_only_the_articles_no_delivered_copy_held(
    database: str, project: Path, greylisting: Server
) -> None:
    controller, handler = greylisting
    first = unfinished_send(project, database, controller, "technology")
    assert first.edition is not None
    by_section = {s.key: {a.id for a in s.articles} for s in first.edition.sections}
    settings = settings_for(project, DIGEST_DATABASE=database, **smtp(controller))
    cancelled = job.cancel(settings, first.edition.id)
    assert set(cancelled.returned) == by_section["science"]
    configured = [c.url for s in settings.sections for c in s.source_configs]
    with store.opened(database) as db:
        pool = {json.loads(b)["id"] for b in articles.unsent_articles(db, "science", configured)}
        assert ledger.counts(db, first.edition.id) == {"sent": 1, "cancelled": 1}
    assert pool == by_section["science"]
    handler.rcpt_script.clear()
    again = job.send(settings)
    assert again.edition is not None and set(again.edition.article_ids) == by_section["science"]
    with pytest.raises(EditionError, match="only built or sending ones cancel"):
        job.cancel(settings, first.edition.id)


def test_cancel_is_refused_while_a_send_holds_the_lease(
    database: str, project: Path, greylisting: Server
) -> None:
    controller, _ = greylisting
    first = unfinished_send(project, database, controller, "")
    assert first.edition is not None
    settings = settings_for(project, DIGEST_DATABASE=database)
    with store.opened(database) as db:
        lock = lease.RunnerLock(database, "digest send on here pid 1")
        assert lock.acquire(db, 60, time.time()) is None
        try:
            with pytest.raises(LeaseHeld, match="digest send on here pid 1 is sending"):
                job.cancel(settings, first.edition.id)
        finally:
            lock.release(db)
    assert states(database) == {first.edition.id: "sending"}


def test_an_edited_file_of_an_edition_already_going_out_is_refused(
    database: str, project: Path, greylisting: Server, tmp_path: Path
) -> None:
    controller, _ = greylisting
    first = unfinished_send(project, database, controller, "")
    assert first.edition is not None
    path = tmp_path / "edition.json"
    save_edition(first.edition, path)
    path.write_text(
        path.read_text(encoding="utf-8").replace('"note": ""', '"note": "Late."'),
        encoding="utf-8",
    )
    settings = settings_for(project, DIGEST_DATABASE=database, **smtp(controller))
    with pytest.raises(EditionError, match="already being sent"):
        job.send(settings, path)
    assert load_edition(path).note == "Late."
