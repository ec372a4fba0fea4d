"""Who gets what, decided in one place: variants by sections, the note,
suppressions and preferences (looked up by batch), on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from digest import store
from digest.deliver.audience import INACTIVE, NO_COPY, SEND, SUPPRESSED, Audience, copies
from digest.edition import FULL, NOTE
from digest.model import Edition, EditionArticle, EditionSection, Subscriber
from digest.store import audience as state


def edition(*keys: str) -> Edition:
    sections = tuple(
        EditionSection(key, key.title(), (EditionArticle(f"{key}-1", "T", "https://x.org/"),))
        for key in keys
    )
    return Edition("e", "T", 1, "2026-11-30T07:00", sections)


def test_a_reader_gets_the_variant_of_the_sections_the_edition_holds() -> None:
    both = Audience(edition("science", "technology"), frozenset({"science", "technology"}))
    assert both.variant_for(frozenset()) == FULL
    assert both.variant_for(frozenset({"science", "technology"})) == FULL
    assert both.variant_for(frozenset({"science"})) == "science"
    assert both.variant_for(frozenset({"typo"})) == FULL  # nothing known: every section
    one = Audience(edition("technology"), frozenset({"science", "technology"}))
    # The edition has technology only: a reader of both gets it whole.
    assert one.variant_for(frozenset({"science", "technology"})) == FULL
    assert one.variant_for(frozenset({"science"})) is None
    noted = Audience(edition("technology"), frozenset({"science", "technology"}), empty_note=True)
    assert noted.variant_for(frozenset({"science"})) == NOTE


def test_database_state_beats_the_list_and_is_read_500_addresses_a_query(tmp_path: Path) -> None:
    db = store.connect(tmp_path / "digest.db")
    listed = [Subscriber(f"r{n}@example.org", sections=frozenset({"science"})) for n in range(1200)]
    listed.append(Subscriber("gone@example.org", status="unsubscribed"))
    state.suppress(db, "r5@example.org", "unsubscribed: web page")
    state.set_preferences(db, "r7@example.org", ["technology"])
    statements: list[str] = []
    db.connection.set_trace_callback(statements.append)
    audience = Audience(edition("technology"), frozenset({"science", "technology"}))
    decided = {c.subscriber.email: c for c in copies(audience, db, listed)}
    db.connection.set_trace_callback(None)
    assert decided["r5@example.org"].reason == SUPPRESSED
    assert decided["r7@example.org"].reason == SEND and decided["r7@example.org"].variant == FULL
    assert decided["r8@example.org"].reason == NO_COPY  # science only, none this time
    assert decided["gone@example.org"].reason == INACTIVE
    # Three batches of at most 500: one query each, for suppressions and preferences.
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 3
    db.close()
