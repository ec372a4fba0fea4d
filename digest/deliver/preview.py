"""Looking before sending: the test copy (`digest send --to`), which is the
copy the list's subscriber of that address gets, and the dry run's counts,
which are what the fan-out would write. Both ask the audience, as the send
does, so neither can disagree with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from email_validator import EmailNotValidError, validate_email

from digest.config import Settings
from digest.deliver.audience import SEND, Copy, copies
from digest.deliver.dkim import signed
from digest.deliver.listing import everyone, from_signup, merged
from digest.deliver.lookup import find
from digest.deliver.message import envelope_address, one_off_message_id, render_message
from digest.deliver.policy import policy_from
from digest.deliver.run import audience_for, variants_for
from digest.deliver.subscribers import RowError
from digest.deliver.transports import Outcome, make_transport
from digest.edition import FULL
from digest.errors import DigestError
from digest.model import Edition
from digest.store import editions, ledger, signups
from digest.store.db import Database


def valid_address(address: str) -> str:
    try:
        return str(validate_email(address.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as e:
        raise DigestError(f"--to {address!r} is not a valid address: {e}") from e


def send_test_copy(settings: Settings, db: Database, edition: Edition, address: str) -> Outcome:
    """Send the copy ADDRESS would get, with a Message-ID of its own."""
    address = valid_address(address)
    variants = variants_for(settings, db, edition)
    copy = copy_for(settings, db, edition, address)
    if copy is not None and copy.variant is None:
        raise DigestError(
            f"{address} gets no copy of this edition ({copy.reason.replace('_', ' ')}); "
            "a test copy goes only where the real one would"
        )
    skeleton = variants(FULL if copy is None or copy.variant is None else copy.variant)
    member = None if copy is None else copy.subscriber
    address = envelope_address(address)
    message = render_message(
        skeleton,
        settings.base_url,
        address,
        member.name if member else "",
        one_off_message_id(skeleton),
        member.extra if member else (),
    )
    data = signed(message, policy_from(settings, db).dkim)
    channel = make_transport(settings.smtp).open()
    try:
        return channel.send(skeleton.bounce or skeleton.sender, address, data)
    finally:
        channel.close()


def copy_for(settings: Settings, db: Database, edition: Edition, address: str) -> Copy | None:
    """The copy the list's subscriber of ADDRESS gets; None when not on the list."""
    try:
        member = find(settings.subscribers, address)
    except DigestError:  # an unreadable list must not stop a test send
        member = None
    row = signups.confirmed_among(db, [address.lower()]).get(address.lower())
    if row is not None:
        member = from_signup(row) if member is None else merged(member, row)
    if member is None:
        return None
    return next(copies(audience_for(settings, edition), db, [member]))


@dataclass
class DryRun:
    """What a send of `edition` would do now."""

    edition: Edition
    state: str  # the stored state, or "new"
    counts: dict[str, int] = field(default_factory=dict)
    variants: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    row_errors: list[RowError] = field(default_factory=list)

    def as_dict(self, destination: str, ledger_counts: dict[str, int]) -> dict[str, Any]:
        return {
            "edition": self.edition.id,
            "state": self.state,
            "counts": self.counts,
            "variants": self.variants,
            "ledger": ledger_counts,
            "samples": self.samples,
            "row_errors": [str(e) for e in self.row_errors[:20]],
            "row_errors_total": len(self.row_errors),
            "destination": destination,
        }


def dry_run(settings: Settings, db: Database, edition: Edition) -> DryRun:
    """Counts of who would get what. Once the edition's ledger is written they
    come from it; before, from the audience over the list, streamed."""
    row = editions.get(db, edition.id)
    result = DryRun(edition, "new" if row is None else row.state)
    if row is not None and row.state != editions.BUILT:
        gone = ledger.count_open_suppressed(db, edition.id)
        result.counts = {
            "to_send": ledger.count_in(db, edition.id, ledger.OPEN_STATES) - gone,
            "suppressed": gone,
            "already_done": ledger.count_in(db, edition.id, ledger.FINAL_STATES),
        }
        return result
    result.counts = {"to_send": 0, "suppressed": 0, "no_copy": 0, "inactive": 0}
    chosen = copies(
        audience_for(settings, edition),
        db,
        everyone(settings.subscribers, db, result.row_errors.append),
    )
    for copy in chosen:
        reason = "to_send" if copy.reason == SEND else copy.reason
        result.counts[reason] += 1
        if copy.variant is not None:
            shown = copy.variant or "every section"
            result.variants[shown] = result.variants.get(shown, 0) + 1
            if len(result.samples) < 5:
                result.samples.append(copy.subscriber.email)
    return result
