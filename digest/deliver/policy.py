"""How hard a send tries, from the settings: attempts, back-off, rate limits
(counting what earlier runs sent this hour) and the DKIM key, read and checked
once, up front, so a bad key stops the send before the first message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from digest.config import Settings
from digest.deliver.dkim import load_dkim_key
from digest.deliver.message import sender_address
from digest.deliver.pacing import Limits
from digest.deliver.send import Policy
from digest.store import ledger
from digest.store.db import Database

# A deferred delivery gets another round once it waited DEFERRED_WAIT (a
# greylisting server wants minutes, not seconds), for DEFERRED_FOR after its
# edition was made (mail servers retry for days; an edition is news); then
# it fails.
DEFERRED_WAIT = timedelta(minutes=15)
DEFERRED_FOR = timedelta(hours=24)


def policy_from(settings: Settings, db: Database) -> Policy:
    """Delivery policy from settings; the DKIM key is read and checked once, up front."""
    sent = 0
    if settings.rate_per_hour:
        hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
        sent = ledger.sent_since(db, hour_ago)
    key = None
    if settings.dkim_key_file is not None:
        domain = settings.dkim_domain or sender_address(settings.from_addr).rsplit("@", 1)[1]
        key = load_dkim_key(
            settings.dkim_key_file,
            settings.dkim_selector,
            domain,
            settings.dkim_canonicalization,
        )
    limits = Limits(settings.rate_per_second, settings.rate_per_hour, sent, settings.retry_delay)
    return Policy(settings.max_attempts, settings.retry_delay, limits, key)
