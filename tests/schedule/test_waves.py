"""Each reader's morning (DIGEST_LOCAL_TIME): a slot opens when it comes in
the earliest reader's zone, and the edition goes out in waves, each reader's
ledger row due at the edition's wall-clock time in their zone. Real sends to
the aiosmtpd fixture, a real SQLite file, `digest status` from the CLI."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from digest import edition, job, schedule, store
from digest.cli import main
from digest.config import Schedule, Settings
from digest.schedule.slots import next_slot, plan
from digest.store import editions, ledger
from digest.store import slots as store_slots
from tests.conftest import settings_for
from tests.smtp_server import PortZeroController, RecordingHandler

Server = tuple[PortZeroController, RecordingHandler]
LIST = """email,name,sections,status,timezone
tokyo@example.org,Tomoko,,active,Asia/Tokyo
berlin@example.org,Bernd,,active,
york@example.org,Yolanda,,active,America/New_York
"""
ZONES = frozenset({"Asia/Tokyo", "America/New_York"})
DAILY = Schedule(cron="0 7 * * *", timezone="Europe/Berlin", catch_up_minutes=120, local_time=True)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local_settings(project: Path, smtp: Server, **env: str) -> Settings:
    (project / "subscribers.csv").write_text(LIST, encoding="utf-8")
    values = {
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(smtp[0].port),
        "DIGEST_SMTP_SECURITY": "none",
        "DIGEST_LOCAL_TIME": "true",
        # No slot of the schedule comes near: only waves are due in these tests.
        "DIGEST_SCHEDULE": "0 7 29 2 *",
    }
    return settings_for(project, **{**values, **env})


def received(smtp: Server) -> list[str]:
    return sorted(rcpt for _, rcpts, _ in smtp[1].messages for rcpt in rcpts)


def test_a_slot_opens_in_the_earliest_zone_and_lives_until_the_last(project: Path) -> None:
    with store.opened(project / "digest.db") as db:
        # 07:00 in Tokyo is 22:00 UTC the day before: the slot opens then.
        assert plan(DAILY, db, utc("2026-11-29T21:59:00"), ZONES).run is None
        opened = plan(DAILY, db, utc("2026-11-29T22:00:30"), ZONES).run
        assert opened is not None and opened.id == "2026-11-30T0700"
        assert opened.at == utc("2026-11-29T22:00:00")
        upcoming = next_slot(DAILY, utc("2026-11-29T12:00:00"), ZONES)
        assert upcoming is not None and upcoming.at == utc("2026-11-29T22:00:00")
        # Without readers elsewhere, the digest's own zone: 06:00 UTC in winter.
        alone = next_slot(DAILY, utc("2026-11-29T12:00:00"), frozenset())
        assert alone is not None and alone.at == utc("2026-11-30T06:00:00")
        store_slots.claim_slot(db, opened.id, opened.at)
        store_slots.finish_slot(db, opened.id, store_slots.SENT)
        # Berlin's and New York's 07:00 are the same slot: nothing new to run.
        assert plan(DAILY, db, utc("2026-11-30T06:00:30"), ZONES).run is None
        # A runner down since Tokyo's 07:00 of the next day, back at 11:00 UTC:
        # New York (12:00 UTC) still waits for that slot, so it runs now.
        late = plan(DAILY, db, utc("2026-12-01T11:00:00"), ZONES)
        assert late.run is not None and late.run.id == "2026-12-01T0700"
        # Back only after New York's 07:00 and the catch-up window: missed.
        gone = plan(DAILY, db, utc("2026-12-01T15:00:00"), ZONES)
        assert gone.run is None and [s.id for s in gone.missed] == ["2026-12-01T0700"]


def edition_made_at(settings: Settings, project: Path, moment: datetime) -> Path:
    """An edition file made for `moment` in the digest's zone (as a slot's is)."""
    built = job.build(settings, [], None, project / "out")
    data = json.loads(built.paths["edition"].read_text(encoding="utf-8"))
    local = moment.astimezone(ZoneInfo(settings.timezone))
    data["created"] = local.isoformat(timespec="seconds")
    data["id"] = edition.edition_id_for(local)
    built.paths["edition"].write_text(json.dumps(data), encoding="utf-8")
    return built.paths["edition"]


def test_an_edition_goes_out_in_waves_with_the_ledger_and_status_per_wave(
    project: Path, smtp_server: Server
) -> None:
    settings = local_settings(project, smtp_server)
    # Made for a wall-clock time two seconds ahead: Berlin's wave is due then,
    # Tokyo's (hours ahead) has passed and goes at once, New York's waits.
    soon = datetime.now(UTC) + timedelta(seconds=2)
    result = job.send(settings, edition_made_at(settings, project, soon))
    assert result.edition is not None
    edition_id = result.edition.id
    assert received(smtp_server) == ["tokyo@example.org"]
    assert result.delivered.waiting == 2 and not result.delivered.done
    with store.opened(settings.database) as db:
        assert editions.get(db, edition_id).state == editions.SENDING  # type: ignore[union-attr]
        assert editions.unfinished(db) == []  # nothing due: a send makes something new
        waves = ledger.waves(db, edition_id)
    york_due = soon.astimezone(ZoneInfo("Europe/Berlin")).replace(
        tzinfo=ZoneInfo("America/New_York")
    )
    assert [w["due_at"] for w in waves] == [
        "",
        soon.replace(microsecond=0).isoformat(),
        york_due.astimezone(UTC).isoformat(timespec="seconds"),
    ]
    assert [w["deliveries"] for w in waves] == [{"sent": 1}, {"pending": 1}, {"pending": 1}]
    status = CliRunner().invoke(main, ["status"], env=env(settings))
    assert status.exit_code == 0, status.output
    assert "wave at once" in status.output and "1 pending" in status.output
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 1.1)
    done = schedule.run_once(settings)  # the runner: Berlin's wave has come
    assert received(smtp_server) == ["berlin@example.org", "tokyo@example.org"]
    assert [r.outcome for r in done] == ["waiting"] and "1 wait" in done[0].detail
    with store.opened(settings.database) as db:
        assert editions.get(db, edition_id).state == editions.SENDING  # type: ignore[union-attr]
        assert ledger.status_of(db, edition_id, "york@example.org") == "pending"
    # Nothing more is due: another run sends nothing and nobody twice.
    assert schedule.run_once(settings) == []
    assert len(smtp_server[1].messages) == 2


def test_the_last_wave_finishes_the_edition(project: Path, smtp_server: Server) -> None:
    # A zone whose wall-clock time comes a second after the digest's: UTC is
    # an hour behind Berlin in winter, so made for Berlin-one-hour-ago...
    settings = local_settings(project, smtp_server)
    (project / "subscribers.csv").write_text(
        "email,name,timezone\nearly@example.org,E,Asia/Tokyo\nlater@example.org,L,UTC\n",
        encoding="utf-8",
    )
    berlin = ZoneInfo("Europe/Berlin")
    soon = datetime.now(UTC) + timedelta(seconds=2)
    offset = soon.astimezone(berlin).utcoffset()
    assert offset is not None
    # ...so that the wall time, read in UTC, is two seconds from now.
    result = job.send(settings, edition_made_at(settings, project, soon - offset))
    assert result.edition is not None
    assert received(smtp_server) == ["early@example.org"]
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 1.1)
    schedule.run_once(settings)
    assert received(smtp_server) == ["early@example.org", "later@example.org"]
    with store.opened(settings.database) as db:
        assert editions.get(db, result.edition.id).state == editions.SENT  # type: ignore[union-attr]


def test_without_local_time_everyone_is_due_at_once(project: Path, smtp_server: Server) -> None:
    settings = local_settings(project, smtp_server, DIGEST_LOCAL_TIME="false")
    result = job.send(settings)
    assert result.delivered.done and result.delivered.waiting == 0
    assert received(smtp_server) == [
        "berlin@example.org",
        "tokyo@example.org",
        "york@example.org",
    ]


def env(settings: Settings) -> dict[str, str]:
    return {
        "DIGEST_DATABASE": str(settings.database),
        "DIGEST_SUBSCRIBERS": str(settings.subscribers),
        "DIGEST_LOCAL_TIME": "true",
    }
