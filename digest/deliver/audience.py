"""Who gets what: the one place that decides, for an edition, which copy each
subscriber gets (their sections, the empty note, suppressions, web
preferences). The send's fan-out, a `--to` test copy, the dry run's counts,
the progress total and the preview all ask here, so they always agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from digest.config import Look, Sender
from digest.deliver.message import MessageSkeleton, build_skeleton
from digest.deliver.subscribers import batches, current
from digest.edition import FULL, NOTE, for_sections, variant_sections
from digest.model import Edition, Subscriber
from digest.render import CompiledEmail, compile_edition, compile_note
from digest.store import audience as state
from digest.store.db import Database

SEND, SUPPRESSED, NO_COPY, INACTIVE = "send", "suppressed", "no_copy", "inactive"


class Copy(NamedTuple):
    """What one subscriber gets: a variant of the edition, or nothing and why.
    (A named tuple: one per reader of the list.)"""

    subscriber: Subscriber
    variant: str | None
    reason: str = SEND


@dataclass(frozen=True)
class Audience:
    """An edition and the rules that pick each reader's copy of it."""

    edition: Edition
    configured: frozenset[str] = frozenset()  # section keys in digest.toml
    empty_note: bool = False
    present: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        held = frozenset(s.key for s in self.edition.sections if s.articles)
        object.__setattr__(self, "present", held)
        object.__setattr__(self, "_decided", {})

    def variant_for(self, sections: frozenset[str]) -> str | None:
        """The copy for a reader of these sections (empty: every section).
        Section keys neither configured nor in the edition are ignored;
        nothing known left means every section."""
        decided: dict[frozenset[str], str | None] = self._decided  # type: ignore[attr-defined]
        if sections not in decided:
            decided[sections] = self._variant_for(sections)
        return decided[sections]

    def _variant_for(self, sections: frozenset[str]) -> str | None:
        known = self.configured | {s.key for s in self.edition.sections}
        chosen = sections & known or self.present
        got = chosen & self.present
        if not got:
            return NOTE if self.empty_note else None
        return FULL if got == self.present else ";".join(sorted(got))

    def decide(self, sub: Subscriber, reason: str | None = None) -> Copy:
        """`sub` with the database's preferences applied; `reason` its suppression."""
        if reason is not None:
            return Copy(sub, None, SUPPRESSED)
        if not sub.active:
            return Copy(sub, None, INACTIVE)
        variant = self.variant_for(sub.sections)
        return Copy(sub, variant, SEND if variant is not None else NO_COPY)


def copies(audience: Audience, db: Database, subscribers: Iterable[Subscriber]) -> Iterator[Copy]:
    """Each subscriber's copy, with suppressions and preferences looked up a
    batch at a time (500 addresses with SQLite, 10,000 with PostgreSQL):
    memory stays flat however long the list is."""
    for batch in batches(subscribers, db.batch):
        yield from decided(audience, db, batch)


def decided(audience: Audience, db: Database, batch: list[Subscriber]) -> list[Copy]:
    """`copies` for one batch, with one look-up for all of it."""
    keys = [sub.email.lower() for sub in batch]
    reasons, chosen = state.states_among(db, keys)
    return [
        audience.decide(current(sub, None, chosen.get(key)), reasons.get(key))
        for sub, key in zip(batch, keys, strict=True)
    ]


class Variants:
    """The compiled message of each variant, built on first use: MJML is
    compiled once per edition and distinct section set, never per reader."""

    def __init__(self, edition: Edition, look: Look, sender: Sender, secret: bytes) -> None:
        self.edition, self.look, self.sender, self.secret = edition, look, sender, secret
        self.compiled: dict[str, CompiledEmail] = {}
        self.skeletons: dict[str, MessageSkeleton] = {}

    def compile(self, variant: str) -> CompiledEmail:
        if variant not in self.compiled:
            if variant == NOTE:
                self.compiled[variant] = compile_note(self.edition, self.look)
            else:
                shown = for_sections(self.edition, variant_sections(variant))
                self.compiled[variant] = compile_edition(shown, self.look)
        return self.compiled[variant]

    def __call__(self, variant: str) -> MessageSkeleton:
        if variant not in self.skeletons:
            self.skeletons[variant] = build_skeleton(
                self.compile(variant), self.sender, self.secret
            )
        return self.skeletons[variant]
