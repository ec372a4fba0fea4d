"""Delivering one edition, start to end: the fan-out to the ledger when it
has not happened yet, the send loop over the rows still to try, and the
edition's state afterwards. Whatever stops it leaves the edition to resume.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import chain
from urllib.parse import urlsplit

from digest.config import Settings
from digest.config.load import is_loopback
from digest.deliver.audience import Audience, Variants, decided
from digest.deliver.fanout import FanOut, fan_out
from digest.deliver.listing import everyone_by_batch
from digest.deliver.message import sender_address
from digest.deliver.policy import policy_from
from digest.deliver.send import DeliveryReport, ProgressFn, deliver
from digest.deliver.signer import signing
from digest.deliver.stored import StoredVariants
from digest.deliver.subscribers import RowError
from digest.deliver.transports import make_transport
from digest.deliver.waves import Waves
from digest.deliver.worker import registered
from digest.edition import FULL
from digest.edition.lifecycle import finish_if_done
from digest.model import Edition
from digest.store import editions, ledger, meta
from digest.store.db import Database

log = logging.getLogger(__name__)


@dataclass
class Delivered:
    """What delivering an edition did, for the caller to report."""

    destination: str = ""
    html_bytes: int = 0
    fan_out: FanOut | None = None
    report: DeliveryReport = field(default_factory=DeliveryReport)
    row_errors: list[RowError] = field(default_factory=list)
    done: bool = False  # every recipient has a final ledger row
    waiting: int = 0  # rows of later waves (local time), not yet due
    next_wave: str = ""  # ISO UTC time the next of them comes due


def audience_for(settings: Settings, edition: Edition) -> Audience:
    return Audience(edition, frozenset(s.key for s in settings.sections), settings.empty_note)


def variants_for(settings: Settings, db: Database, edition: Edition) -> Variants:
    secret = meta.signing_key(db, settings.secret_key)
    return Variants(edition, settings.look, settings.sender, secret)


def deliver_edition(
    settings: Settings,
    db: Database,
    edition: Edition,
    stop: threading.Event | None = None,
    progress: ProgressFn | None = None,
    statuses: tuple[str, ...] = (ledger.PENDING, ledger.DEFERRED),
    tried_before: str | None = None,
) -> Delivered:
    """Fan out (if the edition is still `built`) and keep its compiled copies,
    then send every row in `statuses`; the edition is `sent` once no row is
    left to try."""
    warn_if_links_unreachable(settings)
    moment = datetime.now(UTC)
    compiler = variants_for(settings, db, edition)
    stored = StoredVariants(db, edition.id, compiler.secret, compiler, settings.base_url)
    transport = make_transport(settings.smtp)
    result = Delivered(transport.description, compiler.compile(FULL).html_bytes)
    row = editions.get(db, edition.id)
    if row is not None and row.state == editions.BUILT:
        waves = Waves(edition.created, settings.timezone, moment) if settings.local_time else None
        result.fan_out = _fan_out(settings, db, edition, compiler.secret, result.row_errors, waves)
        stored.store(ledger.variants(db, edition.id))
        editions.set_state(db, edition.id, editions.SENDING)
    variants = ledger.variants(db, edition.id)
    base = stored.link_base(min(variants)) if variants else settings.base_url
    due_by = moment.isoformat(timespec="seconds")
    policy = replace(
        policy_from(settings, db), statuses=statuses, tried_before=tried_before, due_by=due_by
    )
    with (
        registered(settings, db, "send", stop) as (worker, guard),
        signing(policy.dkim, transport.connections) as dkim,
    ):
        policy = replace(policy, dkim=dkim)
        result.report = deliver(
            edition.id, stored, transport, db, base, policy, guard, progress, worker
        )
    where = str(settings.subscribers)
    result.row_errors += [RowError(where, n, why) for n, why in result.report.row_problems]
    result.done = finish_if_done(db, edition.id)
    if not result.done:
        later = ledger.count_in(db, edition.id, (ledger.PENDING,)) - ledger.count_in(
            db, edition.id, (ledger.PENDING,), due_by
        )
        result.waiting, result.next_wave = later, ledger.next_wave(db, edition.id, due_by) or ""
    return result


def _fan_out(
    settings: Settings,
    db: Database,
    edition: Edition,
    secret: bytes,
    errors: list[RowError],
    waves: Waves | None = None,
) -> FanOut:
    domain = sender_address(settings.from_addr).rsplit("@", 1)[1]
    audience = audience_for(settings, edition)
    groups = everyone_by_batch(settings.subscribers, db, errors.append)
    chosen = chain.from_iterable(decided(audience, db, batch) for batch in groups)
    return fan_out(db, edition.id, chosen, secret, domain, waves)


def warn_if_links_unreachable(settings: Settings) -> None:
    """Mail that leaves the machine needs unsubscribe links its readers can
    open: mailbox providers honour one-click unsubscribe only over https."""
    host = (urlsplit(settings.base_url).hostname or "").lower()
    local = is_loopback(host)
    if settings.smtp_host and (local or not settings.base_url.startswith("https://")):
        log.warning(
            "DIGEST_BASE_URL is %s: the unsubscribe, preferences and view-in-browser links"
            " in these messages %s; set it to the public https address of digest serve",
            settings.base_url,
            "point at this machine" if local else "are not https, so one-click is ignored",
        )
