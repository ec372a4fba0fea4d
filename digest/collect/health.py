"""Each configured source's health: what `digest sources` and `digest status`
show. Sources no longer configured are not listed, whatever the store holds.
"""

from __future__ import annotations

from collections.abc import Sequence

from digest.config import SectionConfig
from digest.store import articles as store_sources
from digest.store.db import Database


def source_report(
    sections: Sequence[SectionConfig], db: Database, threshold: int
) -> list[store_sources.SourceHealth]:
    """Health of every configured source (never-collected ones included),
    failing ones first."""
    known = {h.source: h for h in store_sources.source_health(db, threshold)}
    configured = [spec.url for s in sections for spec in s.source_configs]
    rows = [
        known.get(url) or store_sources.never_collected(url) for url in dict.fromkeys(configured)
    ]
    return sorted(rows, key=lambda h: (not h.failing, h.failures == 0))


def health_rows(
    sections: Sequence[SectionConfig], db: Database, threshold: int
) -> list[dict[str, object]]:
    """Every source's health as plain values, with a one-word status:
    ok, warning (read, but part of it could not be), error (failed last time),
    failing (threshold reached) or new."""
    return [{"status": _status(h), **h.__dict__} for h in source_report(sections, db, threshold)]


def _status(h: store_sources.SourceHealth) -> str:
    if h.failing:
        return "failing"
    if h.failures:
        return "error"
    if h.warning:
        return "warning"
    return "ok" if h.last_attempt else "new"
