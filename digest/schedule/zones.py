"""The time zones of the audience, for local-time slots: those named in the
list's `timezone` column and by confirmed sign-ups. The list is scanned again
only when its file changed, so a runner's minute ticks stay cheap.
"""

from __future__ import annotations

from pathlib import Path

from digest.deliver.subscribers import zones_named
from digest.store import signups
from digest.store.db import Database


class AudienceZones:
    """Remembers the CSV's zones by the file's size and modification time."""

    def __init__(self) -> None:
        self.key: tuple[int, int] | None = None
        self.named: set[str] = set()

    def of(self, path: Path, db: Database) -> frozenset[str]:
        try:
            found = path.stat()
            key = (found.st_mtime_ns, found.st_size)
        except OSError:
            key = None
        if key is None:
            self.named = set()
        elif key != self.key:
            self.named = zones_named(path)
        self.key = key
        return frozenset(self.named | signups.zones(db))
