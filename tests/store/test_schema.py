"""The schema's migrations, on a database file made by release 0.1 (a dump of
a real one: one edition sent with a deferred row, a second cut short by a
dead SMTP server with rows pending, a suppression and a preference)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from digest import job, store
from digest.errors import StoreError
from digest.store import audience, editions, ledger, schema
from tests.conftest import settings_for
from tests.smtp_server import PortZeroController, RecordingHandler

RELEASE = Path(__file__).resolve().parent / "data" / "release-0.1.sql"
FIRST, SECOND = "2026-11-30T0537", "2026-11-30T0537-2"


def release_file(folder: Path) -> Path:
    path = folder / "digest.db"
    db = sqlite3.connect(path)
    db.executescript(RELEASE.read_text(encoding="utf-8"))
    db.close()
    return path


def table(path: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_a_release_file_is_upgraded_with_nothing_lost(tmp_path: Path) -> None:
    path = release_file(tmp_path)
    counts = {
        name: table(path, f"SELECT COUNT(*) FROM {name}")[0][0]
        for name in ("articles", "article_keys", "article_meta", "source_state", "suppressions")
    }
    with store.opened(path) as db:
        assert schema.version(db) == schema.LATEST
        assert {row.id: row.state for row in editions.recent(db)} == {
            FIRST: "sending",  # its deferred row is still being retried
            SECOND: "built",  # cut short before anyone got it: sent again
        }
        assert ledger.counts(db, FIRST) == {"sent": 2, "deferred": 1}
        assert ledger.counts(db, SECOND) == {}  # its pending rows are written again
        assert audience.state_of(db, "grace@example.org")[0] == "unsubscribed: by hand"
        assert audience.state_of(db, "edsger@example.org")[1] == {"science", "technology"}
        [deferred] = ledger.claim(db, FIRST, [ledger.DEFERRED], "w1")
        assert deferred.address == "edsger@example.org"
        assert deferred.message_id.startswith("<2026-11-30t0537.")
    for name, before in counts.items():
        assert table(path, f"SELECT COUNT(*) FROM {name}")[0][0] == before, name
    sent = table(path, f"SELECT COUNT(*) FROM articles WHERE sent_edition = '{SECOND}'")
    assert sent == [(1,)]  # the late article stays with its edition


def test_the_upgraded_file_finishes_the_cut_short_edition(
    project: Path, smtp_server: tuple[PortZeroController, RecordingHandler]
) -> None:
    release_file(project)
    controller, handler = smtp_server
    settings = settings_for(
        project,
        DIGEST_SMTP_HOST="127.0.0.1",
        DIGEST_SMTP_PORT=str(controller.port),
        DIGEST_SMTP_SECURITY="none",
    )
    result = job.send(settings)
    assert result.resumed and result.edition is not None and result.edition.id == SECOND
    # The fixture's list: Ada and Edsger active; Grace unsubscribed by hand in 0.1.
    recipients = sorted(r for _, rcpts, _ in handler.messages for r in rcpts)
    assert recipients == ["ada@example.org", "edsger@example.org"]
    assert "Late Breaking Story" in handler.parsed()[0].get_body(("plain",)).get_content()


def test_two_processes_upgrading_one_file_apply_each_migration_once(tmp_path: Path) -> None:
    path = release_file(tmp_path)
    errors: list[Exception] = []

    def upgrade() -> None:
        try:
            store.connect(path).close()
        except Exception as e:  # any failure is the finding
            errors.append(e)

    threads = [threading.Thread(target=upgrade) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    versions = table(path, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(m.version,) for m in schema.MIGRATIONS]


def test_a_file_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    store.connect(path).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO schema_version VALUES (999, 'from the future', '2030-01-01')")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version 999, newer than this digest"):
        store.connect(path)


def test_a_new_database_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "digest.db"
    store.connect(path).close()
    assert path.stat().st_mode & 0o777 == 0o600
