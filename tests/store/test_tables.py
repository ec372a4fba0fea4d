"""Every table behind the one store interface, on both backends (a SQLite
file and a throwaway PostgreSQL database): the same calls give the same
answers, upserts keep what they must, transactions roll back whole."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from digest import store
from digest.model import LedgerEntry
from digest.store import articles, audience, editions, ledger, mailqueue, meta, schema, slots
from digest.store.db import Database

ENTRY = LedgerEntry("ada@example.org", "Ada@example.org", "Ada", (("Company", "AE"),), "", "<m>")


@pytest.fixture
def db(database: str) -> Database:
    return store.connect(database)


def test_the_schema_is_current_and_connecting_again_changes_nothing(
    database: str, db: Database
) -> None:
    assert schema.version(db) == schema.LATEST
    db.close()
    again = store.connect(database)
    assert schema.version(again) == schema.LATEST
    again.close()


def test_articles_are_collected_claimed_and_given_back(db: Database) -> None:
    body = json.dumps({"id": "a1", "title": "T", "url": "https://x.org/1"})
    rows = [("a1", "tech", "https://x.org/1", "T", body, "feed", "h1", None)]
    with db.transaction():
        articles.add_collected(db, rows)
        articles.add_collected(db, rows)  # a second time changes nothing
        articles.add_article_keys(db, "a1", ["url:https://x.org/1", "hash:h1"])
    assert articles.find_article(db, ["hash:h1"]) == articles.KnownArticle(
        "a1", "hash:h1", False, "h1"
    )
    assert articles.unsent_articles(db, "tech", ["feed"]) == [body]
    assert articles.unsent_articles(db, "tech", ["other"]) == []  # not configured now
    articles.claim_articles(db, "e1", ["a1"])
    assert articles.unsent_articles(db, "tech", ["feed"]) == []
    assert articles.release_articles(db, "e1", ["a1"]) == 1
    assert articles.unsent_articles(db, "tech", ["feed"]) == [body]


def test_source_health_counts_failures_and_keeps_validators(db: Database) -> None:
    articles.record_source_success(db, "feed", ('"v1"', "Mon"), 10, 3)
    articles.record_source_failure(db, "feed", "HTTP 500")
    articles.record_source_failure(db, "feed", "HTTP 500")
    [health] = articles.source_health(db, threshold=2)
    assert (health.failures, health.failing, health.items, health.total_new) == (2, True, 10, 3)
    assert articles.feed_state(db, "feed") == ('"v1"', "Mon")


def test_editions_move_through_their_states(db: Database) -> None:
    editions.record(db, "2026-11-30T0700", editions.next_number(db), "T", "{}")
    assert editions.free_id(db, "2026-11-30T0700") == "2026-11-30T0700-2"
    assert [r.id for r in editions.unfinished(db)] == ["2026-11-30T0700"]
    editions.set_state(db, "2026-11-30T0700", editions.SENDING)
    assert editions.unfinished(db) == []  # sending, but no row left to try
    ledger.add(db, "2026-11-30T0700", [ENTRY])
    assert [r.state for r in editions.unfinished(db)] == ["sending"]
    assert editions.published_count(db) == 1 and editions.next_number(db) == 2


def test_the_ledger_keeps_message_ids_and_final_rows(db: Database) -> None:
    ledger.add(db, "e", [ENTRY])
    moved = LedgerEntry("ada@example.org", "ada@example.org", "Ada L.", (), "science", "<other>")
    ledger.add(db, "e", [moved])  # pending: the newer copy details win, not the Message-ID
    [row] = ledger.claim(db, "e", [ledger.PENDING], "w1")
    assert (row.name, row.variant, row.message_id, row.fields) == ("Ada L.", "science", "<m>", ())
    ledger.record_results(
        db,
        "e",
        [("ada@example.org", ledger.BOUNCED, "550 no")],
        [("Ada@example.org", "bounced: 550 no")],
    )
    ledger.add(db, "e", [ENTRY])  # final: nothing changes
    assert ledger.counts(db, "e") == {"bounced": 1}
    [row] = ledger.claim(db, "e", [ledger.BOUNCED], "w1")
    assert (row.name, row.attempts) == ("Ada L.", 1)
    assert audience.state_of(db, "ada@example.org")[0] == "bounced: 550 no"


def test_ledger_is_claimed_in_address_order_and_cancels_what_is_open(db: Database) -> None:
    entries = [
        LedgerEntry(f"r{n:03}@x.org", f"r{n:03}@x.org", "", (), "", f"<{n}>") for n in range(7)
    ]
    ledger.add(db, "e", entries)
    first = ledger.claim(db, "e", [ledger.PENDING], "w1", limit=3)
    second = ledger.claim(db, "e", [ledger.PENDING], "w2", limit=3)
    assert (len(first), len(second)) == (3, 3)
    assert [r.email for r in first + second] == [e.email for e in entries[:6]]
    assert ledger.counts(db, "e") == {"sending": 6, "pending": 1}
    assert ledger.reset_sending(db, "e") == 6
    ledger.record_results(db, "e", [("r001@x.org", ledger.SENT, "250 ok")], [])
    assert ledger.cancel_open(db, "e") == 6
    assert ledger.counts(db, "e") == {"sent": 1, "cancelled": 6}
    assert ledger.variants(db, "e", ledger.SENT) == {""}


def test_concurrent_claims_skip_held_rows_and_keep_to_their_limit(pg_url: str) -> None:
    first, second = store.connect(pg_url), store.connect(pg_url)
    entries = [
        LedgerEntry(f"r{n:03}@x.org", f"r{n:03}@x.org", "", (), "", f"<{n}>") for n in range(9)
    ]
    ledger.add(first, "e", entries)
    with first.transaction():  # the first worker's rows stay locked meanwhile
        held = ledger.claim(first, "e", [ledger.PENDING], "w1", limit=4)
        taken = ledger.claim(second, "e", [ledger.PENDING], "w2", limit=4)
    assert [r.email for r in held] == [e.email for e in entries[:4]]
    assert [r.email for r in taken] == [e.email for e in entries[4:8]]
    assert ledger.counts(second, "e") == {"sending": 8, "pending": 1}
    first.close()
    second.close()


def test_suppressions_and_preferences_are_read_by_batch(db: Database) -> None:
    audience.suppress(db, "Grace@Example.org", "unsubscribed: web page")
    audience.suppress(db, "grace@example.org", "bounced: 550")  # the latest reason wins
    audience.set_preferences(db, "ada@example.org", ["tech", "science"])
    keys = [f"r{n}@x.org" for n in range(1200)] + ["grace@example.org", "ada@example.org"]
    assert audience.suppressed_among(db, keys) == {"grace@example.org": "bounced: 550"}
    assert audience.preferences_among(db, keys) == {"ada@example.org": {"tech", "science"}}
    audience.set_preferences(db, "grace@example.org", [])  # suppressed, and chose every section
    assert audience.states_among(db, keys) == (
        {"grace@example.org": "bounced: 550"},
        {"ada@example.org": {"tech", "science"}, "grace@example.org": frozenset()},
    )
    assert audience.unsuppress(db, "grace@example.org", "bounced") is True
    assert audience.count_suppressed(db) == 0


def test_slots_are_claimed_once_and_the_signing_key_is_shared(database: str, db: Database) -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 11, 30, 7, tzinfo=UTC)
    assert slots.claim_slot(db, "2026-11-30T0700", at) is True
    assert slots.claim_slot(db, "2026-11-30T0700", at) is False
    slots.finish_slot(db, "2026-11-30T0700", slots.SENT, "3 sent", "e", ("p",))
    row = slots.slot(db, "2026-11-30T0700")
    assert row is not None and (row.outcome, row.edition_id, row.problems) == ("sent", "e", ("p",))
    key = meta.signing_key(db, "")
    other = store.connect(database)
    assert meta.signing_key(other, "") == key and len(key) == 32
    assert meta.signing_key(other, "configured") == b"configured"
    other.close()


def test_a_transaction_that_fails_leaves_nothing(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction():
        audience.suppress(db, "ada@example.org", "unsubscribed: web page")
        raise RuntimeError("half way")
    assert audience.count_suppressed(db) == 0


def test_two_connections_number_editions_one_after_the_other(database: str) -> None:
    from digest.edition import lifecycle
    from digest.model import Edition

    first, second = store.connect(database), store.connect(database)
    made = [
        lifecycle.record(db, Edition("2026-11-30T0700", "T", 1, "2026-11-30T07:00"))
        for db in (first, second)
    ]
    assert [(e.id, e.number) for e in made] == [("2026-11-30T0700", 1), ("2026-11-30T0700-2", 2)]
    first.close()
    second.close()


def test_sign_ups_and_request_counts(db: Database) -> None:
    from digest.store import limits, signups

    signups.request(db, "Ada@Example.org", "Ada", ["tech"], "Europe/London", "2026-11-30T07:00")
    signups.request(db, "ada@example.org", "Ada L.", ["science"], "", "2026-11-30T08:00")
    assert signups.confirm(db, "ada@example.org", "2026-11-30T07:00") is False  # replaced
    assert signups.confirm(db, "ada@example.org", "2026-11-30T08:00") is True
    [row] = signups.confirmed_after(db, "")
    assert (row.email, row.name, row.sections) == ("ada@example.org", "Ada L.", {"science"})
    assert set(signups.confirmed_among(db, ["ada@example.org", "x@y.org"])) == {"ada@example.org"}
    assert [limits.hit(db, "k", "h:2026-11-30T07", 2) for _ in range(3)] == [True, True, False]
    limits.forget_before(db, "h:2026-11-30T08")
    assert limits.hit(db, "k", "h:2026-11-30T07", 2) is True


@pytest.mark.parametrize("fresh", [True, False])
def test_hostile_values_reach_the_ledger_intact(db: Database, fresh: bool) -> None:
    name = "Tab\there, new\nline, back\\slash \\N, carriage\r return, ünïcode"
    fields = (("Company", "a\tb\\c\nd"),)
    entry = LedgerEntry("e@x.org", "E@x.org", name, fields, "tech;science", "<m\\1>", 7)
    ledger.add(db, "ed", [entry], fresh=fresh)
    [row] = ledger.claim(db, "ed", [ledger.PENDING], "w1")
    assert (row.name, row.fields, row.message_id, row.line) == (name, fields, "<m\\1>", 7)


def test_one_hostile_row_among_plain_ones_is_escaped_and_the_rest_kept(db: Database) -> None:
    # COPY text is escaped a whole batch at once when no value needs it:
    # one value that does must not slip through with the plain rows.
    plain = [
        LedgerEntry(f"r{n}@x.org", f"R{n}@x.org", f"R {n}", (), "", f"<m{n}>") for n in range(5)
    ]
    odd = LedgerEntry("odd@x.org", "odd@x.org", "a\tb", (("k", "c\\d"),), "", "<m\r>")
    ledger.add(db, "ed", [*plain[:3], odd, *plain[3:]], fresh=True)
    rows = {r.email: r for r in ledger.claim(db, "ed", [ledger.PENDING], "w1")}
    assert [rows[e.email].name for e in plain] == [e.name for e in plain]
    assert (rows["odd@x.org"].name, rows["odd@x.org"].fields) == ("a\tb", (("k", "c\\d"),))
    assert rows["odd@x.org"].message_id == "<m\r>"


def test_the_mail_queue_keeps_mail_until_taken_and_never_hands_it_out_twice(db: Database) -> None:
    first = mailqueue.add(db, "bounces@x.org", "a@x.org", b"Subject: one\r\n\r\n\xc3\xa9\r\n")
    second = mailqueue.add(db, "bounces@x.org", "b@x.org", b"Subject: two\r\n\r\nhi\r\n")
    [taken] = mailqueue.claim(db, timedelta(minutes=10), limit=1)
    assert (taken.key, taken.raw) == (first, b"Subject: one\r\n\r\n\xc3\xa9\r\n")
    # Held: another sender (another serve) gets the other one, then nothing.
    assert [q.key for q in mailqueue.claim(db, timedelta(minutes=10))] == [second]
    assert mailqueue.claim(db, timedelta(minutes=10)) == []
    assert (mailqueue.due(db), mailqueue.waiting(db)) == (0, 2)
    mailqueue.later(db, first, "421 busy", timedelta(seconds=-1))  # due again
    [again] = mailqueue.claim(db, timedelta(minutes=10))
    assert (again.key, again.attempts) == (first, 1)
    mailqueue.remove(db, first)
    mailqueue.remove(db, second)
    assert mailqueue.waiting(db) == 0
