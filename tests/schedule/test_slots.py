"""Slots and the scheduler: one edition per slot, whatever fires, restarts or
runs twice. Real APScheduler triggers and schedulers, real SQLite, a real
Maildir; slot times are injected where the wall clock would make a test wait.
"""

from __future__ import annotations

import logging
import mailbox
import socket
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from digest import job, schedule, store
from digest.cli import main
from digest.config import Settings
from digest.errors import ConfigError
from digest.schedule.run import DEFERRED_WAIT, run_due
from digest.schedule.runner import Runner
from digest.schedule.slots import crontab_trigger, next_slot, slots_between
from digest.store import audience
from digest.store import editions as store_editions
from digest.store import slots as store_slots
from tests.conftest import settings_for
from tests.smtp_server import PortZeroController, RecordingHandler, ScriptedHandler

BERLIN = ZoneInfo("Europe/Berlin")
ACTIVE = 3  # active, valid rows in the fixture's subscribers.csv


def berlin(*parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=BERLIN, fold=fold)  # type: ignore[misc]


def daily(project: Path, **env: str) -> Settings:
    base = {"DIGEST_SCHEDULE": "0 7 * * *", "DIGEST_TIMEZONE": "Europe/Berlin"}
    return settings_for(project, **{**base, **env})


def delivered(project: Path) -> int:
    return (
        len(mailbox.Maildir(project / "outbox", create=False))
        if (project / "outbox").exists()
        else 0
    )


def editions(settings: Settings) -> list[str]:
    db = store.connect(settings.database)
    try:
        return [row.id for row in store_editions.recent(db, 100)]
    finally:
        db.close()


def add_article(project: Path, name: str) -> None:
    (project / "samples" / "technology" / f"{name}.txt").write_text(
        f"{name.title()} Arrives\nA short standfirst about {name}.\nWhat Happened\n"
        f"Something new happened with {name} this week. It matters to readers.\n",
        encoding="utf-8",
    )


def test_weekdays_follow_crontab_not_apscheduler_numbering() -> None:
    trigger = crontab_trigger("0 7 * * 1-5", "Europe/Berlin")
    saturday = berlin(2026, 11, 28, 12, 0)
    first = trigger.get_next_fire_time(None, saturday)
    assert first == berlin(2026, 11, 30, 7, 0)  # Monday, as crontab means 1
    sundays = crontab_trigger("0 7 * * 0", "Europe/Berlin").get_next_fire_time(None, saturday)
    assert sundays.weekday() == 6


@pytest.mark.parametrize(
    ("weekdays", "expected"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),
        ("*/2", "sun,tue,thu,sat"),
        ("5-7", "sun,fri,sat"),
        ("fri-sun", "sun,fri,sat"),
        ("7", "sun"),
        ("MON,wed", "mon,wed"),
    ],
)
def test_weekday_field_is_read_as_crontab_reads_it(weekdays: str, expected: str) -> None:
    trigger = crontab_trigger(f"0 7 * * {weekdays}", "UTC")
    start = datetime(2026, 11, 29, 0, 0, tzinfo=ZoneInfo("UTC"))  # a Sunday
    days, moment = set(), start
    for _ in range(7):
        moment = trigger.get_next_fire_time(None, moment)
        days.add(moment.strftime("%a").lower())
        moment += timedelta(minutes=1)
    order = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
    assert ",".join(d for d in order if d in days) == expected


def test_invalid_schedule_is_a_config_error_naming_the_setting(project: Path) -> None:
    with pytest.raises(ConfigError, match="DIGEST_SCHEDULE"):
        daily(project, DIGEST_SCHEDULE="0 7 * *")
    with pytest.raises(ConfigError, match="DIGEST_SCHEDULE"):
        daily(project, DIGEST_SCHEDULE="0 25 * * *")
    with pytest.raises(ConfigError, match="never names a day"):
        daily(project, DIGEST_SCHEDULE="0 7 31 2 *")


def test_restart_inside_the_window_gives_one_edition(project: Path) -> None:
    settings = daily(project)
    first = run_due(settings, berlin(2026, 11, 30, 7, 0, 5))
    assert [(r.slot, r.outcome) for r in first] == [("2026-11-30T0700", "sent")]
    add_article(project, "late-news")  # even with news, the slot is done
    again = run_due(settings, berlin(2026, 11, 30, 7, 40))
    assert again == []
    assert editions(settings) == ["2026-11-30T0700"]
    assert delivered(project) == ACTIVE


def test_slot_missed_at_start_runs_when_inside_the_window(project: Path) -> None:
    settings = daily(project)
    results = run_due(settings, berlin(2026, 11, 30, 8, 50))  # 110 minutes late
    assert [r.outcome for r in results] == ["sent"]
    assert editions(settings) == ["2026-11-30T0700"]


def test_clocks_going_back_fire_0230_twice_but_make_one_edition(project: Path) -> None:
    settings = daily(project, DIGEST_SCHEDULE="30 2 * * *")
    trigger = crontab_trigger(settings.schedule, settings.timezone)
    day = slots_between(trigger, berlin(2026, 10, 25, 0, 0), berlin(2026, 10, 25, 12, 0))
    # The hazard is real: APScheduler names two instants, an hour apart, for 02:30.
    assert [s.id for s in day] == ["2026-10-25T0230", "2026-10-25T0230"]
    assert day[1].at.timestamp() - day[0].at.timestamp() == 3600
    first = run_due(settings, berlin(2026, 10, 25, 2, 31, fold=0))
    assert [r.outcome for r in first] == ["sent"]
    add_article(project, "after-first-firing")
    second = run_due(settings, berlin(2026, 10, 25, 2, 31, fold=1))
    assert second == []
    assert editions(settings) == ["2026-10-25T0230"]
    assert delivered(project) == ACTIVE


def test_slot_with_no_new_articles_sends_nothing_and_is_shown(project: Path) -> None:
    settings = daily(project)
    run_due(settings, berlin(2026, 11, 30, 7, 1))
    results = run_due(settings, berlin(2026, 12, 1, 7, 1))
    assert [(r.slot, r.outcome) for r in results] == [("2026-12-01T0700", "skipped")]
    assert "too few new articles" in results[0].detail
    assert delivered(project) == ACTIVE
    db = store.connect(settings.database)
    audience.suppress(db, "gone@example.org", "bounced: 550 no such user")
    db.close()
    facts = schedule.report(settings, berlin(2026, 12, 1, 9, 0))
    assert facts["suppressions"] == 1
    assert facts["last_slot"]["outcome"] == "skipped"
    assert facts["skipped_slots"] == 1
    assert facts["next_slot"]["slot"] == "2026-12-02T0700"


def test_min_articles_holds_articles_back_for_a_later_slot(project: Path) -> None:
    strict = daily(project, DIGEST_MIN_ARTICLES="7")  # the samples hold six
    assert [r.outcome for r in run_due(strict, berlin(2026, 11, 30, 7, 1))] == ["skipped"]
    assert delivered(project) == 0
    add_article(project, "seventh")
    assert [r.outcome for r in run_due(strict, berlin(2026, 12, 1, 7, 1))] == ["sent"]
    assert editions(strict) == ["2026-12-01T0700"]
    assert delivered(project) == ACTIVE


def test_slots_older_than_the_window_are_skipped_and_logged(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = daily(project)
    run_due(settings, berlin(2026, 11, 30, 7, 1))
    add_article(project, "while-down")
    caplog.set_level(logging.INFO)
    results = run_due(settings, berlin(2026, 12, 2, 10, 0))  # 3 hours after 07:00
    assert results == []
    assert delivered(project) == ACTIVE
    warning = next(r for r in caplog.records if "missed:" in r.getMessage())
    assert warning.levelno == logging.WARNING
    assert "2026-12-01T0700 to 2026-12-02T0700" in warning.getMessage()
    facts = schedule.report(settings, berlin(2026, 12, 2, 10, 0))
    assert facts["skipped_slots"] == 2
    assert "catch_up_minutes" in facts["last_slot"]["detail"]
    # The article waits for the next slot that is on time.
    assert [r.outcome for r in run_due(settings, berlin(2026, 12, 3, 7, 0, 30))] == ["sent"]


def test_only_the_newest_due_slot_runs(project: Path) -> None:
    settings = daily(project, DIGEST_SCHEDULE="0 * * * *", DIGEST_CATCH_UP_MINUTES="180")
    run_due(settings, berlin(2026, 11, 30, 7, 1))
    add_article(project, "overnight")
    results = run_due(settings, berlin(2026, 11, 30, 9, 30))
    assert [(r.slot, r.outcome) for r in results] == [("2026-11-30T0900", "sent")]
    facts = schedule.report(settings, berlin(2026, 11, 30, 9, 30))
    outcomes = {s["slot"]: s["outcome"] for s in facts["slots"]}
    assert outcomes["2026-11-30T0800"] == "skipped"
    assert len(editions(settings)) == 2


def wait_for(condition: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def slot_outcomes(settings: Settings) -> list[str]:
    db = store.connect(settings.database)
    try:
        return [s.outcome for s in store_slots.recent_slots(db)]
    finally:
        db.close()


def test_two_schedulers_on_one_database_make_one_edition(project: Path) -> None:
    settings = settings_for(
        project, DIGEST_SCHEDULE="* * * * *", DIGEST_LEASE_BUSY="wait", DIGEST_LEASE_SECONDS="15"
    )
    stops = [threading.Event(), threading.Event()]
    threads = [
        threading.Thread(target=schedule.run_scheduler, args=(settings, stop)) for stop in stops
    ]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: "sent" in slot_outcomes(settings))
        facts = schedule.report(settings)
        assert facts["runner"]["active"]
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(30)
    assert len(editions(settings)) == 1
    assert delivered(project) == ACTIVE
    assert schedule.report(settings)["runner"] is None  # released on stop


def test_restarted_scheduler_sends_nothing_twice(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(project, DIGEST_SCHEDULE="* * * * *")
    caplog.set_level(logging.INFO)

    def ticks() -> int:  # a tick ends by naming the next slot
        return sum("next slot" in r.getMessage() for r in caplog.records)

    for start in (1, 2):
        stop = threading.Event()
        thread = threading.Thread(target=schedule.run_scheduler, args=(settings, stop))
        thread.start()
        try:
            wait_for(lambda: ticks() >= start)  # noqa: B023
        finally:
            stop.set()
            thread.join(30)
    assert len(editions(settings)) == 1
    assert delivered(project) == ACTIVE


def test_next_slot_is_strictly_after_now(project: Path) -> None:
    settings = daily(project)
    assert next_slot(settings.schedule_group, berlin(2026, 11, 30, 7, 0)).id == "2026-12-01T0700"  # type: ignore[union-attr]
    assert next_slot(settings.schedule_group, berlin(2026, 11, 30, 6, 59)).id == "2026-11-30T0700"  # type: ignore[union-attr]


def test_source_problems_are_logged_and_shown_in_status(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = project / "digest.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + '\n[[sections]]\nkey = "gone"\ntitle = "Gone"\nsources = ["samples/missing"]\n',
        encoding="utf-8",
    )
    settings = daily(project)
    caplog.set_level(logging.WARNING)
    assert [r.outcome for r in run_due(settings, berlin(2026, 11, 30, 7, 1))] == ["sent"]
    assert any("samples/missing" in r.getMessage() for r in caplog.records)
    found = schedule.report(settings, berlin(2026, 11, 30, 8, 0))["sources"]
    assert found["checked_at_slot"] == "2026-11-30T0700"
    assert len(found["problems"]) == 1 and "samples/missing" in found["problems"][0]
    assert found["counts"] == {"ok": 2, "error": 1}


def test_a_send_stopped_by_an_error_is_resumed_later_and_sent_once(
    project: Path, smtp_server: tuple[PortZeroController, RecordingHandler]
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    down = daily(
        project,
        DIGEST_SMTP_HOST="127.0.0.1",
        DIGEST_SMTP_PORT=str(dead_port),
        DIGEST_SMTP_SECURITY="none",
    )
    failed = run_due(down, berlin(2026, 11, 30, 7, 1))
    assert [(r.outcome, r.edition) for r in failed] == [("unfinished", "2026-11-30T0700")]
    assert "cannot reach SMTP server" in failed[0].detail
    assert run_due(down, berlin(2026, 11, 30, 7, 2), resume=False) == []  # retry not yet due
    controller, handler = smtp_server
    up = daily(
        project,
        DIGEST_SMTP_HOST="127.0.0.1",
        DIGEST_SMTP_PORT=str(controller.port),
        DIGEST_SMTP_SECURITY="none",
    )
    retried = run_due(up, berlin(2026, 11, 30, 7, 6))
    assert [(r.slot, r.outcome) for r in retried] == [("2026-11-30T0700", "sent")]
    recipients = [rcpt for _, rcpts, _ in handler.messages for rcpt in rcpts]
    assert len(recipients) == ACTIVE == len(set(recipients))
    assert editions(up) == ["2026-11-30T0700"]


def test_a_runner_paused_past_its_lease_sends_no_further_message(project: Path) -> None:
    # Three seconds, not one: a loaded machine may take a while between taking
    # the lease and checking the guard, which must still find it valid.
    settings = daily(project, DIGEST_LEASE_SECONDS="3")
    stop = threading.Event()
    runner = Runner(settings, stop)
    assert runner.guard.is_set()  # no lease yet: nothing may be sent
    assert runner.try_lease() is None
    assert not runner.guard.is_set()
    time.sleep(3.1)  # as if paused: no renewal within the lease
    assert runner.guard.is_set()
    assert runner.try_lease() is None  # renewed (nobody took it meanwhile)
    assert not runner.guard.is_set()
    stop.set()
    assert runner.guard.is_set()
    runner.release()


def test_status_names_a_runner_whose_lease_expired(project: Path) -> None:
    db = store.connect(project / "digest.db")
    holder = "digest run on gone pid 99"
    db.execute(
        "INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES ('runner', ?, ?, ?)",
        (holder, "2026-11-30T06:00:00+00:00", time.time() + 60),
    )
    db.close()
    shown = CliRunner().invoke(main, ["--database", str(project / "digest.db"), "status"])
    assert shown.exit_code == 0, shown.output
    assert f"none running (last: {holder}, no longer running)" in shown.output
    assert "none yet" in shown.output  # no slot and no edition so far


def test_deferred_deliveries_get_another_round_minutes_later_for_a_day(project: Path) -> None:
    # One run retries for seconds; a greylisting server wants minutes. The
    # runner's tick gives deferred rows another round after DEFERRED_WAIT,
    # for DEFERRED_FOR after the edition was made. Times are injected from
    # the real clock, since the ledger stamps real times.
    handler = ScriptedHandler()
    handler.rcpt_script["grace@example.org"] = ["451 4.7.1 greylisted, come back later"]
    controller = PortZeroController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        settings = daily(
            project,
            DIGEST_SCHEDULE="0 7 29 2 *",  # no slot comes due around now
            DIGEST_SMTP_HOST="127.0.0.1",
            DIGEST_SMTP_PORT=str(controller.port),
            DIGEST_SMTP_SECURITY="none",
            DIGEST_MAX_ATTEMPTS="1",
        )
        first = job.send(settings)
        assert first.report.counts == {"sent": 2, "deferred": 1}
        with (project / "subscribers.csv").open("a", encoding="utf-8") as csv:
            csv.write("newcomer@example.org,New,,active\n")  # joins after the edition
        real = datetime.now(BERLIN)
        assert run_due(settings, real + timedelta(minutes=5)) == []  # not waited long enough
        assert run_due(settings, real + timedelta(hours=25)) == []  # the edition is old news
        assert run_due(settings, real + timedelta(minutes=5), resume=False) == []
        retried = run_due(settings, real + DEFERRED_WAIT + timedelta(minutes=1))
        assert [(r.outcome, r.edition) for r in retried] == [("sent", first.edition.id)]  # type: ignore[union-attr]
        assert run_due(settings, real + 2 * DEFERRED_WAIT) == []  # nothing left deferred
    finally:
        controller.stop()
    recipients = [rcpt for _, rcpts, _ in handler.messages for rcpt in rcpts]
    assert sorted(recipients) == ["ada@example.org", "edsger@example.org", "grace@example.org"]


def test_processes_opening_a_new_database_at_once_all_get_in(tmp_path: Path) -> None:
    # `digest run` and `digest status` started together on a new file: the
    # switch to WAL could fail one of them at once with "database is locked"
    # (about one time in forty with four openers). Many new files, so the
    # race is met; each opener must get in.
    errors: list[Exception] = []

    def open_and_close(path: Path) -> None:
        try:
            store.connect(path).close()
        except Exception as e:  # any failure is the finding
            errors.append(e)

    for trial in range(150):
        path = tmp_path / f"new{trial}.db"
        openers = [threading.Thread(target=open_and_close, args=(path,)) for _ in range(4)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join()
    assert errors == []
