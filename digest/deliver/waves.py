"""Each reader's morning: with DIGEST_LOCAL_TIME, an edition goes out in
waves, each reader's copy due at the edition's wall-clock time in their own
zone (07:00 in Tokyo, then in Berlin, then in New York). Readers without a
zone get the digest's; a zone whose time had passed when the fan-out ran
gets its copy at once. The due time is written into the reader's ledger row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo


class Waves:
    """When each zone's copy of one edition is due."""

    def __init__(self, created: str, default_zone: str, moment: datetime) -> None:
        # The wall-clock time the edition was made for, wherever that was.
        self.wall = datetime.fromisoformat(created).replace(tzinfo=None)
        self.default_zone = default_zone
        self.moment = moment.astimezone(UTC)
        self.due = cache(self._due)

    def due_at(self, zone: str) -> str:
        """ISO UTC time the copy for a reader in `zone` is due; '' for at once."""
        return self.due(zone or self.default_zone)

    def _due(self, zone: str) -> str:
        # A wall time a clock change skips (02:30 the night clocks go forward)
        # comes out as the instant it would have been: 03:30 by the clock.
        local = self.wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
        return "" if local <= self.moment else local.isoformat(timespec="seconds")
