"""The editor's preview: what the next `digest send` would send (the
unfinished edition, or what is new after collecting), or an edition file,
rendered as a chosen subscriber gets it. The copy each reader gets comes
from the audience, as in the send. The server lives in `server.py`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from digest import job
from digest.config import Settings
from digest.deliver.audience import SEND, Copy, Variants, copies
from digest.deliver.listing import everyone
from digest.deliver.run import audience_for
from digest.edition import NOTE, load_edition
from digest.errors import DigestError
from digest.model import Edition, Subscriber
from digest.render import CompiledEmail, field_values, personalize
from digest.store import Database, opened

PICKER_LIMIT = 200  # rows of the subscriber list offered in the picker
SAMPLE = "sample"
NOTHING_NEW = (
    "Nothing new to send: no unfinished edition and no new articles. Add articles to a "
    "source, or preview an edition file with --edition."
)
WHY_NOTHING = {
    "no_copy": "none of their sections has articles this time",
    "suppressed": "they unsubscribed or their address bounced",
    "inactive": "their status in the list is not active",
}


@dataclass(frozen=True)
class Reader:
    """Someone the editor can preview the email as, with the copy they get."""

    key: str
    label: str
    copy: Copy


@dataclass(frozen=True)
class Built:
    """One build of the preview: the edition, who can read it, what went wrong."""

    settings: Settings
    edition: Edition | None
    readers: tuple[Reader, ...]
    problems: tuple[str, ...]
    error: str = ""


@dataclass(frozen=True)
class View:
    """The email as one reader gets it, or why they get nothing."""

    reader: Reader
    compiled: CompiledEmail | None
    html: str
    text: str
    note: bool = False  # the short note sent when their sections have nothing
    why_nothing: str = ""


def sample_reader() -> Reader:
    sample = Subscriber("reader@example.org")
    return Reader(SAMPLE, "Sample reader (every section)", Copy(sample, ""))


def edition_to_show(
    settings: Settings, db: Database, edition_file: Path | None
) -> tuple[Edition | None, list[str]]:
    """The edition file as it is now, or what the next send would send."""
    if edition_file is not None:
        return load_edition(edition_file), []
    found, problems = job.next_edition(settings, db)
    return found, [f"{p.source}: {p.message}" for p in problems]


def readers(
    settings: Settings, db: Database, edition: Edition
) -> tuple[tuple[Reader, ...], list[str]]:
    """The sample reader and the first rows of the list, each with the copy
    the send would give them (database preferences and suppressions applied)."""
    found, problems = [sample_reader()], list[str]()
    if not settings.subscribers.is_file():
        return tuple(found), problems
    # The list as the send reads it: CSV rows with what confirmed sign-ups
    # say about them, then sign-ups the CSV does not hold.
    listed = everyone(settings.subscribers, db, lambda row: problems.append(str(row)))
    rows = list(islice(listed, PICKER_LIMIT))
    found += [_reader(copy) for copy in copies(audience_for(settings, edition), db, rows)]
    return tuple(found), problems


def _reader(copy: Copy) -> Reader:
    sub = copy.subscriber
    chosen = ", ".join(sorted(sub.sections)) or "every section"
    status = "" if copy.reason in (SEND, "no_copy") else f", {copy.reason}"
    label = f"{sub.name or sub.email} <{sub.email}> ({chosen}{status})"
    if sub.line:
        return Reader(f"line-{sub.line}", label, copy)
    # A sign-up that is only in the database has no line: a key from its address.
    digest = hashlib.blake2b(sub.email.lower().encode(), digest_size=6).hexdigest()
    return Reader(f"signup-{digest}", f"{label} [sign-up]", copy)


def view_for(built: Built, key: str) -> View:
    """Compile (or take from the cache) the copy this reader gets, and fill it."""
    reader = next((r for r in built.readers if r.key == key), built.readers[0])
    if built.edition is None:
        return View(reader, None, "", "")
    variant = reader.copy.variant
    if variant is None:
        return View(reader, None, "", "", why_nothing=WHY_NOTHING.get(reader.copy.reason, ""))
    compiled = Variants(built.edition, built.settings.look, built.settings.sender, b"").compile(
        variant
    )
    html, text = personalize(compiled, personal_values(built.settings, reader.copy.subscriber))
    return View(reader, compiled, html, text, note=variant == NOTE)


def personal_values(settings: Settings, subscriber: Subscriber) -> dict[str, str]:
    """What a real send would splice in, with placeholder tokens."""
    base = settings.base_url.rstrip("/")
    return {
        **field_values(subscriber.extra),
        "name": subscriber.name or "reader",
        "email": subscriber.email,
        "unsubscribe_url": f"{base}/unsubscribe?token=preview",
        "preferences_url": f"{base}/preferences?token=preview",
    }


def build(settings: Settings, edition_file: Path | None) -> Built:
    """A whole preview build; what fails is reported on the page, not raised."""
    try:
        with opened(settings.database) as db:
            edition, problems = edition_to_show(settings, db, edition_file)
            if edition is None:
                return Built(settings, None, (sample_reader(),), tuple(problems), NOTHING_NEW)
            try:
                found, trouble = readers(settings, db, edition)
            except DigestError as e:
                found, trouble = (sample_reader(),), [str(e)]
    except DigestError as e:
        return Built(settings, None, (sample_reader(),), (), str(e))
    return Built(settings, edition, found, tuple(problems + trouble))
